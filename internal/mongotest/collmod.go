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
		"expireAfterSeconds", "viewOn", "pipeline", "timeseries", "clusteredIndex", "dryRun", "cappedSize", "cappedMax"}},
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
			ch, err := parseIndexChange(c, f.Val)
			if err != nil {
				return nil, err
			}
			if ch.logged != nil {
				change = append(change, query.Field{Key: "index", Val: query.DocValue(ch.logged)})
			}
			indexBefore, res = ch.before, append(res, ch.reply...)
			apply = append(apply, ch.apply)
		case "expireAfterSeconds":
			if c.clustered == nil {
				return nil, errorf(codeInvalidOptions, "'expireAfterSeconds' option is only supported on collections clustered by _id")
			}
			seconds, off, err := clusteredTTLOption(f.Val)
			if err != nil {
				return nil, err
			}
			change = append(change, query.Field{Key: "expireAfterSeconds", Val: f.Val})
			if !off {
				change[len(change)-1].Val = query.Int64Value(seconds)
			}
			apply = append(apply, func() { c.ttl, c.expireAfter = !off, seconds })
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

// indexChange is collMod's index: {keyPattern | name, expireAfterSeconds,
// hidden, prepareUnique, unique}, as mongod's coll_mod.cpp and
// coll_mod_index.cpp parse and apply it: an option that changes nothing
// (hiding a hidden index, unique on a unique one) is left out of the oplog
// entry and the reply; the entry names the index as the command did.
type indexChange struct {
	logged bsoncore.Document // the oplog entry's index, nil when nothing changes
	before []query.Field     // the index's options before (stateBeforeChange.indexOptions)
	reply  bson.D
	apply  func()
}

func parseIndexChange(c *collection, v bsoncore.Value) (indexChange, error) {
	spec, ok := v.DocumentOK()
	if !ok {
		return indexChange{}, typeError("collMod.index", v, "object")
	}
	var ix *index
	var named query.Field // the name or keyPattern given
	var seconds int64 = -1
	var hidden, unique, prepareUnique *bool
	modifications := 0
	for _, f := range query.Fields(spec) {
		switch f.Key {
		case "name":
			ix, named = c.indexNamed(f.Val.StringValue()), f
		case "keyPattern":
			named = f
			for _, cand := range c.indexes {
				if query.Equal(cand.spec.Lookup("key"), f.Val) {
					ix = cand
				}
			}
		case "expireAfterSeconds":
			n, err := query.AsInt("collMod.index.expireAfterSeconds", f.Val)
			if err != nil || n < 0 || n > math.MaxInt32 {
				return indexChange{}, errorf(codeInvalidOptions, "TTL index 'expireAfterSeconds' option must be between 0 and %d", math.MaxInt32)
			}
			seconds = n
			modifications++
		case "hidden", "unique", "prepareUnique":
			b, isBool := f.Val.BooleanOK()
			if !isBool {
				return indexChange{}, typeError("collMod.index."+f.Key, f.Val, "bool")
			}
			switch f.Key {
			case "hidden":
				hidden = &b
			case "unique":
				unique = &b
			default:
				prepareUnique = &b
			}
			modifications++
		default:
			return indexChange{}, unsupported("the collMod index option %s", f.Key)
		}
	}
	switch {
	case named.Key == "":
		return indexChange{}, errorf(codeInvalidOptions, "must specify either index name or key pattern for collMod")
	case modifications == 0:
		return indexChange{}, errorf(codeInvalidOptions, "no expireAfterSeconds, hidden, unique or prepareUnique field")
	case ix == nil:
		return indexChange{}, errorf(codeIndexNotFound, "cannot find index %s for ns %s", named.Val, c.ns())
	case seconds >= 0 && c.capped:
		return indexChange{}, errorf(codeInvalidOptions, "TTL indexes are not supported for capped collections.")
	case seconds >= 0 && ix == c.idIndex():
		return indexChange{}, errorf(codeInvalidOptions, "the _id field does not support TTL indexes")
	case seconds >= 0 && !ix.ttl && len(ix.fields) != 1:
		return indexChange{}, errorf(codeInvalidOptions, "TTL indexes are single-field indexes, compound indexes do not support TTL")
	case unique != nil && !*unique:
		return indexChange{}, errorf(codeBadValue, "Cannot make index non-unique")
	case unique != nil && !ix.unique && !ix.prepareUnique:
		return indexChange{}, errorf(codeInvalidOptions, "Cannot make index unique with 'prepareUnique=false'. Run collMod to set it first.")
	case hidden != nil && ix == c.idIndex() && c.clustered != nil:
		return indexChange{}, errorf(6011800, "The 'hidden' option is not supported for a clusteredIndex")
	case hidden != nil && ix == c.idIndex():
		return indexChange{}, errorf(codeBadValue, "can't hide _id index")
	}
	ch := indexChange{}
	logged := []query.Field{named}
	var sets []func()
	if seconds >= 0 {
		logged = append(logged, query.Field{Key: "expireAfterSeconds", Val: query.Int64Value(seconds)})
		if ix.ttl {
			ch.before = append(ch.before, query.Field{Key: "expireAfterSeconds", Val: query.Int64Value(ix.expireAfter)})
			ch.reply = append(ch.reply, bson.E{Key: "expireAfterSeconds_old", Value: ix.expireAfter})
		}
		ch.reply = append(ch.reply, bson.E{Key: "expireAfterSeconds_new", Value: seconds})
		sets = append(sets, func() { ix.setExpireAfter(seconds) })
	}
	if hidden != nil && *hidden != ix.hidden {
		h := *hidden
		logged = append(logged, query.Field{Key: "hidden", Val: query.BoolValue(h)})
		ch.before = append(ch.before, query.Field{Key: "hidden", Val: query.BoolValue(ix.hidden)})
		ch.reply = append(ch.reply, bson.E{Key: "hidden_old", Value: ix.hidden}, bson.E{Key: "hidden_new", Value: h})
		sets = append(sets, func() { ix.hidden = h; ix.setOption("hidden", h) })
	}
	if unique != nil && !ix.unique {
		if dup := c.uniqueViolations(ix); dup != nil {
			return indexChange{}, dup
		}
		logged = append(logged, query.Field{Key: "unique", Val: query.BoolValue(true)})
		ch.reply = append(ch.reply, bson.E{Key: "unique_new", Value: true})
		sets = append(sets, func() {
			ix.unique, ix.prepareUnique = true, false
			ix.setOption("unique", true)
			ix.setOption("prepareUnique", false)
		})
	}
	if prepareUnique != nil && *prepareUnique != ix.prepareUnique && !ix.unique {
		if modifications > 1 {
			return indexChange{}, errorf(codeInvalidOptions, "prepareUnique cannot be combined with any other modification.")
		}
		p := *prepareUnique
		logged = append(logged, query.Field{Key: "prepareUnique", Val: query.BoolValue(p)})
		ch.before = append(ch.before, query.Field{Key: "prepareUnique", Val: query.BoolValue(ix.prepareUnique)})
		ch.reply = append(ch.reply, bson.E{Key: "prepareUnique_old", Value: ix.prepareUnique}, bson.E{Key: "prepareUnique_new", Value: p})
		sets = append(sets, func() { ix.prepareUnique = p; ix.setOption("prepareUnique", p) })
	}
	if len(logged) > 1 {
		ch.logged = query.BuildDoc(logged)
	}
	if len(ch.before) == 0 {
		ch.before = nil
	}
	ch.apply = func() {
		for _, set := range sets {
			set()
		}
	}
	return ch, nil
}

