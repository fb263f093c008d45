package mongotest

import (
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

var indexCommands = map[string]command{
	"createIndexes": {run: createIndexes, fields: []string{"indexes", "commitQuorum"}},
	"listIndexes":   {run: listIndexes, fields: []string{"cursor"}},
	"dropIndexes":   {run: dropIndexes, fields: []string{"index"}},
	"deleteIndexes": {run: dropIndexes, fields: []string{"index"}},
}

// parseIndex validates an index specification
// (https://www.mongodb.com/docs/manual/reference/command/createIndexes/,
// https://www.mongodb.com/docs/manual/core/indexes/index-types/): ascending
// and descending keys, and text, hashed, 2dsphere and wildcard keys; the
// options unique, sparse, partialFilterExpression, collation, hidden,
// expireAfterSeconds and each type's own. The spec is kept as mongod lists
// it: a text key as {_fts: "text", _ftsx: 1} with its weights and
// languages, a 2dsphere key with its version, a collation with its
// defaults filled in.
func parseIndex(spec bsoncore.Document) (*index, error) {
	ix := &index{}
	var collation bsoncore.Document
	key, ok := spec.Lookup("key").DocumentOK()
	if !ok || len(query.Fields(key)) == 0 {
		return nil, errorf(codeFailedToParse, "The 'key' field is a required property of an index specification")
	}
	storedKey, weights, nameParts, err := ix.parseKey(key)
	if err != nil {
		return nil, err
	}
	ix.name = strings.Join(nameParts, "_")
	out := []query.Field{{Key: "v", Val: query.Int32Value(2)}, {Key: "key", Val: query.DocValue(storedKey)}, {Key: "name", Val: bsoncore.Value{}}}
	given := map[string]bool{}
	for _, f := range query.Fields(spec) {
		given[f.Key] = true
		switch f.Key {
		case "key", "v", "background", "ns":
			continue
		case "name":
			n, ok := f.Val.StringValueOK()
			if !ok || n == "" {
				return nil, errorf(codeBadValue, "index name must be a non-empty string")
			}
			ix.name = n
			continue
		case "expireAfterSeconds":
			n, err := query.AsInt("expireAfterSeconds", f.Val)
			if err != nil || n < 0 {
				return nil, errorf(codeInvalidOptions, "TTL index 'expireAfterSeconds' option must be a non-negative integer")
			}
			if len(ix.fields) != 1 || ix.kind != "" {
				return nil, errorf(codeInvalidOptions, "TTL indexes are single-field indexes, compound indexes do not support TTL")
			}
			ix.ttl, ix.expireAfter = true, n
		case "unique", "sparse", "hidden":
			if !f.Val.IsNumber() && f.Val.Type != bsoncore.TypeBoolean {
				return nil, errorf(codeTypeMismatch, "The field '%s' has value %s: %s, which is not convertible to bool", f.Key, f.Key, f.Val)
			}
			switch f.Key {
			case "unique":
				ix.unique = query.Truthy(f.Val) // kept as given: listIndexes shows it so
			case "sparse":
				ix.sparse = query.Truthy(f.Val)
			case "hidden":
				ix.hidden = query.Truthy(f.Val)
			}
		case "partialFilterExpression":
			d, ok := f.Val.DocumentOK()
			if !ok {
				return nil, typeError("partialFilterExpression", f.Val, "object")
			}
			if err := checkPartialFilter(d, 0); err != nil {
				return nil, err
			}
			if ix.partial, err = query.CompileFilter(d); err != nil {
				return nil, err
			}
		case "collation":
			if collation, err = normalizeCollation(f.Val); err != nil {
				return nil, err
			}
			if collation == nil {
				ix.simpleCollation = true
				continue // simple: not kept
			}
			f.Val = query.DocValue(collation)
		case "wildcardProjection":
			if _, ok := f.Val.DocumentOK(); !ok || ix.kind != "wildcard" || !slices.Contains(ix.fields, "$**") {
				return nil, errorf(codeFailedToParse, "The field 'wildcardProjection' is only allowed in an '$**' index")
			}
		case "weights", "default_language", "language_override", "textIndexVersion":
			if ix.kind != "text" {
				return nil, errorf(codeInvalidOptions, "The field '%s' is only allowed in a text index", f.Key)
			}
			if f.Key == "weights" {
				weights = nil // as given
			}
		case "2dsphereIndexVersion":
			if ix.kind != "2dsphere" {
				return nil, errorf(codeInvalidOptions, "The field '%s' is only allowed in a 2dsphere index", f.Key)
			}
		case "prepareUnique":
			if f.Val.Type != bsoncore.TypeBoolean {
				return nil, errorf(codeTypeMismatch, "The field 'prepareUnique' must be a boolean: %s", f.Val)
			}
			ix.prepareUnique = f.Val.Boolean()
		case "storageEngine":
		case "bits", "min", "max", "bucketSize":
			return nil, unsupported("the index option %s (2d and geoHaystack indexes)", f.Key)
		default:
			return nil, errorf(codeInvalidOptions, "The field '%s' is not valid for an index specification.", f.Key)
		}
		out = append(out, f)
	}
	out[2].Val = query.StringValue(ix.name)
	switch {
	case ix.name == "_id_":
		return nil, errorf(codeBadValue, "The index name '_id_' is reserved for the _id index")
	case ix.sparse && ix.partial != nil:
		return nil, errorf(codeCannotCreateIndex, "cannot mix \"partialFilterExpression\" and \"sparse\" options")
	case ix.unique && (ix.kind == "text" || ix.kind == "wildcard"):
		return nil, errorf(codeCannotCreateIndex, "Index type '%s' does not support the unique option", ix.kind)
	case ix.unique && ix.kind == "hashed":
		return nil, errorf(16764, "Currently hashed indexes cannot guarantee uniqueness. Use a regular index.")
	case ix.unique && ix.kind == "2dsphere":
		return nil, unsupported("unique 2dsphere indexes")
	case ix.unique && collation != nil && !equalityByBytes(collation):
		return nil, unsupported("unique indexes with a collation under which strings of other bytes are equal (strength below 3, numericOrdering, alternate shifted)")
	}
	if ix.kind == "text" {
		out = appendDefaults(out, given, []query.Field{
			{Key: "weights", Val: query.DocValue(query.BuildDoc(weights))},
			{Key: "default_language", Val: query.StringValue("english")},
			{Key: "language_override", Val: query.StringValue("language")},
			{Key: "textIndexVersion", Val: query.Int32Value(3)},
		})
	}
	if ix.kind == "2dsphere" {
		out = appendDefaults(out, given, []query.Field{{Key: "2dsphereIndexVersion", Val: query.Int32Value(3)}})
	}
	ix.spec = query.BuildDoc(out)
	return ix, nil
}

// appendDefaults appends the fields not given.
func appendDefaults(out []query.Field, given map[string]bool, defaults []query.Field) []query.Field {
	for _, f := range defaults {
		if !given[f.Key] && f.Val.Type != 0 {
			out = append(out, f)
		}
	}
	return out
}

// parseKey reads an index key: its fields, its kind, the key as listed (a
// text key's fields become {_fts: "text", _ftsx: 1} and its weights), and
// the parts of its default name.
func (ix *index) parseKey(key bsoncore.Document) (stored bsoncore.Document, weights []query.Field, nameParts []string, err error) {
	var out []query.Field
	listed := false // the key has its listed text form
	for _, f := range query.Fields(key) {
		if listed && f.Key == "_ftsx" {
			continue
		}
		ix.fields = append(ix.fields, f.Key)
		nameParts = append(nameParts, f.Key, f.Val.String())
		kind := ""
		switch {
		case f.Val.Type == bsoncore.TypeString:
			kind = f.Val.StringValue()
			nameParts[len(nameParts)-1] = kind
			switch kind {
			case "text", "hashed", "2dsphere":
			case "2d", "geoHaystack":
				return nil, nil, nil, unsupported("index type %s on %s", kind, f.Key)
			default:
				return nil, nil, nil, errorf(codeCannotCreateIndex, "Unknown index plugin '%s'", kind)
			}
		case !f.Val.IsNumber() || f.Val.AsFloat64() == 0:
			return nil, nil, nil, errorf(codeCannotCreateIndex, "Values in the index key pattern can only be numbers or strings, and the numbers must not be 0: %s: %s", f.Key, f.Val)
		case f.Key == "$**" || strings.HasSuffix(f.Key, ".$**"):
			kind = "wildcard"
		case strings.Contains(f.Key, "$"):
			return nil, nil, nil, errorf(codeCannotCreateIndex, "Index key contains an illegal field name: field name starts with '$'.")
		}
		if kind != "" {
			if ix.kind != "" && ix.kind != kind {
				return nil, nil, nil, errorf(codeCannotCreateIndex, "Can't use more than one index plugin for a single index.")
			}
			ix.kind = kind
			if kind == "hashed" || kind == "2dsphere" {
				ix.special = f.Key
			}
		}
		if kind != "text" {
			out = append(out, f)
			continue
		}
		if f.Key == "_fts" {
			// The key as listIndexes shows it (what a restore or a replay sends
			// back): {_fts: "text", _ftsx: 1}, its fields in the spec's weights.
			out = append(out, query.Field{Key: "_fts", Val: query.StringValue("text")}, query.Field{Key: "_ftsx", Val: query.Int32Value(1)})
			listed = true
			continue
		}
		weights = append(weights, query.Field{Key: f.Key, Val: query.Int32Value(1)})
		if len(weights) == 1 {
			out = append(out, query.Field{Key: "_fts", Val: query.StringValue("text")}, query.Field{Key: "_ftsx", Val: query.Int32Value(1)})
		}
	}
	return query.BuildDoc(out), weights, nameParts, nil
}

// sameOptions compares specs without their names, each option as a value
// whatever its place (mongod compares index options, not documents).
func sameOptions(a, b *index) bool {
	options := func(ix *index) map[string]bsoncore.Value {
		m := map[string]bsoncore.Value{}
		for _, f := range query.Fields(ix.spec) {
			if f.Key != "name" {
				m[f.Key] = f.Val
			}
		}
		return m
	}
	x, y := options(a), options(b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if w, ok := y[k]; !ok || v.Type != w.Type && !(v.IsNumber() && w.IsNumber()) || !query.Equal(v, w) {
			return false
		}
	}
	return true
}

func createIndexes(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	if err := cx.s.notView(cx.db, name); err != nil {
		return nil, err
	}
	specs, err := cx.arrayArg("indexes")
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		return nil, errorf(codeBadValue, "Must specify at least one index to create")
	}
	var add []*index
	for _, s := range specs {
		d, ok := s.DocumentOK()
		if !ok {
			return nil, typeError("createIndexes.indexes", s, "object")
		}
		ix, err := parseIndex(d)
		if err != nil {
			return nil, err
		}
		add = append(add, ix)
	}
	c := cx.s.collLocked(cx.db, name)
	if c != nil {
		if err := cx.heldByTransactions(c); err != nil {
			return nil, err
		}
		if err := cx.indexableInTransaction(c); err != nil {
			return nil, err
		}
	}
	createdColl := c == nil
	if createdColl {
		if c, err = cx.s.createCollLocked(cx, cx.db, name, collOptions{}); err != nil {
			return nil, err
		}
	}
	for _, ix := range add {
		if err := c.fitIndex(ix); err != nil {
			return nil, err
		}
	}
	before := len(c.indexes)
	// As mongod: the specs are checked against the indexes there (and each
	// other) first, then the new ones are built together; any failure
	// creates none.
	var build []*index
	for _, ix := range add {
		exists, err := c.existing(ix, build)
		if err != nil {
			return nil, err
		}
		if !exists {
			build = append(build, ix)
		}
	}
	for _, ix := range build {
		if err := c.buildIndex(ix); err != nil {
			return nil, indexBuildFailed(c, err)
		}
	}
	for _, ix := range build {
		c.indexes = append(c.indexes, ix)
		cx.s.recordLocked(cx, &event{op: "createIndexes", db: c.db, coll: c.name, uuid: c.uuid, opDesc: indexesDescription(ix)})
	}
	res := bson.D{
		{Key: "numIndexesBefore", Value: int32(before)},
		{Key: "numIndexesAfter", Value: int32(len(c.indexes))},
		{Key: "createdCollectionAutomatically", Value: createdColl},
	}
	if before == len(c.indexes) {
		res = append(res, bson.E{Key: "note", Value: "all indexes already exist"})
	}
	return res, nil
}

