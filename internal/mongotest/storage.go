package mongotest

import (
	"crypto/rand"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// database and collection hold the data; all guarded by Server.mu.
type database struct {
	name  string
	colls map[string]*collection
	views map[string]*view
}

type collection struct {
	db, name string
	uuid     []byte // the collection UUID (BSON binary subtype 4) of change events and listCollections
	// records keeps insertion ("natural") order; deleted records are
	// compacted away lazily so deletes stay cheap.
	records []*record
	deleted int
	indexes []*index           // indexes[0] is the _id index
	ids     map[string]*record // the _id index's entries, by idIndexKey
	// createdBy is the active transaction that created the collection.
	createdBy *transaction
	collOptions
}

// collOptions are the options a collection is created with (collMod
// changes some).
type collOptions struct {
	// images is changeStreamPreAndPostImages: writes keep the document
	// before (and after) them for change streams.
	images     bool
	validation validation
	// A capped collection keeps at most cappedSize bytes of documents and,
	// when cappedMax > 0, cappedMax documents (capped.go).
	capped                bool
	cappedSize, cappedMax int64
	// collation is the collection's default collation, nil for simple.
	collation bsoncore.Document
	// clustered is the clusteredIndex specification of a collection
	// clustered by _id, nil for another; ttl and expireAfter its TTL.
	clustered   bsoncore.Document
	ttl         bool
	expireAfter int64
}

// record is one stored document, held as BSON.
type record struct {
	doc     bsoncore.Document
	deleted bool
	// A transaction's write holds the record until the transaction ends (see
	// txn.go): doc is the transaction's version, before what others see
	// meanwhile (nil: inserted by the transaction, invisible to others).
	txn           *transaction
	before        bsoncore.Document
	pendingDelete bool
	lastWrite     bson.Timestamp // of the last committed write, for write conflicts
}

func (c *collection) ns() string { return c.db + "." + c.name }

func (c *collection) idIndex() *index { return c.indexes[0] }

// visible returns the documents in natural order as the transaction tx
// (nil: none) sees them: its own writes, and for records another
// transaction holds, a copy with what was committed before (still marked
// with that transaction, so a write to it is a conflict).
func (c *collection) visible(tx *transaction) []*record {
	all := c.live()
	out := all[:0]
	for _, r := range all {
		switch {
		case r.txn == nil:
			out = append(out, r)
		case r.txn == tx:
			if !r.pendingDelete {
				out = append(out, r)
			}
		case r.before != nil:
			view := *r
			view.doc = r.before
			out = append(out, &view)
		}
	}
	return out
}

// live returns the stored records in natural order, whoever holds them.
func (c *collection) live() []*record {
	if c.deleted > len(c.records)/2 {
		kept := c.records[:0]
		for _, r := range c.records {
			if !r.deleted {
				kept = append(kept, r)
			}
		}
		clear(c.records[len(kept):])
		c.records, c.deleted = kept, 0
	}
	out := make([]*record, 0, len(c.records)-c.deleted)
	for _, r := range c.records {
		if !r.deleted {
			out = append(out, r)
		}
	}
	return out
}

// idIndexKey is the key of an _id value in the collection's _id index: equal
// for values MongoDB considers equal.
func idIndexKey(id bsoncore.Value) string { return string(query.AppendKey(nil, id)) }

// committedByID returns the committed document with this _id value, or nil.
func (c *collection) committedByID(id bsoncore.Value) bsoncore.Document {
	r := c.ids[idIndexKey(id)]
	switch {
	case r == nil:
		return nil
	case r.txn != nil:
		return r.before
	}
	return r.doc
}

// insert stores doc, held by the transaction tx if not nil, after checking
// its _id is free, then its keys in the other indexes (as mongod inserts
// into the _id index first).
func (c *collection) insert(doc bsoncore.Document, tx *transaction) (*record, error) {
	r := &record{doc: doc, txn: tx}
	id := doc.Lookup("_id")
	key := idIndexKey(id)
	switch other := c.ids[key]; {
	case other == nil:
	case other.txn == nil && tx != nil && tsLess(tx.snapshot, other.lastWrite):
		return nil, writeConflict() // committed after the transaction started
	case other.txn == nil:
		return nil, c.duplicateKey(c.idIndex(), indexKey{vals: []bsoncore.Value{id}})
	case other.txn != tx && tx != nil:
		return nil, writeConflict() // another transaction's key
	case other.txn != tx:
		return nil, errBlocked{} // wait for the transaction that holds the key
	case !other.pendingDelete:
		return nil, c.duplicateKey(c.idIndex(), indexKey{vals: []bsoncore.Value{id}})
	}
	if err := c.checkKeys(doc, nil, tx); err != nil {
		return nil, err
	}
	c.ids[key] = r
	c.records = append(c.records, r)
	return r, nil
}

// remove deletes r; its _id is free again.
func (c *collection) remove(r *record) {
	if key := idIndexKey(r.doc.Lookup("_id")); c.ids[key] == r {
		delete(c.ids, key)
	}
	r.deleted = true
	c.deleted++
}

// uuidText writes a UUID as text, as mongod's messages show one.
func uuidText(u []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func newUUID() []byte {
	u := make([]byte, 16)
	_, _ = rand.Read(u)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

// collLocked returns an existing collection or nil.
func (s *Server) collLocked(db, name string) *collection {
	if d := s.dbs[db]; d != nil {
		return d.colls[name]
	}
	return nil
}

// createCollLocked creates db.name (and db) with its _id index, recording
// the "create" change event the real server emits even for implicit creation.
func (s *Server) createCollLocked(cx *cmdCtx, db, name string, opts collOptions) (*collection, error) {
	if err := validDBName(db); err != nil {
		return nil, err
	}
	if err := validCollName(name); err != nil {
		return nil, err
	}
	d := s.databaseLocked(db)
	c := &collection{db: db, name: name, uuid: newUUID(), indexes: []*index{newIDIndex(opts)}, ids: map[string]*record{}, collOptions: opts}
	d.colls[name] = c
	if cx != nil && cx.txn != nil {
		c.createdBy = cx.txn
		cx.txn.created = append(cx.txn.created, c)
	}
	s.recordLocked(cx, &event{op: "create", db: db, coll: name, uuid: c.uuid, opDesc: c.createDescription()})
	return c, nil
}

// databaseLocked returns db, creating it.
func (s *Server) databaseLocked(db string) *database {
	d := s.dbs[db]
	if d == nil {
		d = &database{name: db, colls: map[string]*collection{}, views: map[string]*view{}}
		s.dbs[db] = d
	}
	return d
}

// writableCollLocked returns db.name, creating it on first write; a view
// is refused.
func (s *Server) writableCollLocked(cx *cmdCtx, db, name string) (*collection, error) {
	if c := s.collLocked(db, name); c != nil {
		return c, cx.claimColl(c)
	}
	if err := s.notView(db, name); err != nil {
		return nil, err
	}
	return s.createCollLocked(cx, db, name, collOptions{})
}

// Naming rules from https://www.mongodb.com/docs/manual/reference/limits/#naming-restrictions.
func validDBName(name string) error {
	if name == "" || len(name) >= 64 || strings.ContainsAny(name, "/\\. \"$*<>:|?\x00") {
		return errorf(codeInvalidNamespace, "Invalid database name: '%s'", name)
	}
	return nil
}

func validCollName(name string) error {
	if name == "" || strings.ContainsAny(name, "$\x00") || strings.HasPrefix(name, ".") {
		return errorf(codeInvalidNamespace, "Invalid collection name: %s", name)
	}
	return nil
}
