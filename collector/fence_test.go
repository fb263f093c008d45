package collector

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/go-kit/log"
	"github.com/mongomigrate/observability/internal/config"
	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// testLeases are the leases of one collector instance on the store database db.
func testLeases(db *mongo.Database, ttl time.Duration) *leases {
	return &leases{coll: db.Collection(LeaseCollection), beats: &heartbeats{}, me: NewInstance(), proc: thisProcess(), timing: leaseTiming{ttl: ttl}, logger: log.NewNopLogger()}
}

// A holder whose lease was taken over lands nothing: not its events, nor its position,
// nor a gap record, nor a deletion; and the collections it would have created (a reset
// dropped them) do not come back. The new holder's writes land.
func TestAStaleHolderLandsNothing(t *testing.T) {
	client := testsupport.Connect(t, mongotest.URI(t))
	db := client.Database(config.DefaultStoreDatabase)
	store := newSourceStore(db, "fenced")
	ctx := t.Context()
	old, next := testLeases(db, time.Millisecond), testLeases(db, time.Minute)
	stale, held, err := old.acquire(ctx, "fenced", nil)
	if err != nil || held != nil || stale != 1 {
		t.Fatalf("first acquisition: epoch %d, held %v, %v", stale, held, err)
	}
	time.Sleep(10 * time.Millisecond) // the first holder's lease expires
	epoch, held, err := next.acquire(ctx, "fenced", nil)
	if err != nil || held != nil || epoch != 2 {
		t.Fatalf("takeover: epoch %d, held %v, %v", epoch, held, err)
	}

	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: "82000000010000000101"}, {Key: "cluster_name", Value: "fenced"}})
	token, _ := bson.Marshal(bson.D{{Key: "_data", Value: "82000000010000000101"}})
	pos := &position{Token: token, ClusterTime: bson.Timestamp{T: 1, I: 1}}
	var command []byte
	writes := []struct {
		what string
		do   func(int64) error
	}{
		{"a batch", func(e int64) error {
			_, err := store.write(ctx, e, batchWrite{docs: []bson.Raw{doc}, pos: pos, createEvents: true}, &command)
			return err
		}},
		{"a gap record", func(e int64) error { return store.recordGap(ctx, e, oplogstore.Gap{Reason: oplogstore.GapReset}) }},
		{"a deletion", func(e int64) error { _, err := store.dropAfter(ctx, e, token); return err }},
	}
	for _, w := range writes {
		if err := w.do(stale); !errors.Is(err, errFenced) {
			t.Errorf("%s of the stale holder: %v, want errFenced", w.what, err)
		}
	}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(names, func(n string) bool { return n != LeaseCollection }) {
		t.Fatalf("the stale holder's refused writes created collections: %v", names)
	}
	for _, w := range writes {
		if err := w.do(epoch); err != nil {
			t.Errorf("%s of the holder: %v", w.what, err)
		}
	}
	if n := len(stored(t, client, "fenced")); n != 1 {
		t.Errorf("the holder's batch stored %d documents, want 1", n)
	}
	if err := old.renew(ctx, "fenced", stale); !errors.Is(err, errLeaseLost) {
		t.Errorf("the stale holder renewed: %v", err)
	}
}

// A token another process saved since this holder last saved its own is found when the
// holder saves next: it is counted in the lease, for range, and the holder's position
// is saved all the same.
func TestAPositionSavedByAnotherProcessIsFound(t *testing.T) {
	client := testsupport.Connect(t, mongotest.URI(t))
	db := client.Database(config.DefaultStoreDatabase)
	store := newSourceStore(db, "shared")
	ctx := t.Context()
	epoch, _, err := testLeases(db, time.Minute).acquire(ctx, "shared", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := func(data string) bson.Raw {
		raw, _ := bson.Marshal(bson.D{{Key: "_data", Value: data}})
		return raw
	}
	var command []byte
	save := func(data string, last bson.Raw) bool {
		t.Helper()
		foreign, err := store.write(ctx, epoch, batchWrite{pos: &position{Token: tok(data)}, last: last}, &command)
		if err != nil {
			t.Fatal(err)
		}
		return foreign
	}
	if save("820000000A0000000101", nil) || save("820000000B0000000101", tok("820000000A0000000101")) {
		t.Fatal("this holder's own saves taken for another's")
	}
	// The old tool saves its token, {_id} its only filter.
	if _, err := store.tokens.UpdateOne(ctx, bson.D{{Key: "_id", Value: oplogstore.TokenID("shared")}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "token", Value: tok("820000000C0000000101")}}}}); err != nil {
		t.Fatal(err)
	}
	if found, positionForeign, err := oplogstore.ReadForeignWrites(ctx, db, "shared"); err != nil || found != nil || !positionForeign {
		t.Fatalf("range before the holder's next save: %+v, %v, %v; want the position told apart", found, positionForeign, err)
	}
	if !save("820000000D0000000101", tok("820000000B0000000101")) {
		t.Fatal("the other process's save went unseen")
	}
	found, positionForeign, err := oplogstore.ReadForeignWrites(ctx, db, "shared")
	if err != nil || found == nil || found.Positions != 1 || positionForeign {
		t.Fatalf("range after: %+v, %v, %v; want one foreign position save recorded, and the position the holder's again", found, positionForeign, err)
	}
}