// indexableInTransaction checks that a transaction may build indexes on c: only
// on a collection it creates, while it is empty, as mongod allows since 4.4
// (https://www.mongodb.com/docs/manual/core/transactions/#create-collections-and-indexes-in-a-transaction).
// A missing collection is created by the command, in the transaction.
func (cx *cmdCtx) indexableInTransaction(c *collection) error {
	switch {
	case cx.txn == nil:
		return nil
	case c.createdBy != cx.txn:
		return errorf(codeOperationNotSupportedInTransaction, "Cannot create new indexes on existing collection %s in a multi-document transaction.", c.ns())
	case len(c.live()) > 0:
		return errorf(codeOperationNotSupportedInTransaction, "Cannot create new indexes on non-empty collection %s in a multi-document transaction.", c.ns())
	}
	return nil
}

// fitIndex checks ix against what c is, and gives it c's default collation
// when it names none, as mongod's prepareSpecForCreate does.
func (c *collection) fitIndex(ix *index) error {
	switch {
	case ix.ttl && c.capped:
		return errorf(codeCannotCreateIndex, "Cannot create TTL index on a capped collection")
	case c.collation == nil || ix.spec.Lookup("collation").Type != 0:
		return nil
	case ix.simpleCollation:
		return unsupported("an index with the simple collation on a collection with a default collation")
	}
	ix.spec = query.BuildDoc(append(query.Fields(ix.spec), query.Field{Key: "collation", Val: query.DocValue(c.collation)}))
	return nil
}

