package exporter

import (
	"bytes"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// recentWindow is how long after a scrape the documents it saw as newest are read again.
const recentWindow = 2 * time.Minute

// now is the clock of recentWindow, for tests to drive.
var now = time.Now

// recentIDs is the part of a collection that a running total reads one by one at every
// scrape: the documents whose _id is from `from` on (the _id index serves it), and those
// whose _id is not an ObjectId. The verifier makes an ObjectId as it inserts a document
// (a recheck task's, a moment before), so a document inserted between two scrapes has
// an _id past the newest seen before; but an ObjectId made just before a scrape may be
// inserted just after it, below the newest seen. So `from` moves up to the newest _id
// seen recentWindow ago, never to the newest seen now. A document counted while recent
// is remembered (counted) until `from` passes it, and not counted again meanwhile.
type recentIDs struct {
	from    bson.ObjectID
	counted map[string]bool // idKey of recent documents already in a total
	newest  bson.ObjectID   // the largest ObjectId seen
	marks   []mark          // newest, as seen at each scrape of the last recentWindow
}

type mark struct {
	at     time.Time
	newest bson.ObjectID
}

// newRecentIDs starts with the documents whose _ids were made in the last recentWindow,
// by this clock: the verifier's, which stamped them, agrees with it within seconds when
// both hosts keep time (NTP), far less than recentWindow.
func newRecentIDs() recentIDs {
	return recentIDs{from: bson.NewObjectIDFromTimestamp(now().Add(-recentWindow)), counted: map[string]bool{}}
}

// idKey identifies a document by its _id, whatever the _id's type.
func idKey(id bson.RawValue) string {
	return string([]byte{byte(id.Type)}) + string(id.Value)
}

// before tells whether ObjectId a sorts before b.
func before(a, b bson.ObjectID) bool {
	return bytes.Compare(a[:], b[:]) < 0
}

// filter selects the recent documents.
func (r *recentIDs) filter() bson.A {
	return bson.A{
		bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: r.from}}}},
		bson.D{{Key: "_id", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$type", Value: "objectId"}}}}}},
	}
}

// holds tells whether the recent documents include this _id.
func (r *recentIDs) holds(id bson.RawValue) bool {
	oid, ok := id.ObjectIDOK()
	return !ok || !before(oid, r.from)
}

// see notes an _id read.
func (r *recentIDs) see(id bson.RawValue) {
	if oid, ok := id.ObjectIDOK(); ok && before(r.newest, oid) {
		r.newest = oid
	}
}

// advance moves `from` to the newest _id seen recentWindow ago, and forgets what was
// counted below it.
func (r *recentIDs) advance(at time.Time) {
	r.marks = append(r.marks, mark{at: at, newest: r.newest})
	i := 0
	for i+1 < len(r.marks) && at.Sub(r.marks[i+1].at) >= recentWindow {
		i++
	}
	if at.Sub(r.marks[i].at) >= recentWindow && before(r.from, r.marks[i].newest) {
		r.from = r.marks[i].newest
	}
	r.marks = r.marks[i:]
	for key := range r.counted {
		if key[0] == byte(bson.TypeObjectID) && bytes.Compare([]byte(key[1:]), r.from[:]) < 0 {
			delete(r.counted, key)
		}
	}
}
