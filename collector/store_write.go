package collector

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/bulkinsert"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// The events' writes: a batch of store documents with the position that covers them,
// in one transaction fenced by the holder's epoch (fence.go), and the deletion of what
// follows the position a stream starts again from.

// batchWrite is what one store transaction writes: a batch's documents and, when the
// batch has one, the position that covers them.
type batchWrite struct {
	docs     []bson.Raw
	pos      *position
	identity *clusterIdentity // the source cluster's, recorded with the position
	// last is the token the store held when this holder last read or saved it: another
	// token there was saved by a process that holds no lease.
	last bson.Raw
	// createEvents makes the events collection, with its indexes, before the documents.
	createEvents bool
	retention    time.Duration
	// closeGaps records the position as where capture started again after the open gaps.
	closeGaps bool
	// skipStored inserts only the documents not in the store yet: a retry of a batch an
	// earlier attempt may have written.
	skipStored bool
}

// write stores b in one transaction fenced by epoch: the documents, acknowledged by a
// majority together with the position that covers them, in the token document and the
// lease. foreign tells that the token document held a token this holder did not save.
func (s *sourceStore) write(ctx context.Context, epoch int64, b batchWrite, command *[]byte) (foreign bool, err error) {
	var claim bson.D
	if b.pos != nil {
		claim = bson.D{{Key: "$set", Value: bson.D{{Key: oplogstore.LeaseFieldPosition, Value: b.pos}}}}
	}
	err = s.fenced(ctx, epoch, claim, func(ctx context.Context) error {
		foreign = false
		if b.createEvents && len(b.docs) > 0 {
			if _, err := s.events.Indexes().CreateMany(ctx, indexModels(b.retention)); err != nil {
				return fmt.Errorf("creating %s with its indexes: %w", s.events.Name(), err)
			}
		}
		docs := b.docs
		if b.skipStored {
			var err error
			if docs, err = s.unstored(ctx, docs); err != nil {
				return err
			}
		}
		if err := s.insert(ctx, docs, command); err != nil {
			return err
		}
		if b.pos != nil {
			var err error
			if foreign, err = s.savePosition(ctx, epoch, *b.pos, b.identity, b.last); err != nil {
				return err
			}
		}
		if b.closeGaps && b.pos != nil && !b.pos.ClusterTime.IsZero() {
			if _, err := s.gaps.UpdateMany(ctx, bson.D{{Key: "before", Value: bson.D{{Key: "$exists", Value: false}}}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "before", Value: b.pos.ClusterTime}}}}); err != nil {
				return fmt.Errorf("closing the record of a gap: %w", err)
			}
		}
		return nil
	})
	return foreign, err
}

// unstored returns the documents of docs whose _id is not in the store.
func (s *sourceStore) unstored(ctx context.Context, docs []bson.Raw) ([]bson.Raw, error) {
	ids := make(bson.A, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.Lookup(oplogstore.FieldID))
	}
	cursor, err := s.events.Find(ctx, bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: oplogstore.FieldID, Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("finding what the store holds of a batch written again: %w", err)
	}
	var found []bson.Raw
	if err := cursor.All(ctx, &found); err != nil {
		return nil, fmt.Errorf("finding what the store holds of a batch written again: %w", err)
	}
	stored := map[string]bool{}
	for _, f := range found {
		stored[string(f.Lookup(oplogstore.FieldID).Value)] = true
	}
	out := docs[:0:0]
	for _, d := range docs {
		if !stored[string(d.Lookup(oplogstore.FieldID).Value)] {
			out = append(out, d)
		}
	}
	return out, nil
}

// insert writes docs, unordered, in as few commands as fit: in write's transaction,
// whose commit is acknowledged by a majority.
//
// command is scratch space for the command, reused from batch to batch: the driver has
// copied it by the time RunCommand returns.
func (s *sourceStore) insert(ctx context.Context, docs []bson.Raw, command *[]byte) error {
	for len(docs) > 0 {
		n := bulkinsert.Chunk(docs)
		*command = appendInsertCommand((*command)[:0], s.events.Name(), docs[:n])
		if err := s.events.Database().RunCommand(ctx, bson.Raw(*command)).Err(); err != nil {
			return fmt.Errorf("writing %d events to %s: %w", n, s.events.Name(), err)
		}
		docs = docs[n:]
	}
	return nil
}

// unordered is the insert command's own field: the documents of a batch are distinct
// events, so one refused (a duplicate) does not keep the others out. It has no write
// concern: a statement of a transaction may not (its commit has one).
var unordered = bson.Raw(bsoncore.NewDocumentBuilder().AppendBoolean("ordered", false).Build())

// appendInsertCommand appends to dst the insert command of docs into collection, built
// in BSON directly (package bulkinsert): the documents are store documents already.
func appendInsertCommand(dst []byte, collection string, docs []bson.Raw) []byte {
	return bulkinsert.AppendCommand(dst, collection, docs, unordered)
}

// dropAfter deletes the store documents of events after the position token, in a
// transaction fenced by epoch: this collector's, whose _id is their token's _data,
// which sorts as the stream does. The parts of the event at the position
// ("<_id>:<k>", oplogstore.Split) sort after its _id but belong to it, and stay. The old
// collector's documents (ObjectId _ids) are left alone.
func (s *sourceStore) dropAfter(ctx context.Context, epoch int64, token bson.Raw) (int64, error) {
	data, ok := token.Lookup("_data").StringValueOK()
	if !ok {
		return 0, nil // a token of another shape: nothing can be compared with it
	}
	var deleted int64
	err := s.fenced(ctx, epoch, nil, func(ctx context.Context) error {
		res, err := s.events.DeleteMany(ctx, bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$gt", Value: data}, {Key: "$lt", Value: data + oplogstore.PartSeparator}}}},
			bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$gte", Value: oplogstore.PartsEnd(data)}}}},
		}}})
		if err != nil {
			return fmt.Errorf("dropping what was stored after the saved position: %w", err)
		}
		deleted = res.DeletedCount
		return nil
	})
	return deleted, err
}