// existing reports whether c has ix already, or pending builds it: an
// identical index makes ix a no-op; one with its name or its key pattern
// and other options or another name is a conflict, as on the real server,
// whose indexes are told apart by key pattern, collation and partial
// filter.
func (c *collection) existing(ix *index, pending []*index) (bool, error) {
	same := func(a, b *index, field string) bool {
		x, y := a.spec.Lookup(field), b.spec.Lookup(field)
		return x.Type == y.Type && (x.Type == 0 || query.Equal(x, y))
	}
	for _, old := range append(c.indexes[:len(c.indexes):len(c.indexes)], pending...) {
		sameName := old.name == ix.name
		sameKey := same(old, ix, "key") && same(old, ix, "collation") && same(old, ix, "partialFilterExpression")
		switch {
		case sameName && sameKey && sameOptions(old, ix):
			return true, nil
		case sameName && !sameKey:
			return false, errorf(codeIndexKeySpecsConflict, "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: %s, existing index: %s", ix.spec, old.spec)
		case sameName:
			return false, errorf(codeIndexOptionsConflict, "An equivalent index already exists with the same name but different options. Requested index: %s, existing index: %s", ix.spec, old.spec)
		case sameKey && sameOptions(old, ix):
			return false, errorf(codeIndexOptionsConflict, "Index already exists with a different name: %s", old.name)
		case sameKey:
			return false, errorf(codeIndexOptionsConflict, "An equivalent index already exists with a different name and options. Requested index: %s, existing index: %s", ix.spec, old.spec)
		}
	}
	return false, nil
}

