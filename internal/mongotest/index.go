package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// index is an index definition. Queries scan collections, so indexes keep
// no entries (the _id index's are the collection's ids); they exist for
// listIndexes, change events, TTL and unique constraints (index_keys.go).
type index struct {
	name        string
	fields      []string          // the key's fields, as given (a text index's too)
	spec        bsoncore.Document // as listIndexes returns it
	ttl         bool
	expireAfter int64 // seconds, when ttl
	unique      bool  // a secondary unique index (the _id index's are the collection's ids)
	// kind is "" for ascending/descending keys, else the special type the
	// key holds: text, hashed, 2dsphere or wildcard.
	kind string
	// special is the field of the hashed or 2dsphere key.
	special string
	// Which documents the index holds: those matching partial, those with
	// one of the fields when sparse (all, without either).
	partial *query.Filter
	sparse  bool
	// hidden: the planner would not use it (nothing here does); prepareUnique:
	// it refuses new duplicate keys, the step before collMod makes it unique.
	hidden, prepareUnique bool
	// simpleCollation: the specification names the simple collation.
	simpleCollation bool
}

// newIDIndex is the _id index of a collection with opts: with the
// collection's default collation, and for a collection clustered by _id,
// its clustered index as listIndexes shows it.
func newIDIndex(opts collOptions) *index {
	spec := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}
	if opts.clustered != nil {
		spec = bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}},
			{Key: "name", Value: opts.clustered.Lookup("name").StringValue()}, {Key: "unique", Value: true}, {Key: "clustered", Value: true}}
	}
	if opts.collation != nil {
		spec = append(spec, bson.E{Key: "collation", Value: bson.Raw(opts.collation)})
	}
	return &index{name: spec[2].Value.(string), fields: []string{"_id"}, spec: mustMarshal(spec)}
}

// createDescription is a create event's operationDescription: the
// collection's options and its _id index, as the create oplog entry has them
// (a clustered collection has no _id index of its own).
func (c *collection) createDescription() bsoncore.Document {
	fields := query.Fields(c.options(false))
	if c.clustered == nil {
		fields = append(fields, query.Field{Key: "idIndex", Val: query.DocValue(c.idIndex().spec)})
	}
	return query.BuildDoc(fields)
}
