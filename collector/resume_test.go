package collector

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

func TestParseResumeFrom(t *testing.T) {
	for _, c := range []struct {
		in   string
		want resumeFrom
	}{
		{"earliest", resumeFrom{earliest: true, given: "earliest"}},
		{"1748925300,7", resumeFrom{at: bson.Timestamp{T: 1748925300, I: 7}, given: "1748925300,7"}},
		// A second: from its start, so that every operation of it is captured.
		{"2025-06-03T04:35:00Z", resumeFrom{at: bson.Timestamp{T: 1748925300}, given: "2025-06-03T04:35:00Z"}},
	} {
		if got, err := parseResumeFrom(c.in); err != nil || got != c.want {
			t.Errorf("parseResumeFrom(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "latest", "2025-06-03T04:35:00.5Z", "1,2,3"} {
		if _, err := parseResumeFrom(bad); !errors.Is(err, ErrBadResumePoint) {
			t.Errorf("parseResumeFrom(%q): err = %v, want ErrBadResumePoint", bad, err)
		}
	}
}

// apart is a source on a test server of its own, so that its oplog holds its events
// only, captured by a manager into a store on another.
type apart struct {
	*harness
	source, store *mongo.Client
	storeURI      string
	cfg           *config.Config
}

// captureApart starts capturing such a source, name, and writes n events, {_id: 0..n-1}
// in d.c, that it waits to see stored.
func captureApart(t *testing.T, name string, n int) apart {
	t.Helper()
	src := mongotest.New(t, "a source apart from the store", mongotest.Options{})
	storeSrv := mongotest.New(t, "the store", mongotest.Options{})
	a := apart{source: testsupport.Connect(t, src.URI()), store: testsupport.Connect(t, storeSrv.URI()), storeURI: storeSrv.URI()}
	a.cfg = collectorConfig(t, storeSrv.URI(), "", "", testSource{name: name, uri: src.URI(), database: "d"})
	a.harness = startManager(t, a.cfg)
	a.waitState(name, stateRunning)
	insertSeq(t, a.source, "d", "c", 0, n)
	eventually(t, "the events stored", func() bool { return len(insertedIDs(stored(t, a.store, name))) == n })
	return a
}

// A resume of a source whose position its oplog still holds, offline, from a later
// time: the events before that time are skipped, and that is recorded as a gap from
// the saved position to the start (reason resumed, with who asked); capture then goes
// on from the start, events of that very time included. A start at or before the saved
// position records no gap, and the events read again are stored once.
func TestResumeOfflineSkipsAheadOnRequest(t *testing.T) {
	c := captureApart(t, "ahead", 5)
	source, store, cfg := c.source, c.store, c.cfg
	c.stop()
	checkpoint, err := oplogstore.ReadCheckpoint(t.Context(), store.Database(config.DefaultStoreDatabase), "ahead")
	if err != nil || !checkpoint.Known {
		t.Fatalf("checkpoint: %+v, %v", checkpoint, err)
	}

	// Written while no collector runs; the resume starts at the insert of _id 8.
	var at []bson.Timestamp
	for i := 5; i < 12; i++ {
		insertSeq(t, source, "d", "c", i, i+1)
		at = append(at, lastOplogEntry(t, source))
	}
	offline, err := OpenOffline(&cfg.Collector)
	if err != nil {
		t.Fatal(err)
	}
	defer offline.Close()
	from := at[8-5]
	resumed, err := offline.Resume(t.Context(), "ahead", tsText(from), tester)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.SkippedAfter == "" || resumed.EventsKept == 0 {
		t.Errorf("resumed: %+v", resumed)
	}
	gaps, err := oplogstore.ReadGaps(t.Context(), store.Database(config.DefaultStoreDatabase), "ahead")
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || gaps[0].Reason != oplogstore.GapResumed || gaps[0].After != checkpoint.TS || gaps[0].Before != from || !strings.Contains(gaps[0].Detail, "tester") {
		t.Fatalf("gaps after the resume: %+v; want one, resumed, after %v and before %v", gaps, checkpoint.TS, from)
	}
	// Until capture goes on, range claims nothing past the gap.
	after, err := oplogstore.ReadCheckpoint(t.Context(), store.Database(config.DefaultStoreDatabase), "ahead")
	if err != nil || !after.TS.Before(from) {
		t.Fatalf("the checkpoint after the resume: %+v, %v; want before the start %v", after, err, from)
	}

	h2 := startManager(t, cfg)
	eventually(t, "the events from the start", func() bool {
		return slices.Equal(insertedIDs(stored(t, store, "ahead")), []int32{0, 1, 2, 3, 4, 8, 9, 10, 11})
	})
	h2.waitState("ahead", stateRunning)

	// Resuming at a time already captured skips nothing: no gap, no event twice.
	resumed, err = h2.manager.Resume(t.Context(), "ahead", tsText(at[9-5]), tester)
	if err != nil || resumed.SkippedAfter != "" {
		t.Fatalf("resume at a captured time: %+v, %v", resumed, err)
	}
	insertSeq(t, source, "d", "c", 12, 13)
	eventually(t, "the next event", func() bool {
		return slices.Equal(insertedIDs(stored(t, store, "ahead")), []int32{0, 1, 2, 3, 4, 8, 9, 10, 11, 12})
	})
	if gaps, _ := oplogstore.ReadGaps(t.Context(), store.Database(config.DefaultStoreDatabase), "ahead"); len(gaps) != 1 {
		t.Errorf("a resume that skipped nothing recorded a gap: %+v", gaps)
	}
}

// What resume refuses, changing nothing: a time the source no longer holds or has not
// reached, a from that does not parse, a source this collector does not capture, and a
// source whose uri reaches another cluster than the store's history comes from.
func TestResumeRefusals(t *testing.T) {
	h := captureApart(t, "kept", 10)
	source, store := h.source, h.store
	oldest := firstOplogEntry(t, source)

	for what, c := range map[string]struct {
		name, from string
		want       error
	}{
		"a time gone from the oplog": {"kept", tsText(preceding(oldest)), ErrNotHeld},
		"a time not come yet":        {"kept", "2100-01-01T00:00:00Z", ErrNotHeld},
		"a from that does not parse": {"kept", "yesterday", ErrBadResumePoint},
		"an unknown source":          {"nope", "earliest", ErrUnknownSource},
	} {
		if _, err := h.manager.Resume(t.Context(), c.name, c.from, tester); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", what, err, c.want)
		}
	}
	h.waitState("kept", stateRunning)
	if gaps, _ := oplogstore.ReadGaps(t.Context(), store.Database(config.DefaultStoreDatabase), "kept"); len(gaps) != 0 {
		t.Errorf("a refused resume recorded gaps: %+v", gaps)
	}
	h.stop()

	other := mongotest.New(t, "another cluster", mongotest.Options{})
	offline, err := OpenOffline(&collectorConfig(t, h.storeURI, "", "", testSource{name: "kept", uri: other.URI(), database: "d"}).Collector)
	if err != nil {
		t.Fatal(err)
	}
	defer offline.Close()
	if _, err := offline.Resume(t.Context(), "kept", "earliest", tester); !errors.Is(err, errWrongCluster) {
		t.Fatalf("resume through a uri reaching another cluster: err = %v, want errWrongCluster", err)
	}
	if gaps, _ := oplogstore.ReadGaps(t.Context(), store.Database(config.DefaultStoreDatabase), "kept"); len(gaps) != 0 {
		t.Errorf("a resume refused for another cluster recorded gaps: %+v", gaps)
	}
}

func tsText(ts bson.Timestamp) string { return fmt.Sprintf("%d,%d", ts.T, ts.I) }
