package collector

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

const shortLease = "  lease_ttl: 3s\n"

// heartbeatDoc is the source's document in the central metadata collection.
func heartbeatDoc(t *testing.T, client *mongo.Client, name string) bson.Raw {
	t.Helper()
	raw, err := client.Database(config.DefaultCollectorMetadataDatabase).Collection(config.DefaultCollectorMetadataCollection).
		FindOne(t.Context(), bson.D{{Key: "name", Value: name}}).Raw()
	if err != nil {
		return nil
	}
	return raw
}

// Two collectors configured with one source: one captures, the other stands by (in
// its status, its metrics and the heartbeat document); when the holder stops, the
// standby takes over at once, and every event is stored once, in order.
func TestOneWriterPerSourceAndStandbyTakeover(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	cfg := collectorConfig(t, uri, uri, shortLease, testSource{name: "ha", uri: uri, database: "ha"})
	first := startManager(t, cfg)
	first.waitState("ha", stateRunning)
	second := startManager(t, cfg)
	second.waitState("ha", stateStandby)

	st := second.manager.Status()[0]
	if !strings.Contains(st.Holder, first.manager.opts.Instance.ID) {
		t.Errorf("the standby's status names holder %q, want the first collector %s", st.Holder, first.manager.opts.Instance.ID)
	}
	if got := second.gauge("oplog_capture_state", "source_cluster", "ha", "state", stateStandby); got != 1 {
		t.Errorf("oplog_capture_state{state=standby} = %v on the standby", got)
	}
	eventually(t, "the heartbeat to name the holder and the standby", func() bool {
		doc := heartbeatDoc(t, client, "ha")
		return doc != nil &&
			doc.Lookup("collector_status", "holder", "id").StringValue() == first.manager.opts.Instance.ID &&
			doc.Lookup("collector_status", "standby", "id").StringValue() == second.manager.opts.Instance.ID &&
			doc.Lookup("collector_status", "status").StringValue() == stateRunning
	})

	insertSeq(t, client, "ha", "c", 0, 20)
	eventually(t, "the holder to store 20 events", func() bool { return len(insertedIDs(stored(t, client, "ha"))) == 20 })
	first.stop()
	second.waitState("ha", stateRunning)
	insertSeq(t, client, "ha", "c", 20, 40)
	eventually(t, "40 events", func() bool { return len(insertedIDs(stored(t, client, "ha"))) >= 40 })
	if ids := insertedIDs(stored(t, client, "ha")); !slices.Equal(ids, seq(0, 40)) {
		t.Fatalf("across the takeover the store holds %v, want 0..39 once each in order", ids)
	}
}

// A holder that dies without releasing its lease (a crash, on another host) is taken
// over once the lease has gone a TTL without renewal, judged by the store server's
// clock; so is the lease an earlier collector kept in the metadata database, which the
// new holder then retires: an earlier collector left running stops at its next renewal,
// and none takes the source again.
func TestTakeoverAfterTheHolderStopsRenewing(t *testing.T) {
	for _, where := range []struct{ name, database string }{
		{"beside the store", config.DefaultStoreDatabase},
		{"in the metadata database, an earlier collector's", config.DefaultCollectorMetadataDatabase},
	} {
		t.Run(where.name, func(t *testing.T) {
			uri := mongotest.URI(t)
			client := testsupport.Connect(t, uri)
			leases := client.Database(where.database).Collection(LeaseCollection)
			dead := Instance{ID: "dead-collector", Host: "elsewhere", PID: 1}
			_, err := leases.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: "orphan"}}, bson.D{
				{Key: "$set", Value: bson.D{{Key: "holder", Value: dead}, {Key: "ttl_seconds", Value: 3.0}}},
				{Key: "$currentDate", Value: bson.D{{Key: "renewed_at", Value: true}, {Key: "acquired_at", Value: true}}},
			}, mongoUpsert())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			h := startManager(t, collectorConfig(t, uri, uri, shortLease, testSource{name: "orphan", uri: uri, database: "orphan"}))
			h.waitState("orphan", stateStandby)
			if st := h.manager.Status()[0]; !strings.Contains(st.Holder, "dead-collector") {
				t.Errorf("standby names holder %q", st.Holder)
			}
			h.waitState("orphan", stateRunning)
			if waited := time.Since(start); waited < 2*time.Second {
				t.Errorf("took a live-looking lease over after %v, before its TTL of 3s", waited)
			}
			var l lease
			if err := client.Database(config.DefaultStoreDatabase).Collection(LeaseCollection).FindOne(t.Context(), bson.D{{Key: "_id", Value: "orphan"}}).Decode(&l); err != nil {
				t.Fatal(err)
			}
			if l.Holder.ID != h.manager.opts.Instance.ID || l.Epoch < 1 {
				t.Errorf("lease held by %v at epoch %d after the takeover", l.Holder, l.Epoch)
			}
			if where.database == config.DefaultStoreDatabase {
				return
			}
			var old lease
			if err := leases.FindOne(t.Context(), bson.D{{Key: "_id", Value: "orphan"}}).Decode(&old); err != nil {
				t.Fatal(err)
			}
			if old.Deregistered == nil || !strings.Contains(old.Deregistered.By, "upgrade this collector") || old.Holder.ID != h.manager.opts.Instance.ID {
				t.Errorf("the earlier collector's lease is not retired: %+v", old)
			}
		})
	}
}