// A heartbeat of a lease epoch earlier than the document's writes nothing; one of a
// holder that no longer holds its lease does not create a document de-registering
// deleted.
func TestHeartbeatsAreFenced(t *testing.T) {
	client := testsupport.Connect(t, mongotest.URI(t))
	beats := &heartbeats{coll: client.Database(config.DefaultCollectorMetadataDatabase).Collection(config.DefaultCollectorMetadataCollection)}
	ctx := t.Context()
	holds := func(ok bool) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) { return ok, nil }
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := beats.report(ctx, "hb", hbdoc.Report{Status: stateRunning, LeaseEpoch: 3}, holds(false)); err != nil {
		t.Fatal(err)
	}
	if doc := heartbeatDoc(t, client, "hb"); doc != nil {
		t.Fatalf("a holder that lost its lease created the heartbeat document: %s", doc)
	}
	if err := beats.report(ctx, "hb", hbdoc.Report{Status: stateRunning, LeaseEpoch: 3, Checkpoint: now}, holds(true)); err != nil {
		t.Fatal(err)
	}
	if err := beats.report(ctx, "hb", hbdoc.Report{Status: stateRunning, LeaseEpoch: 2, Checkpoint: now.Add(-time.Hour)}, holds(false)); err != nil {
		t.Fatal(err)
	}
	hb, err := beats.read(ctx, "hb")
	if err != nil || hb == nil || hb.LeaseEpoch != 3 || !hb.Checkpoint.Equal(now) {
		t.Fatalf("after a report of an earlier epoch: %+v, %v; want epoch 3's checkpoint %v", hb, err, now)
	}
	if epoch := beats.epoch(ctx, "hb"); epoch != 3 {
		t.Errorf("epoch = %d", epoch)
	}
}

// On its own host and boot, a holder's process is told dead once it has gone (a
// zombie counts), or when its pid is another process's now; never one on another host,
// or one that still runs.
func TestAHolderProcessIsToldDead(t *testing.T) {
	me := thisProcess()
	if me == nil {
		t.Skip("needs Linux's /proc (boot id, pid namespace, process start times), which this system does not have")
	}
	host, _ := os.Hostname()
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	_, start, err := processStat(child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	recorded := &processIdentity{BootID: me.BootID, PIDNamespace: me.PIDNamespace, StartTicks: start}
	pid := child.Process.Pid
	if gone(host, pid, recorded, me, host) {
		t.Fatal("a running process told dead")
	}
	if gone("elsewhere", pid, &processIdentity{BootID: me.BootID, PIDNamespace: me.PIDNamespace, StartTicks: start + 1}, me, host) {
		t.Error("a process of another host told dead")
	}
	reused := *recorded
	reused.StartTicks++
	if !gone(host, pid, &reused, me, host) {
		t.Error("a pid another process took since not told dead")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the killed process to be a zombie", func() bool { state, _, err := processStat(pid); return err == nil && state == 'Z' })
	if !gone(host, pid, recorded, me, host) {
		t.Error("a zombie not told dead")
	}
	_ = child.Wait()
	if !gone(host, pid, recorded, me, host) {
		t.Error("a process gone not told dead")
	}
}

// A batch an earlier attempt wrote after all (the commit's answer was lost) is written
// again without failing on its duplicate keys for ever: the documents not yet stored and
// the position go in, the others are left.
func TestABatchWrittenAgainIsStoredOnce(t *testing.T) {
	client := testsupport.Connect(t, mongotest.URI(t))
	db := client.Database(config.DefaultStoreDatabase)
	store := newSourceStore(db, "again")
	ctx := t.Context()
	epoch, _, err := testLeases(db, time.Minute).acquire(ctx, "again", nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(id string) bson.Raw {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "cluster_name", Value: "again"}})
		return raw
	}
	var command []byte
	first := batchWrite{docs: []bson.Raw{doc("8200000001000000010A")}, createEvents: true}
	if _, err := store.write(ctx, epoch, first, &command); err != nil {
		t.Fatal(err)
	}
	token, _ := bson.Marshal(bson.D{{Key: "_data", Value: "8200000001000000020A"}})
	again := batchWrite{docs: []bson.Raw{doc("8200000001000000010A"), doc("8200000001000000020A")}, pos: &position{Token: token}}
	_, err = store.write(ctx, epoch, again, &command)
	if !mongoerr.OnlyDuplicateKeys(err) {
		t.Fatalf("writing a stored document again: %v, want a duplicate key", err)
	}
	again.skipStored = true
	if _, err := store.write(ctx, epoch, again, &command); err != nil {
		t.Fatal(err)
	}
	if ids := len(stored(t, client, "again")); ids != 2 {
		t.Errorf("%d documents stored, want 2", ids)
	}
	saved, err := store.loadToken(ctx)
	if err != nil || !bytes.Equal(saved.Token, token) {
		t.Errorf("the position after the batch written again: %v, %v", saved.Token, err)
	}
}

