package pitr

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// A capped collection makes room for each insert by deleting its oldest documents,
// which servers since MongoDB 5.0 log as ordinary deletes after the insert
// (https://jira.mongodb.org/browse/SERVER-16049). Replayed onto a target ahead of the
// events (a replay run again, or from before the base's time), the insert of a document
// the source deleted later would push out, on a full target, a document the target must
// keep, which no event brings back. So writes to a capped collection of a document the
// range deletes later are left out: the delete would undo them anyway, and what the
// target keeps is what the source kept.

const skipCappedDeletedLater = "write to a capped collection of a document the range deletes later (on a full collection, applying it would push out a document the target must keep)"

// cappedDeletes are, for the capped collections of the range, when the range last deletes
// each document: by source collection UUID and _id.
type cappedDeletes map[string]bson.Timestamp

func cappedKey(uuid []byte, id bson.RawValue) string {
	return string(uuid) + string(rune(id.Type)) + string(id.Value)
}

// readCappedDeletes reads the range's deletes of the source's capped collections: those
// the range makes (h) and those the target holds already.
func readCappedDeletes(ctx context.Context, store *mongo.Database, opts *Options, h *history, reg *registry) (cappedDeletes, error) {
	uuids := bson.A{}
	for _, u := range h.capped {
		uuids = append(uuids, bson.Binary{Subtype: bson.TypeBinaryUUID, Data: u})
	}
	for source, target := range reg.mapping {
		if c := reg.byUUID[target]; c != nil && c.capped {
			uuids = append(uuids, bson.Binary{Subtype: bson.TypeBinaryUUID, Data: []byte(source)})
		}
	}
	if len(uuids) == 0 {
		return nil, nil
	}
	deletes := cappedDeletes{}
	err := forEachEvent(ctx, store, opts.Source, opts.From, opts.To, bson.D{
		{Key: oplogstore.FieldOpType, Value: "delete"},
		{Key: oplogstore.FieldCollectionUUID, Value: bson.D{{Key: "$in", Value: uuids}}},
	}, func(e *oplogstore.Event) {
		if e.DocKey != nil {
			deletes[cappedKey(e.CollectionUUID, e.DocKey.Lookup("_id"))] = e.TS
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading the range's deletes of capped collections: %w", err)
	}
	return deletes, nil
}

// deletedLater tells whether e writes to a capped collection a document the range
// deletes after it.
func (d cappedDeletes) deletedLater(e *oplogstore.Event) bool {
	if len(d) == 0 || e.CollectionUUID == nil || e.OpType == "delete" {
		return false
	}
	at, ok := d[cappedKey(e.CollectionUUID, docID(e))]
	return ok && e.TS.Before(at)
}
