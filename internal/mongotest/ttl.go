package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// expireTTL is the TTL monitor: it deletes documents the index holds (a
// partial one holds only those matching its filter) whose indexed date (or
// earliest date in an indexed array) is older than expireAfterSeconds
// (https://www.mongodb.com/docs/manual/core/index-ttl/). Deletions are
// ordinary delete events in change streams, as on the real server.
func (s *Server) expireTTL() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, d := range s.dbs {
		for _, c := range d.colls {
			if c.clustered != nil && c.ttl {
				// A clustered collection's TTL: by its _id, when it is a
				// date (https://www.mongodb.com/docs/manual/core/clustered-collections/).
				cutoff := now.Add(-time.Duration(c.expireAfter) * time.Second).UnixMilli()
				var recs []*record
				for _, r := range c.live() {
					if id := r.doc.Lookup("_id"); r.txn == nil && id.Type == bsoncore.TypeDateTime && id.DateTime() < cutoff {
						recs = append(recs, r)
					}
				}
				s.deleteLocked(nil, c, recs, true)
			}
			for _, ix := range c.indexes {
				if !ix.ttl {
					continue
				}
				cutoff := now.Add(-time.Duration(ix.expireAfter) * time.Second).UnixMilli()
				var recs []*record
				for _, r := range c.live() {
					// A document a transaction holds waits for the next pass.
					if r.txn == nil && expired(r.doc, ix, cutoff) {
						recs = append(recs, r)
					}
				}
				// mongod 6.1+ batches TTL deletes as it batches multi-deletes.
				s.deleteLocked(nil, c, recs, true)
			}
		}
	}
}

func expired(doc bsoncore.Document, ix *index, cutoff int64) bool {
	if !ix.covers(doc) {
		return false
	}
	v, ok := query.LookupPath(doc, query.SplitPath(ix.fields[0]))
	if !ok {
		return false
	}
	earliest, found := int64(0), false
	consider := func(v bsoncore.Value) {
		if v.Type == bsoncore.TypeDateTime && (!found || v.DateTime() < earliest) {
			earliest, found = v.DateTime(), true
		}
	}
	if v.Type == bsoncore.TypeArray {
		for _, e := range query.ArrayValues(v) {
			consider(e)
		}
	} else {
		consider(v)
	}
	return found && earliest < cutoff
}
