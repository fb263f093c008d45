package pitr

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// ReplayDatabase is the target database where replay keeps, between runs, which target
// collection holds which source collection (collections) and the documents it has set
// aside over a unique key (parked). Drop it once no replay onto this target will follow.
const ReplayDatabase = "__oplog_replay"

// systemDatabases are never replayed into, nor listed as the target's own.
var systemDatabases = map[string]bool{"admin": true, "config": true, "local": true, ReplayDatabase: true}

// collection is one collection (or view) of the target.
type collection struct {
	db, name string
	uuid     []byte // nil for a view
	view     bool
	capped   bool
	// independent: no secondary unique index ties documents to each other (coalesce.go);
	// nil until known.
	independent *bool
}

func (c *collection) ns() string { return c.db + "." + c.name }

// registry knows the target's collections and which source collection each holds.
//
// A source collection is identified by its UUID, which a rename keeps and a re-creation
// changes: events carry it (collectionUUID, MongoDB 6.0+ with showExpandedEvents). Going
// by UUID, not by name, is what makes a replay that starts before the target's state
// (a second run, or a run from before the base backup's time) land each event in the
// collection that holds its data: after `rename a -> b` and a new `a`, the old `a`'s
// events belong in b, the new one's in a. A target collection holds the source
// collection:
//   - that the registry mapped to it (persisted in ReplayDatabase.collections: a
//     replay creates its own collections with new UUIDs);
//   - of the same UUID (a target restored from a file-system snapshot of the source);
//   - else, by name, that is the first to have an event for it (a target restored by
//     mongodump, whose collections have new UUIDs).
//
// Events without a UUID (the old collector's) go by name.
type registry struct {
	meta    *mongo.Collection
	client  *mongo.Client
	byNS    map[string]*collection
	byUUID  map[string]*collection // target UUID -> collection
	mapping map[string]string      // source UUID -> target UUID
	tracked map[string]bool        // target UUIDs some source UUID maps to
	claims  []claimed              // mappings made before the replay starts, to record
}

type claimed struct {
	source []byte
	c      *collection
}

func loadRegistry(ctx context.Context, client *mongo.Client) (*registry, error) {
	r := &registry{
		client:  client,
		meta:    client.Database(ReplayDatabase).Collection("collections"),
		byNS:    map[string]*collection{},
		byUUID:  map[string]*collection{},
		mapping: map[string]string{},
		tracked: map[string]bool{},
	}
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("listing the target's databases: %w", err)
	}
	for _, db := range dbs {
		if !systemDatabases[db] {
			if err := r.refresh(ctx, db, nil); err != nil {
				return nil, err
			}
		}
	}
	cursor, err := r.meta.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("reading %s.%s: %w", ReplayDatabase, r.meta.Name(), err)
	}
	var maps []struct {
		Source bson.Binary `bson:"_id"`
		Target bson.Binary `bson:"target"`
	}
	if err := cursor.All(ctx, &maps); err != nil {
		return nil, fmt.Errorf("reading %s.%s: %w", ReplayDatabase, r.meta.Name(), err)
	}
	for _, m := range maps {
		r.mapping[string(m.Source.Data)] = string(m.Target.Data)
		r.tracked[string(m.Target.Data)] = true
	}
	return r, nil
}

// refresh reads the collections of db (only the one named name, when given) from the
// target.
func (r *registry) refresh(ctx context.Context, db string, name *string) error {
	filter := bson.D{}
	if name != nil {
		filter = bson.D{{Key: "name", Value: *name}}
	}
	specs, err := r.client.Database(db).ListCollectionSpecifications(ctx, filter)
	if err != nil {
		return fmt.Errorf("listing the collections of the target's database %s: %w", db, err)
	}
	for _, s := range specs {
		if strings.HasPrefix(s.Name, "system.") {
			continue
		}
		capped, _ := s.Options.Lookup("capped").BooleanOK()
		c := &collection{db: db, name: s.Name, view: s.Type == "view", capped: capped}
		if s.UUID != nil {
			c.uuid = s.UUID.Data
			r.byUUID[string(c.uuid)] = c
		}
		r.byNS[c.ns()] = c
	}
	return nil
}

// untracked are the target's collections no source collection maps to yet.
func (r *registry) untracked() [][]byte {
	var out [][]byte
	for u, c := range r.byUUID {
		if !r.tracked[u] {
			out = append(out, c.uuid)
		}
	}
	return out
}

// claimSnapshotCollections maps to themselves the target collections whose UUIDs the
// source's events of the range carry: a target restored from a snapshot of the source.
// Until then such a collection could be taken, by name, for an older collection of the
// same name. One pass over the range on the store, only when the target has collections
// the registry does not know yet.
func (r *registry) claimSnapshotCollections(ctx context.Context, store *mongo.Database, source string, after *bson.Timestamp, upTo bson.Timestamp) (int, error) {
	untracked := r.untracked()
	if len(untracked) == 0 {
		return 0, nil
	}
	uuids := make(bson.A, len(untracked))
	for i, u := range untracked {
		uuids[i] = bson.Binary{Subtype: bson.TypeBinaryUUID, Data: u}
	}
	match := oplogstore.RangeFilter(source, after, upTo)
	match = append(match, bson.E{Key: oplogstore.FieldCollectionUUID, Value: bson.D{{Key: "$in", Value: uuids}}})
	cursor, err := store.Collection(oplogstore.EventsCollection(source)).Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: match}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$" + oplogstore.FieldCollectionUUID}}}},
	}, options.Aggregate().SetAllowDiskUse(true))
	if err != nil {
		return 0, fmt.Errorf("finding the target's collections among the source's: %w", err)
	}
	var found []struct {
		UUID bson.Binary `bson:"_id"`
	}
	if err := cursor.All(ctx, &found); err != nil {
		return 0, fmt.Errorf("finding the target's collections among the source's: %w", err)
	}
	for _, f := range found {
		if c := r.byUUID[string(f.UUID.Data)]; c != nil {
			r.claim(f.UUID.Data, c)
		}
	}
	return len(found), nil
}

