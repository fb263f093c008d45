package main

import (
	"context"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mongomigrate/observability/internal/testsupport"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// leaseHolderPID is the pid of the collector holding the source's lease, 0 when none.
func leaseHolderPID(t *testing.T, client *mongo.Client, source string) int {
	t.Helper()
	var l struct {
		Holder struct {
			PID int `bson:"pid"`
		} `bson:"holder"`
		RenewedAt bson.DateTime `bson:"renewed_at"`
	}
	err := client.Database("oplog_backup_db").Collection("oplog_collector_leases").
		FindOne(t.Context(), bson.D{{Key: "_id", Value: source}}).Decode(&l)
	if err != nil || l.RenewedAt == 0 {
		return 0
	}
	return l.Holder.PID
}

// Three collectors configured with one source while a writer runs: the holder is
// SIGKILLed again and again; each time a standby takes over once the lease expires,
// and in the end every event is stored exactly once, in order. FAILOVER_KILLS sets the
// number of kills (default 4).
func TestFailoverUnderRepeatedKills(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a full run (-short was given): three collectors and a lease TTL per kill take tens of seconds")
	}
	kills := 4
	if n, err := strconv.Atoi(os.Getenv("FAILOVER_KILLS")); err == nil {
		kills = n
	}
	uri := startMongotestd(t)
	client := testsupport.Connect(t, uri)
	cfg := writeCollectorConfig(t, uri, "shared")
	daemons := map[int]*daemon{}
	for range 3 {
		d := startDaemon(t, cfg)
		daemons[d.cmd.Process.Pid] = d
	}
	eventually(t, "a holder", func() bool { return daemons[leaseHolderPID(t, client, "shared")] != nil })
	eventually(t, "the first token", func() bool { return tokenSaved(t, client, "shared") })

	ctx, stopWriting := context.WithCancel(context.Background())
	written := make(chan int, 1)
	go func() {
		coll := client.Database("shared").Collection("c")
		i := 0
		for ; ctx.Err() == nil; i++ {
			if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: i}}); err != nil {
				t.Error(err)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		written <- i
	}()

	var takeovers []time.Duration
	for range kills {
		time.Sleep(300 * time.Millisecond)
		holder := leaseHolderPID(t, client, "shared")
		d := daemons[holder]
		if d == nil {
			t.Fatalf("the lease is held by pid %d, none of the collectors", holder)
		}
		killed := time.Now()
		d.stop(t, syscall.SIGKILL)
		delete(daemons, holder)
		eventually(t, "a standby to take over", func() bool {
			next := leaseHolderPID(t, client, "shared")
			return next != holder && daemons[next] != nil
		})
		takeovers = append(takeovers, time.Since(killed))
		d = startDaemon(t, cfg) // back to three
		daemons[d.cmd.Process.Pid] = d
	}
	stopWriting()
	total := <-written
	eventually(t, "every event stored", func() bool { return len(storedInserts(t, client, "shared")) >= total })
	want := make([]int32, total)
	for i := range want {
		want[i] = int32(i)
	}
	if got := storedInserts(t, client, "shared"); !slices.Equal(got, want) {
		t.Fatalf("after %d kills of the holder the store holds %d inserts, not 0..%d once each in order", kills, len(got), total-1)
	}
	slices.Sort(takeovers)
	t.Logf("%d events stored exactly once across %d SIGKILLs of the holder among 3 collectors (lease TTL 1s); takeover min %v, median %v, max %v",
		total, kills, takeovers[0], takeovers[len(takeovers)/2], takeovers[len(takeovers)-1])
}
