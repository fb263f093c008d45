package mongotest

import (
	"fmt"
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
// (https://www.mongodb.com/docs/manual/reference/command/createIndexes/).
func parseIndex(spec bsoncore.Document) (*index, error) {
	ix := &index{}
	key, ok := spec.Lookup("key").DocumentOK()
	if !ok || len(query.Fields(key)) == 0 {
		return nil, errorf(codeFailedToParse, "The 'key' field is a required property of an index specification")
	}
	var nameParts []string
	for _, f := range query.Fields(key) {
		if !f.Val.IsNumber() || f.Val.AsFloat64() == 0 {
			return nil, unsupported("index type %s on %s (only ascending and descending keys)", f.Val, f.Key)
		}
		if strings.Contains(f.Key, "$") {
			return nil, unsupported("wildcard index key %s", f.Key)
		}
		ix.fields = append(ix.fields, f.Key)
		nameParts = append(nameParts, f.Key, f.Val.String())
	}
	ix.name = strings.Join(nameParts, "_")
	out := []query.Field{{Key: "v", Val: query.Int32Value(2)}, {Key: "key", Val: query.DocValue(key)}, {Key: "name", Val: bsoncore.Value{}}}
	for _, f := range query.Fields(spec) {
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
			if len(ix.fields) != 1 {
				return nil, errorf(codeInvalidOptions, "TTL indexes are single-field indexes, compound indexes do not support TTL")
			}
			ix.ttl, ix.expireAfter = true, n
		case "unique":
			if !f.Val.IsNumber() && f.Val.Type != bsoncore.TypeBoolean {
				return nil, errorf(codeTypeMismatch, "The field 'unique' has value unique: %s, which is not convertible to bool", f.Val)
			}
			ix.unique = query.Truthy(f.Val) // kept as given: listIndexes shows it so
		case "sparse", "partialFilterExpression", "hidden", "collation", "wildcardProjection", "weights", "default_language",
			"language_override", "textIndexVersion", "2dsphereIndexVersion", "bits", "min", "max",
			"storageEngine", "prepareUnique":
			if query.Truthy(f.Val) && !isSimpleCollation(f.Key, f.Val) {
				return nil, unsupported("the index option %s", f.Key)
			}
		default:
			return nil, errorf(codeInvalidOptions, "The field '%s' is not valid for an index specification.", f.Key)
		}
		out = append(out, f)
	}
	out[2].Val = query.StringValue(ix.name)
	if ix.name == "_id_" {
		return nil, errorf(codeBadValue, "The index name '_id_' is reserved for the _id index")
	}
	ix.spec = query.BuildDoc(out)
	return ix, nil
}

// sameOptions compares specs without their names.
func sameOptions(a, b *index) bool {
	strip := func(ix *index) string {
		var fs []query.Field
		for _, f := range query.Fields(ix.spec) {
			if f.Key != "name" {
				fs = append(fs, f)
			}
		}
		return string(query.BuildDoc(fs))
	}
	return strip(a) == strip(b)
}

func createIndexes(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
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
		if c, err = cx.s.createCollLocked(cx, cx.db, name, false); err != nil {
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

// existing reports whether c has ix already, or pending builds it: an
// identical index makes ix a no-op; one with its name or its key pattern
// and other options or another name is a conflict, as on the real server
// (whose indexes are told apart by key pattern, collation and partial
// filter, the last two always absent here).
func (c *collection) existing(ix *index, pending []*index) (bool, error) {
	for _, old := range append(c.indexes[:len(c.indexes):len(c.indexes)], pending...) {
		sameName, sameKey := old.name == ix.name, query.Equal(old.spec.Lookup("key"), ix.spec.Lookup("key"))
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
