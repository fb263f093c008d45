package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// expireTTL is the TTL monitor: it deletes documents whose indexed date
// (or earliest date in an indexed array) is older than expireAfterSeconds
// (https://www.mongodb.com/docs/manual/core/index-ttl/). Deletions are
// ordinary delete events in change streams, as on the real server.
func (s *Server) expireTTL() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, d := range s.dbs {
		for _, c := range d.colls {
			for _, ix := range c.indexes {
				if !ix.ttl {
					continue
				}
				cutoff := now.Add(-time.Duration(ix.expireAfter) * time.Second).UnixMilli()
				for _, r := range c.live() {
					if expired(r.doc, ix, cutoff) {
						s.deleteLocked(nil, c, r)
					}
				}
			}
		}
	}
}

func expired(doc bsoncore.Document, ix *index, cutoff int64) bool {
	if ix.partial != nil && !ix.partial.matches(doc) {
		return false
	}
	v, ok := lookupPath(doc, splitPath(ix.fields[0]))
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
		for _, e := range arrayValues(v) {
			consider(e)
		}
	} else {
		consider(v)
	}
	return found && earliest < cutoff
}