// claim notes that target collection c holds source collection source; persist records
// the claims on the target.
func (r *registry) claim(source []byte, c *collection) {
	r.mapping[string(source)] = string(c.uuid)
	r.tracked[string(c.uuid)] = true
	r.claims = append(r.claims, claimed{source: source, c: c})
}

func (r *registry) persist(ctx context.Context) error {
	for _, cl := range r.claims {
		if err := r.record(ctx, cl.source, cl.c); err != nil {
			return err
		}
	}
	r.claims = nil
	return nil
}

// track records that target collection c holds source collection source.
func (r *registry) track(ctx context.Context, source []byte, c *collection) error {
	r.mapping[string(source)] = string(c.uuid)
	r.tracked[string(c.uuid)] = true
	return r.record(ctx, source, c)
}

func (r *registry) record(ctx context.Context, source []byte, c *collection) error {
	_, err := r.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: source}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "target", Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: c.uuid}},
			{Key: "ns", Value: c.ns()},
		}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("recording in %s.%s that %s holds a source collection: %w", ReplayDatabase, r.meta.Name(), c.ns(), err)
	}
	return nil
}

// creator makes a missing collection on the target: plainly for a write's implicit
// creation, with the source's options for a create event.
type creator func(ctx context.Context, db *mongo.Database, name string) error

func createPlain(ctx context.Context, db *mongo.Database, name string) error {
	return db.CreateCollection(ctx, name)
}

// locate finds the target collection that holds e's collection. It returns nil when the
// target holds none: the collection is gone from the target (dropped there by a replay,
// which reaches past e), or its name holds another collection of the source. With
// create, a missing collection is made.
func (r *registry) locate(ctx context.Context, e *oplogstore.Event, create creator) (*collection, error) {
	ns := e.Namespace()
	if e.CollectionUUID == nil {
		c := r.byNS[ns]
		switch {
		case c != nil && !c.view && r.tracked[string(c.uuid)]:
			// The name holds a collection known by the UUID of its events: an event
			// without one is a view's (the target is ahead of it), not that collection's.
			return nil, nil
		case c != nil || create == nil:
			return c, nil
		}
		return r.createAt(ctx, e.DB, e.Coll, create, nil)
	}
	source := e.CollectionUUID
	if target, ok := r.mapping[string(source)]; ok {
		return r.byUUID[target], nil
	}
	if c := r.byUUID[string(source)]; c != nil {
		return c, r.track(ctx, source, c)
	}
	if c := r.byNS[ns]; c != nil {
		if c.view || r.tracked[string(c.uuid)] {
			return nil, nil
		}
		return c, r.track(ctx, source, c)
	}
	if create == nil {
		return nil, nil
	}
	return r.createAt(ctx, e.DB, e.Coll, create, source)
}

func (r *registry) createAt(ctx context.Context, db, name string, create creator, source []byte) (*collection, error) {
	if err := create(ctx, r.client.Database(db), name); err != nil && !mongoerr.HasCode(err, mongoerr.NamespaceExists) {
		return nil, fmt.Errorf("creating %s.%s on the target: %w", db, name, err)
	}
	if err := r.refresh(ctx, db, &name); err != nil {
		return nil, err
	}
	c := r.byNS[db+"."+name]
	if c == nil {
		return nil, fmt.Errorf("%s.%s is not on the target right after its creation", db, name)
	}
	if source != nil && !c.view {
		return c, r.track(ctx, source, c)
	}
	return c, nil
}

// forget removes c, dropped from the target.
func (r *registry) forget(c *collection) {
	delete(r.byNS, c.ns())
	if c.uuid != nil {
		delete(r.byUUID, string(c.uuid))
	}
}

// renamed records that the target renamed c to db.name. A rename within a database
// keeps the UUID; across databases the server copies into a new collection, so the
// source collections that mapped to c map to the new one.
func (r *registry) renamed(ctx context.Context, c *collection, db, name string) (*collection, error) {
	r.forget(c)
	if err := r.refresh(ctx, db, &name); err != nil {
		return nil, err
	}
	moved := r.byNS[db+"."+name]
	if moved == nil {
		return nil, fmt.Errorf("%s.%s is not on the target right after the rename to it", db, name)
	}
	if string(moved.uuid) == string(c.uuid) || !r.tracked[string(c.uuid)] {
		return moved, nil
	}
	for source, target := range r.mapping {
		if target == string(c.uuid) {
			if err := r.track(ctx, []byte(source), moved); err != nil {
				return nil, err
			}
		}
	}
	delete(r.tracked, string(c.uuid))
	return moved, nil
}

// inDatabase lists the target's collections in db.
func (r *registry) inDatabase(db string) []*collection {
	var out []*collection
	for _, c := range r.byNS {
		if c.db == db {
			out = append(out, c)
		}
	}
	return out
}