// The same source name pointed at another cluster: the collector refuses to write its
// events into the store's history of the first one, naming both.
func TestAnotherClusterUnderTheSameNameIsRefused(t *testing.T) {
	first := mongotest.New(t, "two clusters with their own replicaSetId", mongotest.Options{})
	other := mongotest.New(t, "two clusters with their own replicaSetId", mongotest.Options{})
	store := testsupport.Connect(t, first.URI())
	h := startManager(t, collectorConfig(t, first.URI(), "", shortLease, testSource{name: "named", uri: first.URI(), database: "d"}))
	h.waitState("named", stateRunning)
	insertSeq(t, testsupport.Connect(t, first.URI()), "d", "c", 0, 3)
	eventually(t, "3 events", func() bool { return len(insertedIDs(stored(t, store, "named"))) == 3 })
	h.stop()

	h2 := startManager(t, collectorConfig(t, first.URI(), "", shortLease, testSource{name: "named", uri: other.URI(), database: "d"}))
	h2.waitState("named", stateError)
	st := h2.manager.Status()[0]
	firstID, otherID := replicaSetID(t, first.URI()), replicaSetID(t, other.URI())
	if !strings.Contains(st.Error, firstID) || !strings.Contains(st.Error, otherID) || !strings.Contains(st.Error, "reset it") {
		t.Errorf("the error does not name both clusters (%s, %s) and what to do: %s", firstID, otherID, st.Error)
	}
	if got := h2.gauge("oplog_capture_errors_total", "source_cluster", "named", "kind", errIdentity); got != 1 {
		t.Errorf("errors_total{kind=source_identity} = %v", got)
	}
	insertSeq(t, testsupport.Connect(t, other.URI()), "d", "c", 100, 103)
	time.Sleep(500 * time.Millisecond) // what a wrong writer would have stored by now
	if ids := insertedIDs(stored(t, store, "named")); !slices.Equal(ids, seq(0, 3)) {
		t.Fatalf("the other cluster's events were mixed in: %v", ids)
	}
}

func replicaSetID(t *testing.T, uri string) string {
	t.Helper()
	id, err := identify(t.Context(), testsupport.Connect(t, uri))
	if err != nil {
		t.Fatal(err)
	}
	if id.ReplicaSetID.IsZero() {
		t.Fatal("no replicaSetId read")
	}
	return id.ReplicaSetID.Hex()
}