// indexBuildFailed is a failed index build as createIndexes reports it,
// the cause's code and extra information kept ("Index build failed: <build
// UUID>: Collection <ns> ( <UUID> ) :: caused by :: E11000 ...").
func indexBuildFailed(c *collection, cause error) error {
	ce, ok := asCmdError(cause)
	if !ok {
		return cause
	}
	failed := *ce
	failed.msg = fmt.Sprintf("Index build failed: %s: Collection %s ( %s ) :: caused by :: %s", uuidText(newUUID()), c.ns(), uuidText(c.uuid), ce.msg)
	return &failed
}

func indexesDescription(ix *index) bsoncore.Document {
	return query.BuildDoc([]query.Field{{Key: "indexes", Val: query.ArrayValue([]bsoncore.Value{query.DocValue(ix.spec)})}})
}

func listIndexes(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	if err := cx.s.notView(cx.db, name); err != nil {
		return nil, err
	}
	batchSize, hasBatch, err := cx.cursorBatchSize()
	if err != nil {
		return nil, err
	}
	c := cx.s.collLocked(cx.db, name)
	if c == nil {
		return nil, errorf(codeNamespaceNotFound, "ns does not exist: %s.%s", cx.db, name)
	}
	docs := make([]bsoncore.Document, len(c.indexes))
	for i, ix := range c.indexes {
		docs[i] = ix.spec
	}
	return cx.openCursor(cx.db+".$cmd.listIndexes."+name, docs, batchSize, hasBatch, false), nil
}