// clusteredTTLOption reads collMod's expireAfterSeconds of a clustered
// collection: a number of seconds, or "off".
func clusteredTTLOption(v bsoncore.Value) (seconds int64, off bool, err error) {
	if s, ok := v.StringValueOK(); ok {
		if s != "off" {
			return 0, false, errorf(codeInvalidOptions, "Invalid string value for the 'clusteredIndex::expireAfterSeconds' option. Got: '%s'. Accepted value is 'off'", s)
		}
		return 0, true, nil
	}
	n, err := query.AsInt("expireAfterSeconds", v)
	if err != nil || n < 0 {
		return 0, false, errorf(codeInvalidOptions, "TTL index 'expireAfterSeconds' option must be a non-negative integer")
	}
	return n, false, nil
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
	ix.setOption("expireAfterSeconds", int32(n))
}

// setOption sets an option of ix's listed specification: changed where it
// is, added last, or, for a boolean option turned off, removed (the catalog
// keeps only the options that are on).
func (ix *index) setOption(key string, value any) {
	fields := query.Fields(ix.spec)
	val := query.MarshalValue(value)
	off := val.Type == bsoncore.TypeBoolean && !val.Boolean()
	for i, f := range fields {
		if f.Key != key {
			continue
		}
		if off {
			fields = append(fields[:i], fields[i+1:]...)
		} else {
			fields[i].Val = val
		}
		ix.spec = query.BuildDoc(fields)
		return
	}
	if !off {
		ix.spec = query.BuildDoc(append(fields, query.Field{Key: key, Val: val}))
	}
}

// options are the collection's options as listCollections shows them, and
// with its uuid as mongod's oplog records them (collectionOptions_old), in
// the order of mongod's CollectionOptions::appendBSON (collection_options.cpp).
func (c *collection) options(withUUID bool) bsoncore.Document {
	var f []query.Field
	if withUUID {
		f = append(f, query.Field{Key: "uuid", Val: query.UUIDValue(c.uuid)})
	}
	if c.capped {
		f = append(f, query.Field{Key: "capped", Val: query.BoolValue(true)}, query.Field{Key: "size", Val: appendNumber(c.cappedSize)})
		if c.cappedMax > 0 {
			f = append(f, query.Field{Key: "max", Val: appendNumber(c.cappedMax)})
		}
	}
	if c.images {
		f = append(f, query.Field{Key: "changeStreamPreAndPostImages", Val: query.DocValue(query.BuildDoc([]query.Field{{Key: "enabled", Val: query.BoolValue(true)}}))})
	}
	f = append(f, c.validation.fields()...)
	if c.collation != nil {
		f = append(f, query.Field{Key: "collation", Val: query.DocValue(c.collation)})
	}
	if c.clustered != nil {
		f = append(f, query.Field{Key: "clusteredIndex", Val: query.DocValue(c.clustered)})
		if c.ttl {
			f = append(f, query.Field{Key: "expireAfterSeconds", Val: query.Int64Value(c.expireAfter)})
		}
	}
	return query.BuildDoc(f)
}

// appendNumber is a number as mongod's BSONObjBuilder::appendNumber writes
// a long: an int below 2^30, else a long.
func appendNumber(n int64) bsoncore.Value {
	if n > -(1<<30) && n < 1<<30 {
		return query.Int32Value(int32(n))
	}
	return query.Int64Value(n)
}