// Reloads that switch the store while a writer runs: each new store goes on from the
// position the old one reached, so together the stores hold every event, and each
// store holds each of its events once.
func TestStoreSwitchCarriesThePositionOver(t *testing.T) {
	srcURI := mongotest.URI(t)
	stores := []*mongotest.Server{
		mongotest.New(t, "stores switched by reloads", mongotest.Options{}),
		mongotest.New(t, "stores switched by reloads", mongotest.Options{}),
	}
	cfgs := make([]*config.Config, len(stores))
	storeClients := make([]*mongo.Client, len(stores))
	for i, s := range stores {
		cfgs[i] = collectorConfig(t, s.URI(), "", shortLease, testSource{name: "moving", uri: srcURI, database: "m"})
		storeClients[i] = testsupport.Connect(t, s.URI())
	}
	src := testsupport.Connect(t, srcURI)
	h := startManager(t, cfgs[0])
	h.waitState("moving", stateRunning)
	eventually(t, "the first token", func() bool {
		return storeClients[0].Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_moving").FindOne(t.Context(), bson.D{}).Err() == nil
	})

	const total = 600
	var writing sync.WaitGroup
	writing.Go(func() {
		for i := range total {
			if _, err := src.Database("m").Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: i}}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for switchTo := range []int{1, 0, 1} {
		time.Sleep(100 * time.Millisecond)
		if err := h.manager.Apply(cfgs[[]int{1, 0, 1}[switchTo]]); err != nil {
			t.Fatal(err)
		}
	}
	writing.Wait()
	union := map[int32]bool{}
	eventually(t, "every event in one store or the other", func() bool {
		clear(union)
		for _, c := range storeClients {
			for _, id := range insertedIDs(stored(t, c, "moving")) {
				union[id] = true
			}
		}
		return len(union) == total
	})
	for i, c := range storeClients {
		ids := insertedIDs(stored(t, c, "moving"))
		if len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("store %d holds an event twice", i)
		}
	}
	if !strings.Contains(h.logs.String(), "going on from the position of the previous store") {
		t.Errorf("the carry-over is not logged:\n%s", h.logs)
	}
}

// A restart with a new, empty store goes on from the checkpoint the previous holder
// reported in the heartbeat document, not from now: what was written while no
// collector ran is captured (and that second's earlier events again: the heartbeat
// keeps whole seconds).
func TestRestartOnANewStoreGoesOnFromTheHeartbeat(t *testing.T) {
	srcURI := mongotest.URI(t)
	meta := mongotest.New(t, "a metadata database apart from both stores", mongotest.Options{})
	oldStore := mongotest.New(t, "the store before the restart", mongotest.Options{})
	newStore := mongotest.New(t, "the store after the restart", mongotest.Options{})
	src := testsupport.Connect(t, srcURI)
	// The source's history must reach back past the checkpoint's whole second, as a
	// real oplog does: the test server's begins when it starts.
	began := clusterTime(t, src)
	eventually(t, "the source's clock to pass its first second", func() bool { return clusterTime(t, src).T > began.T })
	h := startManager(t, collectorConfig(t, oldStore.URI(), meta.URI(), shortLease, testSource{name: "moved", uri: srcURI, database: "mv"}))
	h.waitState("moved", stateRunning)
	insertSeq(t, src, "mv", "c", 0, 10)
	old := testsupport.Connect(t, oldStore.URI())
	eventually(t, "10 events in the old store", func() bool { return len(insertedIDs(stored(t, old, "moved"))) == 10 })
	docs := stored(t, old, "moved")
	last, _ := docs[len(docs)-1].Lookup("ts").Timestamp()
	metaClient := testsupport.Connect(t, meta.URI())
	eventually(t, "the heartbeat to report a checkpoint past the 10th event", func() bool {
		doc := heartbeatDoc(t, metaClient, "moved")
		if doc == nil {
			return false
		}
		text, _ := doc.Lookup("collector_status", "last_oplog_time_utc").StringValueOK()
		at, err := time.Parse(time.RFC3339, text)
		return err == nil && at.Unix() >= int64(last)
	})
	h.stop()
	insertSeq(t, src, "mv", "c", 10, 20) // while no collector runs

	h2 := startManager(t, collectorConfig(t, newStore.URI(), meta.URI(), shortLease, testSource{name: "moved", uri: srcURI, database: "mv"}))
	h2.waitState("moved", stateRunning)
	fresh := testsupport.Connect(t, newStore.URI())
	eventually(t, "the events written meanwhile in the new store", func() bool {
		ids := insertedIDs(stored(t, fresh, "moved"))
		return len(ids) > 0 && ids[len(ids)-1] == 19
	})
	ids := insertedIDs(stored(t, fresh, "moved"))
	if !slices.Equal(ids, seq(int(ids[0]), 20)) || ids[0] > 10 {
		t.Fatalf("the new store holds %v, want 10..19 (and some before, of the checkpoint's second), once each in order", ids)
	}
}

