package collector

import (
	"context"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongotest"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// runTransaction runs fn in a transaction of a new session on client.
func runTransaction(t *testing.T, client *mongo.Client, fn func(ctx context.Context) error) {
	t.Helper()
	sess, err := client.StartSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.EndSession(context.Background())
	if _, err := sess.WithTransaction(t.Context(), func(ctx context.Context) (any, error) { return nil, fn(ctx) }); err != nil {
		t.Fatal(err)
	}
}

// capturing starts a manager on cfg and waits until source name runs and has
// saved its first token: from then on, writes to the source are captured.
func capturing(t *testing.T, client *mongo.Client, cfg *config.Config, name string) *harness {
	t.Helper()
	h := startManager(t, cfg)
	h.waitState(name, stateRunning)
	eventually(t, name+"'s first token", func() bool {
		return client.Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_"+name).FindOne(t.Context(), bson.D{}).Err() == nil
	})
	return h
}

// transactionEvents returns the stored events that carry a txn_number, in
// stored order.
func transactionEvents(docs []bson.Raw) []bson.Raw {
	var out []bson.Raw
	for _, d := range docs {
		if d.Lookup("txn_number").Type != 0 {
			out = append(out, d)
		}
	}
	return out
}

// checkOneTransaction checks that events are one transaction's, as a replay
// needs them: one cluster time, the session (lsid with its UUID) and the
// transaction number on each.
func checkOneTransaction(t *testing.T, events []bson.Raw) {
	t.Helper()
	for i, ev := range events {
		if !ev.Lookup("ts").Equal(events[0].Lookup("ts")) {
			t.Errorf("event %d of the transaction has ts %v, the first %v", i, ev.Lookup("ts"), events[0].Lookup("ts"))
		}
		if sub, _, ok := ev.Lookup("lsid", "id").BinaryOK(); !ok || sub != 4 {
			t.Errorf("event %d: lsid %v, want {id: UUID, ...}", i, ev.Lookup("lsid"))
		}
		if !ev.Lookup("lsid").Equal(events[0].Lookup("lsid")) || !ev.Lookup("txn_number").Equal(events[0].Lookup("txn_number")) {
			t.Errorf("event %d belongs to another session or transaction: %v %v", i, ev.Lookup("lsid"), ev.Lookup("txn_number"))
		}
		if ev.Lookup("txn_number").Type != bson.TypeInt64 {
			t.Errorf("event %d: txn_number is BSON %v, want int64", i, ev.Lookup("txn_number").Type)
		}
	}
}

// A transaction of several writes on two collections is stored as its
// events, in statement order, all with the transaction's cluster time, its
// lsid and txn_number; the writes outside it carry neither.
func TestTransactionCapturedAtOneClusterTime(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	capturing(t, client, collectorConfig(t, uri, "", "", testSource{name: "txn", uri: uri, database: "txshop"}), "txn")
	db := client.Database("txshop")
	orders, audit := db.Collection("orders"), db.Collection("audit")
	if _, err := orders.InsertMany(t.Context(), []any{bson.D{{Key: "_id", Value: 1}, {Key: "qty", Value: 1}}, bson.D{{Key: "_id", Value: 2}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.InsertOne(t.Context(), bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}
	runTransaction(t, client, func(ctx context.Context) error {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "qty", Value: 7}}); err != nil {
			return err
		}
		if _, err := orders.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "qty", Value: 1}}}}); err != nil {
			return err
		}
		if _, err := orders.DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}}); err != nil {
			return err
		}
		_, err := audit.InsertOne(ctx, bson.D{{Key: "_id", Value: "order 3"}})
		return err
	})
	var txn []bson.Raw
	eventually(t, "the transaction's 4 events", func() bool {
		txn = transactionEvents(stored(t, client, "txn"))
		return len(txn) >= 4
	})
	if got, want := opTypes(txn), []string{"insert", "update", "delete", "insert"}; !slices.Equal(got, want) {
		t.Fatalf("transaction events %v, want %v in statement order", got, want)
	}
	if ns := txn[3].Lookup("ns").StringValue(); ns != "txshop.audit" {
		t.Errorf("the last statement's ns %q", ns)
	}
	checkOneTransaction(t, txn)
	for _, d := range stored(t, client, "txn") {
		if d.Lookup("txn_number").Type == 0 && d.Lookup("lsid").Type != 0 {
			t.Errorf("an event outside the transaction has an lsid: %s", d)
		}
	}
}

// The writer saves a checkpoint between two events of one transaction (a
// batch of 2 events); the manager stops there, and the next start resumes
// inside the transaction: every event stored exactly once, the transaction
// whole at its one cluster time.
func TestCheckpointInsideTransaction(t *testing.T) {
	uri := mongotest.URI(t)
	client := testsupport.Connect(t, uri)
	cfg := collectorConfig(t, uri, "", "", testSource{name: "txmid", uri: uri, database: "txmid"})
	cfg.Collector.Batch.MaxEvents = 2 // a getMore, and a store batch, of 2 events
	h := capturing(t, client, cfg, "txmid")
	tokens := client.Database(config.DefaultStoreDatabase).Collection("resume_tokens_for_txmid")
	coll := client.Database("txmid").Collection("c")
	insertSeq(t, client, "txmid", "c", 0, 1) // the collection exists before the transaction
	eventually(t, "the first insert", func() bool { return len(insertedIDs(stored(t, client, "txmid"))) == 1 })

	// Hold the collector's next getMores (after the one in flight, which
	// returns the transaction's first 2 events): the checkpoint stays inside
	// the transaction until the manager stops. The block is long so that no
	// timing decides it; stopping cancels the getMore.
	setFailPoint(t, client, bson.D{{Key: "times", Value: 1000}}, bson.D{
		{Key: "failCommands", Value: bson.A{"getMore"}}, {Key: "blockConnection", Value: true},
		{Key: "blockTimeMS", Value: 30000}, {Key: "appName", Value: "oplog_collector"},
	})
	runTransaction(t, client, func(ctx context.Context) error {
		for i := 1; i <= 5; i++ {
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}}); err != nil {
				return err
			}
		}
		return nil
	})
	var firstTwo []bson.Raw
	eventually(t, "a checkpoint after the transaction's second event", func() bool {
		firstTwo = transactionEvents(stored(t, client, "txmid"))
		if len(firstTwo) < 2 {
			return false
		}
		raw, err := tokens.FindOne(t.Context(), bson.D{}).Raw()
		return err == nil && raw.Lookup("token", "_data").Equal(firstTwo[1].Lookup("_resume_token", "_data"))
	})
	h.stop()
	if n := len(transactionEvents(stored(t, client, "txmid"))); n != 2 {
		t.Fatalf("%d of the transaction's events stored before the stop, want 2: the checkpoint is not inside the transaction", n)
	}
	setFailPoint(t, client, "off", bson.D{})

	startManager(t, cfg)
	eventually(t, "the rest of the transaction", func() bool { return len(insertedIDs(stored(t, client, "txmid"))) >= 6 })
	docs := stored(t, client, "txmid")
	if ids := insertedIDs(docs); !slices.Equal(ids, seq(0, 6)) {
		t.Fatalf("stored inserts %v, want 0..5 once each, in order", ids)
	}
	txn := transactionEvents(docs)
	if len(txn) != 5 {
		t.Fatalf("%d transaction events stored, want 5", len(txn))
	}
	checkOneTransaction(t, txn)
}
