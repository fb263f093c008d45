package pitr

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// maxRetriesAfterRefusal bounds how often one write is tried again after a refusal that
// replay resolves (holders of a unique key set aside, an update turned into a
// read-modify-replace): each resolution removes one cause, and a write has few, so a
// write still refused after that many is refused for a reason replay cannot resolve.
const maxRetriesAfterRefusal = 16

// writeAlone applies one document event by itself. An update that update operators
// cannot express, or that the target's document refuses (its shape is not the source's
// at the event: the target is ahead, see docs/pitr.md), is applied by reading the
// document, changing it as the source's server did, and replacing it. A unique key
// held by another document is resolved by setting that document aside (parking).
func (a *applier) writeAlone(ctx context.Context, c *collection, e *oplogstore.Event, ud *updateDescription, clientSide bool) error {
	handle := a.client.Database(c.db).Collection(c.name)
	for attempt := 0; ; attempt++ {
		err := a.writeOnce(ctx, handle, e, ud, clientSide)
		if err == nil {
			return nil
		}
		retry := false
		if we, isWriteErr := writeErrorOf(err); isWriteErr && attempt < maxRetriesAfterRefusal {
			var rerr error
			if retry, rerr = a.resolveRefusal(ctx, c, e, we, &clientSide); rerr != nil {
				return rerr
			}
		}
		if !retry {
			return fmt.Errorf("%s event at %s on %s: %w", e.OpType, oplogstore.FormatTS(e.TS), c.ns(), err)
		}
	}
}

// resolveRefusal deals with a write of e to c that the target refused (we), as a target
// ahead of the events refuses them: the documents that hold the unique key are set
// aside (setAside), or an update goes read-modify-replace (*clientSide). It reports
// whether the write can be tried again.
func (a *applier) resolveRefusal(ctx context.Context, c *collection, e *oplogstore.Event, we mongo.WriteError, clientSide *bool) (bool, error) {
	switch {
	case we.Code == mongoerr.DuplicateKey:
		return a.setAside(ctx, c, we, docID(e))
	case e.OpType == "update" && !*clientSide:
		*clientSide = true
		return true, nil
	}
	return false, nil
}

// writeOnce applies e to handle: as its planned writes, or, with clientSide, an update
// by reading the document, applying ud to it and replacing it.
func (a *applier) writeOnce(ctx context.Context, handle *mongo.Collection, e *oplogstore.Event, ud *updateDescription, clientSide bool) error {
	if e.OpType != "update" || !clientSide {
		p, err := planWrite(e, false)
		if err != nil || len(p.models) == 0 { // an update that changed nothing
			return err
		}
		_, err = handle.BulkWrite(ctx, p.models, writeOptions())
		return err
	}
	raw, err := handle.FindOne(ctx, e.DocKey).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil // nothing to update: the target is ahead, past the document's delete
	} else if err != nil {
		return err
	}
	if ud.dotsUncertain() && hasFieldNameWithDot(raw) {
		return fmt.Errorf("%w: a path of the event has a dot, the document has field names with dots, and the event says neither which dots are inside names (its source, MongoDB before 6.1, gives no disambiguatedPaths) nor what the document became (it holds no document read by updateLookup). Replay to a --to before this event, or from a base backup taken after it",
			errAmbiguousPath)
	}
	var current bson.D
	if err := bson.Unmarshal(raw, &current); err != nil {
		return err
	}
	updated, err := bson.Marshal(ud.applyTo(current))
	if err != nil {
		return err
	}
	if _, err := handle.BulkWrite(ctx, []mongo.WriteModel{replaceModel(e.DocKey, updated, false)}, writeOptions()); err != nil {
		return err
	}
	a.stats.ClientSideUpdates++
	return nil
}

// writeErrorOf finds the first write error in err.
func writeErrorOf(err error) (mongo.WriteError, bool) {
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && bwe.WriteConcernError == nil {
		return bwe.WriteErrors[0].WriteError, true
	}
	var we mongo.WriteException
	if errors.As(err, &we) && len(we.WriteErrors) > 0 && we.WriteConcernError == nil {
		return we.WriteErrors[0], true
	}
	return mongo.WriteError{}, false
}
