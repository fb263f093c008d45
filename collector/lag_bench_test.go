package collector

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// lagRun is how long each offered rate is kept up.
const lagRun = 3 * time.Second

// BenchmarkCaptureLag: how far the store is behind the source while the source is
// written at a fixed rate, for this collector and the old tool's loop (100 events or
// 1 s per batch), at 200, 2,000 and 20,000 inserts/s, in one run (fresh servers for
// each). Per event, the lag is the store's commit time (the wallTime of the store's own
// change event) less the source's (the event's wallTime, stored as wall_time), both
// from the test servers on this machine's clock. Reports p50 and p99 lag, the rate
// actually offered, and the store writes per second that it took.
func BenchmarkCaptureLag(b *testing.B) {
	for _, design := range []string{"collector", "old-design"} {
		for _, rate := range []int{200, 2000, 20000} {
			b.Run(fmt.Sprintf("%s/%d-per-s", design, rate), func(b *testing.B) { benchmarkLag(b, design, rate) })
		}
	}
}

func benchmarkLag(b *testing.B, design string, rate int) {
	c := newCaptureBench(b, 0, false)
	for b.Loop() {
		db, before := c.fresh()
		ctx, stop := context.WithCancel(context.Background())
		storeDB := "old_" + db
		writes := func() float64 { return 0 }
		switch design {
		case "collector":
			m := NewManager(prometheus.NewRegistry(), log.NewNopLogger(), testOptions())
			if err := m.Apply(benchConfig(b, c.uri, c.storeURI, db, before)); err != nil {
				b.Fatal(err)
			}
			defer stopManager(m)
			storeDB = "store_" + db
			// An insert and a token save per batch.
			writes = func() float64 { return 2 * testutil.ToFloat64(m.metrics.batches.WithLabelValues(db)) }
		default:
			batches := make(chan int, 1)
			go func() { batches <- oldDesign(ctx, b, c.client, c.storeClient, db, before, 0) }()
			defer func() { <-batches }()
		}
		stored, err := c.storeClient.Database(storeDB).Collection("oplogs_"+db).Watch(context.Background(), mongo.Pipeline{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		offered := offer(b, c.client, db, rate)
		elapsed := time.Since(start)
		lags := storeLags(b, stored, db+".offered", offered)
		elapsedWrites := writes() / time.Since(start).Seconds()
		stop()
		_ = stored.Close(context.Background())
		slices.Sort(lags)
		b.ReportMetric(float64(offered)/elapsed.Seconds(), "offered-per-s")
		b.ReportMetric(percentile(lags, 0.50), "p50-lag-ms")
		b.ReportMetric(percentile(lags, 0.99), "p99-lag-ms")
		if design == "collector" {
			b.ReportMetric(elapsedWrites, "store-writes-per-s")
		}
	}
}

// offer inserts into db at rate documents per second for lagRun, in a write every 10 ms,
// and returns how many it inserted.
func offer(b *testing.B, client *mongo.Client, db string, rate int) int {
	target := client.Database(db).Collection("offered")
	perTick := max(1, rate/100)
	tick := time.Second * time.Duration(perTick) / time.Duration(rate)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	n := 0
	for deadline := time.Now().Add(lagRun); time.Now().Before(deadline); <-ticker.C {
		docs := make([]any, perTick)
		for i := range docs {
			docs[i] = bson.D{{Key: "_id", Value: n + i}}
		}
		if _, err := target.InsertMany(context.Background(), docs); err != nil {
			b.Fatal(err)
		}
		n += perTick
	}
	return n
}

// storeLags reads the store's change stream until n inserts into ns were stored, and
// returns each one's lag in ms.
func storeLags(b *testing.B, stored *mongo.ChangeStream, ns string, n int) []float64 {
	lags := make([]float64, 0, n)
	deadline := time.Now().Add(5 * time.Minute) // against hanging only
	for len(lags) < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d offered events stored", len(lags), n)
		}
		if !stored.TryNext(context.Background()) {
			if err := stored.Err(); err != nil {
				b.Fatal(err)
			}
			continue
		}
		doc := stored.Current.Lookup("fullDocument").Document()
		if doc.Lookup("op_type").StringValue() != "insert" || doc.Lookup("ns").StringValue() != ns {
			continue
		}
		source, ok := doc.Lookup("wall_time").DateTimeOK()
		commit, ok2 := stored.Current.Lookup("wallTime").DateTimeOK()
		if ok && ok2 {
			lags = append(lags, float64(commit-source))
		}
	}
	return lags
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}
