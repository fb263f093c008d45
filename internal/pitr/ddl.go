package pitr

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// shardingEvents change how a collection is distributed, not its data: the target's
// topology is its own, so they are counted and left out.
var shardingEvents = map[string]bool{"shardCollection": true, "reshardCollection": true, "refineCollectionShardKey": true}

// deferredIndex is an index build the target refused during the replay: its documents
// did not satisfy a unique index yet, or an index of that name had other options (the
// target was ahead of the event). It is built again at the end, once the target has
// caught up, unless the source dropped it meanwhile, with the options later collMods
// gave it (the target's index of that name, if any, has those too by then).
type deferredIndex struct {
	coll *collection
	spec bson.D
}

// ddl applies a collection or database event, after the writes before it.
func (a *applier) ddl(ctx context.Context, e *oplogstore.Event) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	var err error
	switch e.OpType {
	case "create":
		_, err = a.reg.locate(ctx, e, createWith(e.OperationDescription))
	case "drop":
		err = a.drop(ctx, e)
	case "rename":
		err = a.rename(ctx, e)
	case "dropDatabase":
		err = a.dropDatabase(ctx, e)
	case "createIndexes":
		err = a.createIndexes(ctx, e)
	case "dropIndexes":
		err = a.dropIndexes(ctx, e)
	case "modify":
		err = a.modify(ctx, e)
	default:
		return fmt.Errorf("event at %s: unknown operation type %q", oplogstore.FormatTS(e.TS), e.OpType)
	}
	if err != nil {
		return fmt.Errorf("%s event at %s on %s: %w", e.OpType, oplogstore.FormatTS(e.TS), e.Namespace(), err)
	}
	return nil
}

// createWith creates a collection with the options a create event recorded (a capped
// size, a validator, a view's pipeline, a clustered index...). The _id index the server
// makes anyway is left out: it is the same unless it has a collation.
func createWith(description bson.Raw) creator {
	return func(ctx context.Context, db *mongo.Database, name string) error {
		cmd := bson.D{{Key: "create", Value: name}}
		elements, _ := description.Elements()
		for _, el := range elements {
			if el.Key() == "idIndex" && isDefaultIDIndex(el.Value()) {
				continue
			}
			cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
		}
		return db.RunCommand(ctx, cmd).Err()
	}
}

func isDefaultIDIndex(v bson.RawValue) bool {
	spec, ok := v.DocumentOK()
	if !ok {
		return false
	}
	key, _ := spec.Lookup("key").DocumentOK()
	fields, _ := key.Elements()
	_, hasCollation := spec.Lookup("collation").DocumentOK()
	return len(fields) == 1 && fields[0].Key() == "_id" && !hasCollation
}

func (a *applier) drop(ctx context.Context, e *oplogstore.Event) error {
	c, err := a.reg.locate(ctx, e, nil)
	if err != nil || c == nil {
		return err
	}
	return a.dropCollection(ctx, c)
}

func (a *applier) dropCollection(ctx context.Context, c *collection) error {
	if err := a.client.Database(c.db).Collection(c.name).Drop(ctx); err != nil && !mongoerr.HasCode(err, mongoerr.NamespaceNotFound) {
		return err
	}
	a.reg.forget(c)
	a.forgetIndexes(c, "")
	return a.park.dropped(ctx, c)
}

// rename moves the collection to its new name. A collection of the source that the
// target holds under another name already (a replay that starts before a later rename)
// moves from there. When the new name holds another of the source's collections, the
// target is ahead: that collection leaves the name later in the source's history, and
// this one's events find it where it is, so it stays.
func (a *applier) rename(ctx context.Context, e *oplogstore.Event) error {
	to := renameTarget(e)
	if to == "" {
		return fmt.Errorf("the event has no target namespace {db, coll}")
	}
	toDB, toColl, _ := strings.Cut(to, ".")
	c, err := a.reg.locate(ctx, e, nil)
	if err != nil {
		return err
	}
	if c == nil {
		return a.gone(e)
	}
	if c.db == toDB && c.name == toColl {
		return nil
	}
	occupant := a.reg.byNS[to]
	if occupant != nil {
		_, dropped, _ := e.OperationDescription.Lookup("dropTarget").BinaryOK()
		if a.reg.tracked[string(occupant.uuid)] && !occupant.view && a.reg.mapping[string(dropped)] != string(occupant.uuid) {
			return nil
		}
	}
	err = a.client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: c.ns()},
		{Key: "to", Value: to},
		{Key: "dropTarget", Value: occupant != nil},
	}).Err()
	if err != nil {
		return err
	}
	if occupant != nil {
		a.reg.forget(occupant)
		a.forgetIndexes(occupant, "")
		if err := a.park.dropped(ctx, occupant); err != nil {
			return err
		}
	}
	_, err = a.reg.renamed(ctx, c, toDB, toColl)
	return err
}