// clusterTime is the server's cluster time after a write of its own (a ping's
// operationTime), so that it follows the clock.
func clusterTime(t *testing.T, client *mongo.Client) bson.Timestamp {
	t.Helper()
	if _, err := client.Database("clock").Collection("ticks").InsertOne(t.Context(), bson.D{}); err != nil {
		t.Fatal(err)
	}
	var reply struct {
		OperationTime bson.Timestamp `bson:"operationTime"`
	}
	if err := client.Database("admin").RunCommand(t.Context(), bson.D{{Key: "ping", Value: 1}}).Decode(&reply); err != nil {
		t.Fatal(err)
	}
	return reply.OperationTime
}

// A reset records in the store what it wiped, who asked, and where capture started
// again; a store holding events but no position records the gap it starts with.
func TestResetIsRecordedAsAGap(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	h := startManager(t, collectorConfig(t, uri, "", shortLease, testSource{name: "wiped", uri: uri, database: "w"}))
	h.waitState("wiped", stateRunning)
	insertSeq(t, client, "w", "c", 0, 7)
	eventually(t, "7 events", func() bool { return len(insertedIDs(stored(t, client, "wiped"))) == 7 })
	n := int64(len(stored(t, client, "wiped")))
	wiped, err := h.manager.Reset(t.Context(), "wiped", tester)
	if err != nil || wiped.EventsDeleted != n || wiped.Action != "reset" {
		t.Fatalf("reset: %+v, %v; want %d events deleted", wiped, err, n)
	}
	gaps := client.Database(config.DefaultStoreDatabase).Collection(oplogstore.GapsCollection("wiped"))
	var gap oplogstore.Gap
	eventually(t, "the gap to be closed by the first position after the reset", func() bool {
		return gaps.FindOne(t.Context(), bson.D{}).Decode(&gap) == nil && !gap.Before.IsZero()
	})
	if gap.Reason != oplogstore.GapReset || gap.EventsDeleted != n || gap.After.IsZero() || !strings.Contains(gap.Detail, "tester") {
		t.Errorf("gap record %+v", gap)
	}
	if gap.Before.Compare(gap.After) <= 0 {
		t.Errorf("capture restarted at %v, not after the gap's start %v", gap.Before, gap.After)
	}
	if !strings.Contains(h.logs.String(), `msg="Source's captured history wiped" action=reset source_cluster=wiped user=tester remote_addr=127.0.0.1:1 via=test events_deleted=`) {
		t.Errorf("the wipe is not logged with who and how much:\n%s", h.logs)
	}
}

func mongoUpsert() *options.UpdateOneOptionsBuilder { return options.UpdateOne().SetUpsert(true) }

// A source where replSetGetConfig is refused (no clusterMonitor role, or a hosted
// service that does not allow it) is still captured: its identity is then its replica
// set name alone.
func TestIdentityWithoutReplSetGetConfig(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	setFailPoint(t, client, "alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"replSetGetConfig"}}, {Key: "errorCode", Value: 13}})
	id, err := identify(t.Context(), client)
	if err != nil || id.SetName != "rs0" || !id.ReplicaSetID.IsZero() {
		t.Fatalf("identity without replSetGetConfig: %+v, %v", id, err)
	}
	named := clusterIdentity{SetName: "rs0", ReplicaSetID: bson.NewObjectID()}
	if !id.sameCluster(named) || id.sameCluster(clusterIdentity{SetName: "other"}) || named.sameCluster(clusterIdentity{SetName: "rs0", ReplicaSetID: bson.NewObjectID()}) {
		t.Error("sameCluster compares what both identities know, the strongest first")
	}
}
