package pitr

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// A unique index can refuse an event replayed onto a later state of the target: the
// source freed a key and gave it to another document afterwards, and the target, ahead
// of the event, has the key on that other document. No such conflict can happen once
// the target has caught up with the source (the source accepted the same write on the
// same state), so it is an overlap's: a second run, or a run started before the base
// backup's time. Replay then sets the holder aside in ReplayDatabase.parked, applies
// the event, and brings the holder back when the holder's own next event comes (an
// update applies to it; an insert, replace or delete makes it moot) or at the end of the
// replay: as if the target had no unique index during the overlap. Setting aside is
// written before the holder is deleted, so an interrupted replay loses nothing.
type parking struct {
	coll *mongo.Collection
	keys map[parkKey]bool
}

// parkKey is a parked document: the target collection's UUID and the _id (BSON type
// and value).
type parkKey struct{ coll, id string }

func keyOf(c *collection, id bson.RawValue) parkKey {
	return parkKey{coll: string(c.uuid), id: string(append([]byte{byte(id.Type)}, id.Value...))}
}

func recordID(c *collection, id bson.RawValue) bson.D {
	return bson.D{{Key: "c", Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: c.uuid}}, {Key: "id", Value: id}}
}

func loadParking(ctx context.Context, client *mongo.Client) (*parking, error) {
	p := &parking{coll: client.Database(ReplayDatabase).Collection("parked"), keys: map[parkKey]bool{}}
	cursor, err := p.coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading %s.parked: %w", ReplayDatabase, err)
	}
	defer cursor.Close(ctx)
	for cursor.Next(ctx) {
		_, uuid, ok := cursor.Current.Lookup("_id", "c").BinaryOK()
		id, err := cursor.Current.LookupErr("_id", "id")
		if ok && err == nil {
			p.keys[keyOf(&collection{uuid: uuid}, id)] = true
		}
	}
	return p, cursor.Err()
}

func (p *parking) has(c *collection, id bson.RawValue) bool {
	return len(p.keys) > 0 && p.keys[keyOf(c, id)]
}

// park sets doc, a document of c, aside.
func (p *parking) park(ctx context.Context, client *mongo.Client, c *collection, doc bson.Raw) error {
	id := doc.Lookup("_id")
	_, err := p.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: recordID(c, id)}},
		bson.D{{Key: "_id", Value: recordID(c, id)}, {Key: "ns", Value: c.ns()}, {Key: "doc", Value: doc}},
		options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("setting a document of %s aside in %s.parked: %w", c.ns(), ReplayDatabase, err)
	}
	if _, err := client.Database(c.db).Collection(c.name).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("setting a document of %s aside: %w", c.ns(), err)
	}
	p.keys[keyOf(c, id)] = true
	return nil
}

// parked reads the document of c with that _id that is set aside.
func (p *parking) parked(ctx context.Context, c *collection, id bson.RawValue) (bson.Raw, error) {
	var rec struct {
		Doc bson.Raw `bson:"doc"`
	}
	if err := p.coll.FindOne(ctx, bson.D{{Key: "_id", Value: recordID(c, id)}}).Decode(&rec); err != nil {
		return nil, fmt.Errorf("reading a document of %s set aside in %s.parked: %w", c.ns(), ReplayDatabase, err)
	}
	return rec.Doc, nil
}

// release forgets the document set aside: it is back in c, or an event made it moot.
func (p *parking) release(ctx context.Context, c *collection, id bson.RawValue) error {
	if _, err := p.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: recordID(c, id)}}); err != nil {
		return fmt.Errorf("clearing a document of %s from %s.parked: %w", c.ns(), ReplayDatabase, err)
	}
	delete(p.keys, keyOf(c, id))
	return nil
}

// dropped forgets the documents set aside from c, which the replay has dropped.
func (p *parking) dropped(ctx context.Context, c *collection) error {
	if len(p.keys) == 0 || c.uuid == nil {
		return nil
	}
	if _, err := p.coll.DeleteMany(ctx, bson.D{{Key: "_id.c", Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: c.uuid}}}); err != nil {
		return fmt.Errorf("clearing the documents of %s from %s.parked: %w", c.ns(), ReplayDatabase, err)
	}
	for k := range p.keys {
		if k.coll == string(c.uuid) {
			delete(p.keys, k)
		}
	}
	return nil
}

