package pitr

import (
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// The moments of a range at which the source's names are the target's.
func TestMatchingMoments(t *testing.T) {
	h := newHistory()
	event := func(op, ns, uuid, to string) {
		db, coll := oplogstore.SplitNamespace(ns)
		e := oplogstore.Event{OpType: op, DB: db, Coll: coll, CollectionUUID: []byte(uuid), TS: bson.Timestamp{T: 1, I: uint32(len(h.events) + 1)}}
		if to != "" {
			tdb, tcoll := oplogstore.SplitNamespace(to)
			e.To, _ = bson.Marshal(bson.D{{Key: "db", Value: tdb}, {Key: "coll", Value: tcoll}})
			e.OperationDescription, _ = bson.Marshal(bson.D{{Key: "to", Value: e.To}})
		}
		h.add(&e)
	}
	event("create", "d.a", "U1", "")    // step 1: a
	event("rename", "d.a", "U1", "d.b") // step 2: b
	event("create", "d.a", "U2", "")    // step 3: a, b
	event("drop", "d.a", "U2", "")      // step 4: b
	for _, c := range []struct {
		target []string
		want   []int
	}{
		{[]string{"d.a"}, []int{1}},
		{[]string{"d.b"}, []int{2, 4}},
		{[]string{"d.a", "d.b"}, []int{3}},
		{[]string{"d.other"}, []int{0}},
		{nil, []int{0, 1, 2, 3, 4}}, // no database of the range on the target: nothing tells
	} {
		r := &registry{byNS: map[string]*collection{}}
		for _, ns := range c.target {
			db, coll := oplogstore.SplitNamespace(ns)
			r.byNS[ns] = &collection{db: db, name: coll}
		}
		if got := r.matchingMoments(h, nil); !slices.Equal(got, c.want) {
			t.Errorf("target %v: moments %v, want %v", c.target, got, c.want)
		}
	}
	if got := h.holdersAt("d.a", []int{0, 1, 3, 4}); !slices.Equal(got, []collID{"", uuidID([]byte("U1")), uuidID([]byte("U2"))}) {
		t.Errorf("holders of d.a: %q", got)
	}
	if !h.droppedAfter(uuidID([]byte("U2")), bson.Timestamp{T: 1, I: 3}) || h.droppedAfter(uuidID([]byte("U1")), bson.Timestamp{}) {
		t.Error("droppedAfter: U2 is dropped at step 4, U1 never")
	}
}
