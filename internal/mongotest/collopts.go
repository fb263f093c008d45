package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// createOptions reads the options of create for a collection
// (https://www.mongodb.com/docs/manual/reference/command/create/), checked
// as mongod's create command and CollectionOptions parse them
// (collection_options.cpp): changeStreamPreAndPostImages, validation,
// capped/size/max, a default collation, clusteredIndex and its
// expireAfterSeconds, and an idIndex that agrees with them. Others this
// server cannot honour fail with 115.
func (cx *cmdCtx) createOptions() (collOptions, error) {
	var opts collOptions
	var size, maxDocs, expire bsoncore.Value
	var idIndex bsoncore.Document
	for _, opt := range createOptions {
		v, ok := cx.field(opt)
		if !ok {
			continue
		}
		var err error
		switch opt {
		case "viewOn", "pipeline":
		case "changeStreamPreAndPostImages":
			opts.images, err = imagesOption(v)
		case "validator", "validationLevel", "validationAction":
			err = opts.validation.parseOption(opt, v)
		case "capped":
			opts.capped = query.Truthy(v)
		case "size":
			size = v
		case "max":
			maxDocs = v
		case "collation":
			opts.collation, err = collectionCollation(v)
		case "clusteredIndex":
			opts.clustered, err = clusteredIndexOption(v)
		case "expireAfterSeconds":
			expire = v
		case "idIndex":
			d, isDoc := v.DocumentOK()
			if !isDoc || len(query.Fields(d)) == 0 {
				return opts, errorf(codeTypeMismatch, "'idIndex' has to be a non-empty object")
			}
			idIndex = d
		default:
			if query.Truthy(v) {
				err = unsupported("the create option %s", opt)
			}
		}
		if err != nil {
			return opts, err
		}
	}
	if err := opts.cap(size, maxDocs); err != nil {
		return opts, err
	}
	switch {
	case opts.clustered != nil && opts.capped:
		return opts, errorf(codeInvalidOptions, "Clustered collections may not be capped")
	case expire.Type != 0 && opts.clustered == nil:
		return opts, errorf(codeInvalidOptions, "'expireAfterSeconds' requires clustering to be enabled")
	case expire.Type != 0:
		n, err := query.AsInt("expireAfterSeconds", expire)
		if err != nil || n < 0 {
			return opts, errorf(codeInvalidOptions, "TTL index 'expireAfterSeconds' option must be a non-negative integer")
		}
		opts.ttl, opts.expireAfter = true, n
	}
	return opts, checkIDIndexOption(idIndex, opts)
}

// cap reads a capped collection's size (bytes) and max (documents): size is
// required with capped, and either without it is refused; max <= 0 means
// no limit, as mongod's adjustCappedMaxDocs; MongoDB 6.2+ keeps size as
// given (no longer rounded up to 256 bytes: SERVER-67246).
func (o *collOptions) cap(size, maxDocs bsoncore.Value) error {
	switch {
	case !o.capped && (size.Type != 0 || maxDocs.Type != 0):
		return errorf(codeInvalidOptions, "the 'capped' field needs to be true when either the 'size' or 'max' fields are present")
	case !o.capped:
		return nil
	case size.Type == 0:
		return errorf(codeInvalidOptions, "the 'size' field is required when 'capped' is true")
	}
	n, err := query.AsInt("size", size)
	switch {
	case err != nil:
		return err
	case n < 0:
		return errorf(codeBadValue, "size has to be >= 0")
	case n > 1<<50:
		return errorf(codeBadValue, "size cannot exceed 1 PB")
	}
	o.cappedSize = n
	if maxDocs.Type == 0 {
		return nil
	}
	if n, err = query.AsInt("max", maxDocs); err != nil {
		return err
	}
	if n >= 1<<31 {
		return errorf(codeBadValue, "max in a capped collection has to be < 2^31 or not set")
	}
	if n <= 0 {
		n = 1<<31 - 1
	}
	o.cappedMax = n
	return nil
}

// collectionCollation reads a collection's default collation. Strings here
// compare by their bytes, which agrees with a collation on which strings are
// equal when it tells apart what bytes tell apart: strength 3 or more, no
// numericOrdering, alternate non-ignorable. Others are refused; order
// ($gt, sorts) still follows the bytes (see the README).
func collectionCollation(v bsoncore.Value) (bsoncore.Document, error) {
	c, err := normalizeCollation(v)
	if err != nil || c == nil {
		return nil, err
	}
	if !equalityByBytes(c) {
		return nil, unsupported("a collation under which strings of other bytes are equal (strength below 3, numericOrdering, alternate shifted): %s", c)
	}
	return c, nil
}