// remaining lists the parked documents by collection UUID, for the end of a replay.
func (p *parking) remaining() []parkKey {
	out := make([]parkKey, 0, len(p.keys))
	for k := range p.keys {
		out = append(out, k)
	}
	return out
}

func (k parkKey) idValue() bson.RawValue {
	return bson.RawValue{Type: bson.Type(k.id[0]), Value: []byte(k.id[1:])}
}

// setAside parks the documents of c, other than self, that hold the unique key a write
// was refused over. It reports false when the conflict is not over a secondary unique
// index's key, or nothing holds it.
func (a *applier) setAside(ctx context.Context, c *collection, we mongo.WriteError, self bson.RawValue) (bool, error) {
	pattern, ok1 := we.Raw.Lookup("keyPattern").DocumentOK()
	value, ok2 := we.Raw.Lookup("keyValue").DocumentOK()
	if !ok1 || !ok2 {
		return false, nil
	}
	if fields, _ := pattern.Elements(); len(fields) == 1 && fields[0].Key() == "_id" {
		return false, nil
	}
	values, err := value.Elements()
	if err != nil {
		return false, nil
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$ne", Value: self}}}}
	for _, v := range values {
		filter = append(filter, bson.E{Key: v.Key(), Value: v.Value()})
	}
	cursor, err := a.client.Database(c.db).Collection(c.name).Find(ctx, filter)
	if err != nil {
		return false, fmt.Errorf("finding what holds a unique key in %s: %w", c.ns(), err)
	}
	var holders []bson.Raw
	if err := cursor.All(ctx, &holders); err != nil {
		return false, fmt.Errorf("finding what holds a unique key in %s: %w", c.ns(), err)
	}
	for _, h := range holders {
		if err := a.park.park(ctx, a.client, c, h); err != nil {
			return false, err
		}
		a.stats.Parked++
	}
	return len(holders) > 0, nil
}

// unpark handles an event for a document set aside: an update needs the document back
// first; an insert, replace or delete replaces or removes it anyway.
func (a *applier) unpark(ctx context.Context, c *collection, e *oplogstore.Event, id bson.RawValue) error {
	if e.OpType == "update" {
		return a.restore(ctx, c, id, true)
	}
	a.stats.Superseded++
	return a.park.release(ctx, c, id)
}

// restore puts a parked document back into c. With resolve, a document holding its
// unique key is set aside in turn (the replay is still in the overlap); without, the
// conflict is an error.
func (a *applier) restore(ctx context.Context, c *collection, id bson.RawValue, resolve bool) error {
	doc, err := a.park.parked(ctx, c, id)
	if err != nil {
		return err
	}
	filter := bson.D{{Key: "_id", Value: id}}
	if resolve {
		key, _ := bson.Marshal(filter)
		e := &oplogstore.Event{OpType: "replace", DocKey: key, FullDocument: doc, DB: c.db, Coll: c.name}
		err = a.writeAlone(ctx, c, e, nil, false)
	} else {
		_, err = a.client.Database(c.db).Collection(c.name).BulkWrite(ctx, []mongo.WriteModel{replaceModel(filter, doc, true)}, writeOptions())
	}
	if err != nil {
		return fmt.Errorf("bringing back a document of %s set aside: %w", c.ns(), err)
	}
	a.stats.Restored++
	return a.park.release(ctx, c, id)
}

// restoreAll brings back every document still set aside, at the end of a replay. One
// whose unique key is held (which a replay that has caught up with the source cannot
// leave) stays in ReplayDatabase.parked and is counted in left.
func (a *applier) restoreAll(ctx context.Context) (left int, err error) {
	for _, k := range a.park.remaining() {
		c := a.reg.byUUID[k.coll]
		if c == nil {
			// Its collection is gone from the target.
			if err := a.park.dropped(ctx, &collection{uuid: []byte(k.coll)}); err != nil {
				return left, err
			}
			continue
		}
		if err := a.restore(ctx, c, k.idValue(), false); err != nil {
			if mongoerr.HasCode(err, mongoerr.DuplicateKey) {
				left++
				continue
			}
			return left, err
		}
	}
	return left, nil
}
