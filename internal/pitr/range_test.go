package pitr

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

func gapOf(reason string, after, before uint32) Gap {
	g := Gap{Reason: reason}
	if after > 0 {
		g.After = point(bson.Timestamp{T: after})
	}
	if before > 0 {
		g.Before = point(bson.Timestamp{T: before})
	}
	return g
}

func TestStretchesCutAtGaps(t *testing.T) {
	render := func(ss []Stretch) string {
		var parts []string
		for _, s := range ss {
			parts = append(parts, s.From.Timestamp+"-"+s.To.Timestamp)
		}
		return strings.Join(parts, " ")
	}
	from, to := bson.Timestamp{T: 100}, bson.Timestamp{T: 200}
	for name, c := range map[string]struct {
		gaps []Gap
		want string
	}{
		"none":                      {nil, "100,0-200,0"},
		"inside":                    {[]Gap{gapOf("reset", 120, 130)}, "100,0-120,0 130,0-200,0"},
		"two, out of order":         {[]Gap{gapOf("position_missing", 150, 160), gapOf("reset", 120, 130)}, "100,0-120,0 130,0-150,0 160,0-200,0"},
		"before the oldest":         {[]Gap{gapOf("reset", 10, 90)}, "100,0-200,0"},
		"unknown start":             {[]Gap{gapOf("position_missing", 0, 110)}, "110,0-200,0"},
		"open end":                  {[]Gap{gapOf("resume_token_lost", 180, 0)}, "100,0-180,0"},
		"across the start":          {[]Gap{gapOf("reset", 90, 110)}, "110,0-200,0"},
		"after the checkpoint only": {[]Gap{gapOf("reset", 210, 220)}, "100,0-200,0"},
	} {
		if got := render(stretches(from, to, c.gaps)); got != c.want {
			t.Errorf("%s: %s, want %s", name, got, c.want)
		}
	}
}

func TestGapOverlapsRange(t *testing.T) {
	g := gapOf("reset", 120, 130)
	for _, c := range []struct {
		after *bson.Timestamp
		upTo  uint32
		want  bool
	}{
		{nil, 200, true},
		{ts(100, 0), 125, true},
		{ts(100, 0), 120, false}, // ends where the gap starts: nothing in it is needed
		{ts(130, 0), 200, false}, // starts where capture started again
		{ts(125, 0), 200, true},
	} {
		if got := g.overlaps(c.after, bson.Timestamp{T: c.upTo}); got != c.want {
			t.Errorf("gap 120-130 and range (%v, %d]: overlaps = %v, want %v", c.after, c.upTo, got, c.want)
		}
	}
	if !gapOf("position_missing", 0, 130).overlaps(ts(10, 0), bson.Timestamp{T: 20}) {
		t.Error("a gap of unknown start does not overlap a range before its end")
	}
}

// Range through the real collector's store: the window, a gap, and both renderings.
func TestRangeOfACapturedSource(t *testing.T) {
	w := newWorld(t)
	coll := w.source.Database("app").Collection("c")
	for i := range 3 {
		_, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}})
		must(t, err)
	}
	_, at := w.cut()
	_, err := w.store.Collection(oplogstore.GapsCollection(sourceName)).InsertOne(t.Context(), oplogstore.Gap{
		ID: "g", Reason: oplogstore.GapPositionMissing, After: bson.Timestamp{T: at.T - 1}, Before: bson.Timestamp{T: at.T - 1, I: 5},
		DetectedAt: bson.NewDateTimeFromTime(time.Unix(int64(at.T), 0)), Detail: "the store held events but no saved resume position",
	})
	must(t, err)
	win, err := Range(t.Context(), w.store, sourceName)
	if err != nil {
		t.Fatal(err)
	}
	if win.StoreDocuments < 4 || win.Oldest == nil || win.Newest == nil || win.Checkpoint == nil || win.Checkpoint.ts.Before(at) {
		t.Fatalf("window %+v", win)
	}
	if len(win.Gaps) != 1 || len(win.Recoverable) == 0 {
		t.Fatalf("gaps %v, recoverable %v", win.Gaps, win.Recoverable)
	}
	var text strings.Builder
	must(t, win.WriteText(&text))
	for _, want := range []string{"Source src:", "oldest event", "checkpoint", "position_missing", "the store held events but no saved resume position", "Recoverable"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	raw, err := json.Marshal(win)
	must(t, err)
	var decoded map[string]any
	must(t, json.Unmarshal(raw, &decoded))
	for _, key := range []string{"source", "store_documents", "oldest_event", "newest_event", "checkpoint", "gaps", "recoverable"} {
		if _, ok := decoded[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, raw)
		}
	}
}

func TestNamespaceSelection(t *testing.T) {
	to := func(db, coll string) bson.Raw {
		raw, _ := bson.Marshal(bson.D{{Key: "db", Value: db}, {Key: "coll", Value: coll}})
		return raw
	}
	sel := selection{"shop.orders", "hr"}
	for _, c := range []struct {
		e    oplogstore.Event
		want bool
	}{
		{oplogstore.Event{OpType: "insert", DB: "shop", Coll: "orders"}, true},
		{oplogstore.Event{OpType: "insert", DB: "shop", Coll: "customers"}, false},
		{oplogstore.Event{OpType: "insert", DB: "hr", Coll: "people"}, true},
		{oplogstore.Event{OpType: "dropDatabase", DB: "shop"}, true},
		{oplogstore.Event{OpType: "dropDatabase", DB: "web"}, false},
		{oplogstore.Event{OpType: "rename", DB: "shop", Coll: "tmp", To: to("shop", "orders")}, true},
		{oplogstore.Event{OpType: "rename", DB: "shop", Coll: "tmp", To: to("shop", "old")}, false},
	} {
		if got := selected(&c.e, sel); got != c.want {
			t.Errorf("%s %s: selected = %v, want %v", c.e.OpType, c.e.Namespace(), got, c.want)
		}
	}
	if !(selection{}).has("any", "thing") || sel.has("shop", "customers") || !sel.has("hr", "x") {
		t.Error("selection.has is off")
	}
}