// equalityByBytes tells whether a normalized collation finds two strings
// equal only when their bytes are (for text without combining marks).
func equalityByBytes(c bsoncore.Document) bool {
	strength, _ := c.Lookup("strength").AsInt64OK()
	numeric, _ := c.Lookup("numericOrdering").BooleanOK()
	alternate, _ := c.Lookup("alternate").StringValueOK()
	return strength >= 3 && !numeric && alternate == "non-ignorable"
}

// clusteredIndexOption reads create's clusteredIndex: {key: {_id: 1},
// unique: true, name, v: 2}, and returns it as mongod lists it (v, key,
// name, unique: makeCanonicalClusteredInfo, the name "_id_" by default).
func clusteredIndexOption(v bsoncore.Value) (bsoncore.Document, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, unsupported("clusteredIndex %s (the legacy form of time-series buckets)", v)
	}
	name := query.StringValue("_id_")
	var key, unique bsoncore.Value
	for _, f := range query.Fields(d) {
		switch f.Key {
		case "key":
			key = f.Val
		case "unique":
			unique = f.Val
		case "name":
			if _, ok := f.Val.StringValueOK(); !ok {
				return nil, typeError("clusteredIndex.name", f.Val, "string")
			}
			name = f.Val
		case "v":
			if n, err := query.AsInt("clusteredIndex.v", f.Val); err != nil || n != 2 {
				return nil, errorf(codeInvalidOptions, "Invalid clustered index version %s", f.Val)
			}
		default:
			return nil, errorf(codeIDLUnknownField, "BSON field 'create.clusteredIndex.%s' is an unknown field.", f.Key)
		}
	}
	keyDoc, _ := key.DocumentOK()
	keyFields := query.Fields(keyDoc)
	switch {
	case key.Type == 0 || unique.Type == 0:
		return nil, errorf(codeIDLFailedToParse, "BSON field 'clusteredIndex.key' and 'clusteredIndex.unique' are missing but are required")
	case len(keyFields) != 1 || keyFields[0].Key != "_id" || !keyFields[0].Val.IsNumber() || keyFields[0].Val.AsFloat64() != 1:
		return nil, errorf(codeInvalidOptions, "The clusteredIndex option is only supported for key: {_id: 1}")
	case !query.Truthy(unique):
		return nil, errorf(codeInvalidOptions, "The clusteredIndex option requires unique: true to be specified")
	}
	return query.BuildDoc([]query.Field{{Key: "v", Val: query.Int32Value(2)}, {Key: "key", Val: key}, {Key: "name", Val: name}, {Key: "unique", Val: query.BoolValue(true)}}), nil
}

// checkIDIndexOption accepts create's idIndex when it is the _id index the
// collection gets anyway: key {_id: 1}, named _id_, with the collection's
// collation (or none, then it takes it).
func checkIDIndexOption(spec bsoncore.Document, opts collOptions) error {
	if spec == nil {
		return nil
	}
	if opts.clustered != nil {
		return errorf(codeInvalidOptions, "The 'idIndex' option is not supported on collections clustered by _id")
	}
	for _, f := range query.Fields(spec) {
		switch f.Key {
		case "v", "key", "name", "collation":
		default:
			return unsupported("the idIndex option %s", f.Key)
		}
	}
	key, _ := spec.Lookup("key").DocumentOK()
	keyFields := query.Fields(key)
	if len(keyFields) != 1 || keyFields[0].Key != "_id" || spec.Lookup("name").StringValue() != "_id_" {
		return errorf(codeBadValue, "The idIndex must be {key: {_id: 1}, name: \"_id_\"}: %s", spec)
	}
	c := spec.Lookup("collation")
	if c.Type == 0 {
		return nil
	}
	given, err := normalizeCollation(c)
	if err != nil {
		return err
	}
	if string(given) != string(opts.collation) {
		return errorf(codeBadValue, "'idIndex' must have the same collation as the collection.")
	}
	return nil
}

// evictCapped deletes the oldest documents of a capped collection while it
// holds more than its size in bytes or its max in documents, each with its
// delete event after the insert that made room, as mongod 5.0+ logs capped
// deletes on the primary (SERVER-16049: replicated as ordinary delete
// oplog entries).
func (s *Server) evictCapped(cx *cmdCtx, c *collection) {
	if !c.capped {
		return
	}
	live := c.live()
	var size int64
	for _, r := range live {
		size += int64(len(r.doc))
	}
	var evict []*record
	for n := int64(len(live)); len(evict) < len(live)-1 && (size > c.cappedSize || (c.cappedMax > 0 && n > c.cappedMax)); n-- {
		r := live[len(evict)]
		size -= int64(len(r.doc))
		evict = append(evict, r)
	}
	s.deleteLocked(cx, c, evict, false)
}