// dropIndexes takes a name, a key pattern, a list of names, or "*" (all
// but _id).
func dropIndexes(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	if err := cx.s.notView(cx.db, name); err != nil {
		return nil, err
	}
	c := cx.s.collLocked(cx.db, name)
	if c == nil {
		return nil, errorf(codeNamespaceNotFound, "ns not found %s.%s", cx.db, name)
	}
	if err := cx.heldByTransactions(c); err != nil {
		return nil, err
	}
	was := len(c.indexes)
	arg := cx.body.Lookup("index")
	var drop []*index
	switch {
	case arg.Type == bsoncore.TypeString && arg.StringValue() == "*":
		drop = c.indexes[1:]
	case arg.Type == bsoncore.TypeString, arg.Type == bsoncore.TypeArray:
		names := []bsoncore.Value{arg}
		if arg.Type == bsoncore.TypeArray {
			names = query.ArrayValues(arg)
		}
		for _, n := range names {
			ix := c.indexNamed(n.StringValue())
			if ix == nil {
				return nil, errorf(codeIndexNotFound, "index not found with name [%s]", n.StringValue())
			}
			drop = append(drop, ix)
		}
	case arg.Type == bsoncore.TypeEmbeddedDocument:
		for _, ix := range c.indexes {
			if query.Equal(ix.spec.Lookup("key"), arg) {
				drop = append(drop, ix)
			}
		}
		if len(drop) == 0 {
			return nil, errorf(codeIndexNotFound, "can't find index with key: %s", arg)
		}
	default:
		return nil, typeError("dropIndexes.index", arg, "string or object")
	}
	for _, ix := range drop {
		if ix.name == "_id_" {
			return nil, errorf(codeInvalidOptions, "cannot drop _id index")
		}
	}
	for _, ix := range append([]*index(nil), drop...) {
		c.dropIndex(ix)
		cx.s.recordLocked(cx, &event{op: "dropIndexes", db: c.db, coll: c.name, uuid: c.uuid, opDesc: indexesDescription(ix)})
	}
	return bson.D{{Key: "nIndexesWas", Value: int32(was)}}, nil
}

func (c *collection) indexNamed(name string) *index {
	for _, ix := range c.indexes {
		if ix.name == name {
			return ix
		}
	}
	return nil
}

func (c *collection) dropIndex(ix *index) {
	for i, x := range c.indexes {
		if x == ix {
			c.indexes = append(c.indexes[:i:i], c.indexes[i+1:]...)
			return
		}
	}
}
