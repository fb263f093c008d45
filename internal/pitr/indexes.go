package pitr

import (
	"bytes"
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// deferredIndex is an index build the target refused during the replay: its documents
// did not satisfy a unique index yet, or an index of that name had other options (the
// target was ahead of the event). It is built again at the end, once the target has
// caught up, unless the source dropped it meanwhile, with the options later collMods
// gave it (the target's index of that name, if any, has those too by then).
type deferredIndex struct {
	coll *collection
	spec bson.D
}

// createIndexes builds the event's indexes; one the target refuses is built at the end
// instead (deferredIndex).
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

// dropIndexes drops the event's indexes, and their deferred builds; one the target does
// not have is already as the event leaves it.
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