// dropDatabase: the server emits a drop event for each collection before the database's,
// so the collections the registry maps are dropped already, or, still there, were made
// after this event. What else is in the database (views; collections known only by
// name) goes, if --namespace selects it.
//
// The database's system.views goes too when no view is left in it, as the source's
// dropDatabase took it (a server keeps it, empty, after the last view is dropped).
func (a *applier) dropDatabase(ctx context.Context, e *oplogstore.Event) error {
	keptView := false
	for _, c := range a.reg.inDatabase(e.DB) {
		if (c.uuid != nil && a.reg.tracked[string(c.uuid)]) || !a.selected.has(c.db, c.name) {
			keptView = keptView || c.view
			continue
		}
		if err := a.dropCollection(ctx, c); err != nil {
			return err
		}
	}
	if keptView || !a.selected.whole(e.DB) {
		return nil
	}
	err := a.client.Database(e.DB).Collection("system.views").Drop(ctx)
	if mongoerr.HasCode(err, mongoerr.NamespaceNotFound) {
		return nil
	}
	return err
}

func indexSpecs(e *oplogstore.Event) ([]bson.Raw, error) {
	array, ok := e.OperationDescription.Lookup("indexes").ArrayOK()
	if !ok {
		return nil, fmt.Errorf("the event has no operation_description.indexes")
	}
	values, err := array.Values()
	if err != nil {
		return nil, err
	}
	specs := make([]bson.Raw, 0, len(values))
	for _, v := range values {
		spec, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("operation_description.indexes holds a %s, not an index specification", v.Type)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

func (a *applier) createIndexes(ctx context.Context, e *oplogstore.Event) error {
	specs, err := indexSpecs(e)
	if err != nil {
		return err
	}
	c, err := a.reg.locate(ctx, e, a.implicitCreation(e))
	if err != nil || c == nil {
		return err
	}
	c.independent = nil // its indexes change
	for _, raw := range specs {
		spec := indexSpec(raw)
		err := a.createIndex(ctx, c, spec)
		if mongoerr.HasCode(err, mongoerr.DuplicateKey, mongoerr.IndexOptionsConflict, mongoerr.IndexKeySpecsConflict) {
			a.forgetIndexes(c, indexName(spec))
			a.deferred = append(a.deferred, deferredIndex{coll: c, spec: spec})
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// indexSpec is an index specification as createIndexes takes it: servers before 4.4
// named the collection in each (ns), which createIndexes refuses now.
func indexSpec(raw bson.Raw) bson.D {
	spec := bson.D{}
	elements, _ := raw.Elements()
	for _, el := range elements {
		if el.Key() != "ns" {
			spec = append(spec, bson.E{Key: el.Key(), Value: el.Value()})
		}
	}
	return spec
}

func indexName(spec bson.D) string {
	for _, e := range spec {
		if e.Key == "name" {
			name, _ := e.Value.(bson.RawValue).StringValueOK()
			return name
		}
	}
	return ""
}

func (a *applier) createIndex(ctx context.Context, c *collection, spec bson.D) error {
	return a.client.Database(c.db).RunCommand(ctx, bson.D{{Key: "createIndexes", Value: c.name}, {Key: "indexes", Value: bson.A{spec}}}).Err()
}

// forgetIndexes drops the deferred builds of c named name (all of them for "").
func (a *applier) forgetIndexes(c *collection, name string) {
	kept := a.deferred[:0]
	for _, d := range a.deferred {
		if d.coll != c || (name != "" && indexName(d.spec) != name) {
			kept = append(kept, d)
		}
	}
	a.deferred = kept
}

// indexRef is how a collMod names an index: by name, or by key pattern (its
// operationDescription's index holds what the command gave).
type indexRef struct {
	name string
	key  bson.Raw
}

func indexRefOf(index bson.Raw) indexRef {
	name, _ := index.Lookup("name").StringValueOK()
	key, _ := index.Lookup("keyPattern").DocumentOK()
	return indexRef{name: name, key: key}
}

// names tells whether spec is the index ix names.
func (ix indexRef) names(spec bson.Raw) bool {
	if ix.name != "" {
		name, _ := spec.Lookup("name").StringValueOK()
		return name == ix.name
	}
	key, _ := spec.Lookup("key").DocumentOK()
	return ix.key != nil && bytes.Equal(key, ix.key)
}

func (ix indexRef) String() string {
	if ix.name != "" {
		return ix.name
	}
	return ix.key.String()
}

// modifyDeferred gives a deferred build of c the index options a collMod set (its
// operationDescription's index: name or keyPattern, and expireAfterSeconds, hidden,
// prepareUnique, unique), as the server changes an index's specification: an option
// turned off leaves it, and the conversion to unique ends prepareUnique
// (coll_mod_index.cpp). It reports whether there was one.
func (a *applier) modifyDeferred(c *collection, index bson.Raw) bool {
	ref := indexRefOf(index)
	options, _ := index.Elements()
	found := false
	for i := range a.deferred {
		d := &a.deferred[i]
		if d.coll != c || !ref.names(specOf(d.spec)) {
			continue
		}
		found = true
		for _, o := range options {
			switch k, v := o.Key(), o.Value(); {
			case k == "name" || k == "keyPattern":
			case v.Type == bson.TypeBoolean && !v.Boolean():
				d.spec = withoutOption(d.spec, k)
			case k == "unique":
				d.spec = withOption(withoutOption(d.spec, "prepareUnique"), k, v)
			default:
				d.spec = withOption(d.spec, k, v)
			}
		}
	}
	return found
}

// withOption sets an option of an index specification where it is, else last.
func withOption(spec bson.D, key string, v bson.RawValue) bson.D {
	for j := range spec {
		if spec[j].Key == key {
			spec[j].Value = sameNumberType(v, spec[j].Value)
			return spec
		}
	}
	return append(spec, bson.E{Key: key, Value: v})
}

func withoutOption(spec bson.D, key string) bson.D {
	kept := spec[:0]
	for _, e := range spec {
		if e.Key != key {
			kept = append(kept, e)
		}
	}
	return kept
}

func specOf(spec bson.D) bson.Raw {
	raw, _ := bson.Marshal(spec)
	return raw
}

// sameNumberType is v in old's number type when both are whole numbers: collMod reports
// expireAfterSeconds as a long, an index specification holds an int, and an index of the
// same name is the same only with the same options.
func sameNumberType(v bson.RawValue, old any) bson.RawValue {
	n, ok := v.AsInt64OK()
	was, isRaw := old.(bson.RawValue)
	if !ok || !isRaw || was.Type == v.Type || n != int64(int32(n)) {
		return v
	}
	switch was.Type {
	case bson.TypeInt32:
		return bson.RawValue{Type: bson.TypeInt32, Value: bsoncore.AppendInt32(nil, int32(n))}
	case bson.TypeInt64:
		return bson.RawValue{Type: bson.TypeInt64, Value: bsoncore.AppendInt64(nil, n)}
	}
	return v
}

// buildDeferred builds again the indexes the target refused during the replay.
func (a *applier) buildDeferred(ctx context.Context) error {
	for _, d := range a.deferred {
		if a.reg.byNS[d.coll.ns()] != d.coll {
			continue
		}
		if err := a.createIndex(ctx, d.coll, d.spec); err != nil {
			return fmt.Errorf("building on %s the index %v, which the target refused during the replay: %w", d.coll.ns(), d.spec, err)
		}
	}
	a.deferred = nil
	return nil
}

func (a *applier) dropIndexes(ctx context.Context, e *oplogstore.Event) error {
	specs, err := indexSpecs(e)
	if err != nil {
		return err
	}
	c, err := a.reg.locate(ctx, e, nil)
	if err != nil || c == nil {
		return err
	}
	c.independent = nil // its indexes change
	for _, spec := range specs {
		name, ok := spec.Lookup("name").StringValueOK()
		if !ok {
			return fmt.Errorf("an index in operation_description.indexes has no name")
		}
		a.forgetIndexes(c, name)
		err := a.client.Database(c.db).RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: c.name}, {Key: "index", Value: name}}).Err()
		if err != nil && !mongoerr.HasCode(err, mongoerr.IndexNotFound, mongoerr.NamespaceNotFound) {
			return err
		}
	}
	return nil
}

// modify applies a collMod: the event's operationDescription holds the options it set.
func (a *applier) modify(ctx context.Context, e *oplogstore.Event) error {
	c, err := a.reg.locate(ctx, e, nil)
	if err != nil {
		return err
	}
	if c == nil {
		return a.gone(e)
	}
	c.independent = nil // an index may become unique
	index, modifiesIndex := e.OperationDescription.Lookup("index").DocumentOK()
	deferred := modifiesIndex && a.modifyDeferred(c, index)
	cmd := bson.D{{Key: "collMod", Value: c.name}}
	elements, _ := e.OperationDescription.Elements()
	for _, el := range elements {
		cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
	}
	err = a.client.Database(c.db).RunCommand(ctx, cmd).Err()
	if !mongoerr.HasCode(err, mongoerr.IndexNotFound) || !modifiesIndex {
		return err
	}
	// The target has no such index: its build is deferred (the options went to it), or
	// the range drops it later and the target is ahead. Else it lacks one the source had.
	ref := indexRefOf(index)
	if deferred || (e.CollectionUUID != nil && a.hist.indexDroppedAfter(uuidID(e.CollectionUUID), ref, e.TS)) || e.CollectionUUID == nil {
		return nil
	}
	return fmt.Errorf("the target has no index %s, which the source had then and kept: the target is not the source's state at a time between --from and --to (%w)", ref, err)
}
