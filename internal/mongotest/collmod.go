package mongotest

import (
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

var collModCommands = map[string]command{
	"collMod": {run: collMod, fields: []string{
		"index", "changeStreamPreAndPostImages", "validator", "validationLevel", "validationAction",
		"expireAfterSeconds", "viewOn", "pipeline", "timeseries", "clusteredIndex", "dryRun"}},
}

// collMod changes a TTL index's expireAfterSeconds (or makes a single-field
// index a TTL index), turns changeStreamPreAndPostImages on or off, sets
// document validation, and changes a view's viewOn and pipeline
// (https://www.mongodb.com/docs/manual/reference/command/collMod/). It
// records a "modify" event as mongod's oplog entry shows it: the options
// given as operationDescription (none: an empty one, as a bare collMod
// still writes its oplog entry), and the collection and index options
// before it as stateBeforeChange
// (https://www.mongodb.com/docs/manual/reference/change-events/modify/).
func collMod(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	if v := cx.s.viewLocked(cx.db, name); v != nil {
		return cx.collModView(v)
	}
	c := cx.s.collLocked(cx.db, name)
	if c == nil {
		return nil, errorf(codeNamespaceNotFound, "ns does not exist: %s.%s", cx.db, name)
	}
	if err := cx.heldByTransactions(c); err != nil {
		return nil, err
	}
	before := c.options(true)
	next := c.validation
	var change, indexBefore []query.Field
	var res bson.D
	var apply []func()
	for _, f := range query.Fields(cx.body)[1:] {
		if isGenericField(f.Key) {
			continue
		}
		switch f.Key {
		case "index":
			ix, seconds, desc, old, reply, err := ttlChange(c, f.Val)
			if err != nil {
				return nil, err
			}
			change = append(change, query.Field{Key: "index", Val: query.DocValue(desc)})
			indexBefore, res = old, append(res, reply...)
			apply = append(apply, func() { ix.setExpireAfter(seconds) })
		case "changeStreamPreAndPostImages":
			enabled, err := imagesOption(f.Val)
			if err != nil {
				return nil, err
			}
			change = append(change, f)
			apply = append(apply, func() { c.images = enabled })
		case "validator", "validationLevel", "validationAction":
			if err := next.parseOption(f.Key, f.Val); err != nil {
				return nil, err
			}
			change = append(change, f)
		case "viewOn", "pipeline":
			return nil, errorf(codeInvalidOptions, "option only supported on a view: %s", f.Key)
		default:
			return nil, unsupported("the collMod option %s", f.Key)
		}
	}
	c.validation = next
	for _, a := range apply {
		a()
	}
	state := []query.Field{{Key: "collectionOptions", Val: query.DocValue(before)}}
	if indexBefore != nil {
		state = append(state, query.Field{Key: "indexOptions", Val: query.DocValue(query.BuildDoc(indexBefore))})
	}
	cx.s.recordLocked(cx, &event{op: "modify", db: c.db, coll: c.name, uuid: c.uuid,
		opDesc: query.BuildDoc(change), stateBefore: query.BuildDoc(state)})
	return res, nil
}

// ttlChange reads collMod's index: {keyPattern | name, expireAfterSeconds}
// and returns the index, the change as the oplog records it (the index by
// name), the index's options before it, and the reply's fields.
func ttlChange(c *collection, v bsoncore.Value) (ix *index, seconds int64, desc bsoncore.Document, before []query.Field, reply bson.D, err error) {
	spec, ok := v.DocumentOK()
	if !ok {
		return nil, 0, nil, nil, nil, typeError("collMod.index", v, "object")
	}
	fail := func(err error) (*index, int64, bsoncore.Document, []query.Field, bson.D, error) {
		return nil, 0, nil, nil, nil, err
	}
	seconds = -1
	for _, f := range query.Fields(spec) {
		switch f.Key {
		case "name":
			ix = c.indexNamed(f.Val.StringValue())
		case "keyPattern":
			for _, cand := range c.indexes {
				if query.Equal(cand.spec.Lookup("key"), f.Val) {
					ix = cand
				}
			}
		case "expireAfterSeconds":
			n, err := query.AsInt("collMod.index.expireAfterSeconds", f.Val)
			if err != nil || n < 0 || n > math.MaxInt32 {
				return fail(errorf(codeInvalidOptions, "TTL index 'expireAfterSeconds' option must be between 0 and %d", math.MaxInt32))
			}
			seconds = n
		default:
			return fail(unsupported("the collMod index option %s", f.Key))
		}
	}
	switch {
	case ix == nil:
		return fail(errorf(codeIndexNotFound, "cannot find index %s for ns %s", spec, c.ns()))
	case seconds < 0:
		return fail(errorf(codeInvalidOptions, "no expireAfterSeconds field to update"))
	case len(ix.fields) != 1 || ix.name == "_id_":
		return fail(errorf(codeInvalidOptions, "TTL indexes are single-field indexes, compound indexes do not support TTL"))
	}
	desc = query.BuildDoc([]query.Field{{Key: "name", Val: query.StringValue(ix.name)}, {Key: "expireAfterSeconds", Val: query.Int64Value(seconds)}})
	reply = bson.D{{Key: "expireAfterSeconds_new", Value: seconds}}
	if ix.ttl {
		before = []query.Field{{Key: "expireAfterSeconds", Val: query.Int64Value(ix.expireAfter)}}
		reply = append(bson.D{{Key: "expireAfterSeconds_old", Value: ix.expireAfter}}, reply...)
	}
	return ix, seconds, desc, before, reply, nil
}

// imagesOption reads changeStreamPreAndPostImages: {enabled: <bool>}.
func imagesOption(v bsoncore.Value) (bool, error) {
	d, ok := v.DocumentOK()
	enabled, isBool := d.Lookup("enabled").BooleanOK()
	if !ok || !isBool || len(query.Fields(d)) != 1 {
		return false, errorf(codeIDLUnknownField, "changeStreamPreAndPostImages must be {enabled: <bool>}, got %s", v)
	}
	return enabled, nil
}

// setExpireAfter makes ix a TTL index of n seconds, in listIndexes too.
func (ix *index) setExpireAfter(n int64) {
	ix.ttl, ix.expireAfter = true, n
	fields := query.Fields(ix.spec)
	for i, f := range fields {
		if f.Key == "expireAfterSeconds" {
			fields[i].Val = query.Int32Value(int32(n))
			ix.spec = query.BuildDoc(fields)
			return
		}
	}
	ix.spec = query.BuildDoc(append(fields, query.Field{Key: "expireAfterSeconds", Val: query.Int32Value(int32(n))}))
}

// options are the collection's options as listCollections shows them, and
// with its uuid as mongod's oplog records them (collectionOptions_old).
func (c *collection) options(withUUID bool) bsoncore.Document {
	var f []query.Field
	if withUUID {
		f = append(f, query.Field{Key: "uuid", Val: query.UUIDValue(c.uuid)})
	}
	f = append(f, c.validation.fields()...)
	if c.images {
		f = append(f, query.Field{Key: "changeStreamPreAndPostImages", Val: query.DocValue(query.BuildDoc([]query.Field{{Key: "enabled", Val: query.BoolValue(true)}}))})
	}
	return query.BuildDoc(f)
}
