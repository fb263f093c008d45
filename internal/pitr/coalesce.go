package pitr

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A batch of document events goes to the target as an ordered bulk write, which the
// driver sends as one command per run of writes of one kind (insert, update, delete): a
// stream that mixes them costs a round trip every few events. Writes to different
// documents change nothing of each other, so within a batch replay moves each write
// before the writes of other kinds ahead of it, keeping the order of the writes to each
// document: runs as long as the batch allows. Two things tie documents to each other:
// a secondary unique index (a key freed by one document and taken by another: the
// taker must wait) and a cap (the oldest document makes room: the order of inserts is
// the order of the collection). On such collections the batch keeps the source's order.

// writeKind is the command a write goes in.
type writeKind uint8

const (
	kindInsert writeKind = iota
	kindUpdate
	kindDelete
)

func kindOf(m mongo.WriteModel) writeKind {
	switch m.(type) {
	case *mongo.InsertOneModel:
		return kindInsert
	case *mongo.DeleteOneModel:
		return kindDelete
	}
	return kindUpdate
}

// coalesce reorders events (each with its write models planned) into runs of one kind,
// as above. It returns them as they are when a document's _id has no key this can
// compare as the server compares _ids.
func coalesce(events []pendingWrite) []pendingWrite {
	keys := make([]string, len(events))
	for i := range events {
		k, ok := idKey(docID(&events[i].event))
		if !ok {
			return events
		}
		keys[i] = k
	}
	out := make([]pendingWrite, 0, len(events))
	pending := make([]int, len(events))
	for i := range pending {
		pending[i] = i
	}
	blocked := map[string]bool{}
	for len(pending) > 0 {
		kind := kindOf(events[pending[0]].plan.models[0])
		rest := pending[:0]
		clear(blocked)
		for _, i := range pending {
			if kindOf(events[i].plan.models[0]) == kind && !blocked[keys[i]] {
				out = append(out, events[i])
				continue
			}
			blocked[keys[i]] = true
			rest = append(rest, i)
		}
		pending = rest
	}
	return out
}

// idKey is a key equal for _ids the server finds equal: numbers by value, strings,
// ObjectIds and other scalars by their bytes. Documents and arrays (whose numbers could
// differ in type), and numbers that are not whole, have none.
func idKey(id bson.RawValue) (string, bool) {
	switch id.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		f, _ := id.AsFloat64OK()
		if n, ok := id.AsInt64OK(); ok && id.Type != bson.TypeDouble {
			return "n" + strconv.FormatInt(n, 10), true
		}
		if f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
			return "", false
		}
		return "n" + strconv.FormatInt(int64(f), 10), true
	case bson.TypeEmbeddedDocument, bson.TypeArray, bson.TypeDecimal128, 0:
		return "", false
	}
	return string(rune(id.Type)) + string(id.Value), true
}

// independent tells whether the documents of c are independent of each other on the
// target: no secondary unique index, no cap. The answer is kept until the collection's
// indexes change (forgetIndexes).
func (a *applier) independent(ctx context.Context, c *collection) (bool, error) {
	if c.capped {
		return false, nil
	}
	if c.independent != nil {
		return *c.independent, nil
	}
	cursor, err := a.client.Database(c.db).Collection(c.name).Indexes().List(ctx)
	if err != nil {
		return false, fmt.Errorf("listing the indexes of %s: %w", c.ns(), err)
	}
	var specs []struct {
		Name          string `bson:"name"`
		Unique        bool   `bson:"unique"`
		PrepareUnique bool   `bson:"prepareUnique"`
	}
	if err := cursor.All(ctx, &specs); err != nil {
		return false, fmt.Errorf("listing the indexes of %s: %w", c.ns(), err)
	}
	independent := true
	for _, s := range specs {
		if s.Name != "_id_" && (s.Unique || s.PrepareUnique) {
			independent = false
		}
	}
	c.independent = &independent
	return independent, nil
}