// A holder killed in the middle of a store transaction leaves it open on the server,
// holding the lease document; the server would keep the next holder's takeover waiting
// until it expires the transaction (a minute or more on mongod's defaults, for ever on
// this test server's). The collector that takes the lease over kills the dead holder's
// session first: the takeover goes through at once, and the dead transaction lands
// nothing.
func TestATakeoverDoesNotWaitForTheDeadHoldersTransaction(t *testing.T) {
	srv := mongotest.New(t, "transactions that do not expire", mongotest.Options{TransactionLifetime: 24 * time.Hour})
	client := testsupport.Connect(t, srv.URI())
	db := client.Database(config.DefaultStoreDatabase)
	ctx := t.Context()
	dead, next := testLeases(db, time.Millisecond), testLeases(db, time.Minute)
	stale, _, err := dead.acquire(ctx, "killed", nil)
	if err != nil || stale != 1 {
		t.Fatalf("first acquisition: epoch %d, %v", stale, err)
	}
	inside, frozen := make(chan struct{}), make(chan struct{})
	deadWrite := make(chan error, 1)
	go func() {
		deadWrite <- newSourceStore(db, "killed").fenced(ctx, stale, nil, func(ctx context.Context) error {
			_, err := db.Collection(oplogstore.GapsCollection("killed")).InsertOne(ctx, bson.D{{Key: "_id", Value: "dead"}})
			close(inside)
			<-frozen // the holder is killed here: its transaction stays open
			return err
		})
	}()
	<-inside
	time.Sleep(10 * time.Millisecond) // the dead holder's lease expires

	takeoverCtx, cancel := context.WithTimeout(ctx, time.Minute) // against hanging only
	defer cancel()
	epoch, held, err := next.acquire(takeoverCtx, "killed", nil)
	close(frozen)
	if err != nil || held != nil || epoch != 2 {
		t.Fatalf("takeover: epoch %d, held %v, %v: it waited for the dead holder's open transaction", epoch, held, err)
	}
	if err := <-deadWrite; err == nil {
		t.Error("the dead holder's transaction committed after the takeover")
	}
	if n, err := db.Collection(oplogstore.GapsCollection("killed")).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("the dead holder's transaction left %d documents (%v), want none", n, err)
	}
}

// A takeover the store refuses to let kill the previous holder's session (another store
// user: Unauthorized) goes on, and says in a warning why it may wait.
func TestARefusedSessionKillIsLogged(t *testing.T) {
	client := testsupport.Connect(t, mongotest.URI(t))
	db := client.Database(config.DefaultStoreDatabase)
	ctx := t.Context()
	dead, next := testLeases(db, time.Millisecond), testLeases(db, time.Minute)
	var logs testsupport.LogBuffer
	next.logger = log.NewLogfmtLogger(&logs)
	stale, _, err := dead.acquire(ctx, "refused", nil)
	if err != nil {
		t.Fatal(err)
	}
	store := newSourceStore(db, "refused")
	defer store.close(ctx)
	if err := store.fenced(ctx, stale, nil, func(context.Context) error { return nil }); err != nil {
		t.Fatalf("a write at the first epoch: %v", err)
	}
	time.Sleep(10 * time.Millisecond) // the dead holder's lease expires
	setFailPoint(t, client, bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "errorCode", Value: 13}})
	if epoch, _, err := next.acquire(ctx, "refused", nil); err != nil || epoch != stale+1 {
		t.Fatalf("takeover: epoch %d, %v; want %d", epoch, err, stale+1)
	}
	if !strings.Contains(logs.String(), "store session could not be killed") || !strings.Contains(logs.String(), "level=warn") {
		t.Errorf("no warning of the refused kill in:\n%s", logs.String())
	}
}
