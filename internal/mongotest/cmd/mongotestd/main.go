// Command mongotestd runs the mongotest fake MongoDB server for manual and
// end-to-end use: it prints its URI and serves until killed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/mongomigrate/observability/internal/mongotest"
)

func main() {
	port := flag.Int("port", 0, "port to listen on at 127.0.0.1 (0: any free port)")
	history := flag.Int("history", 0, "change events kept for resuming change streams (0: 100000)")
	noop := flag.Duration("noop-interval", 0, "idle cluster-time advance interval (0: 10s, as mongod)")
	ttl := flag.Duration("ttl-interval", 0, "TTL monitor interval (0: 60s, as mongod)")
	replSet := flag.String("replica-set", "", "replica set name (default rs0)")
	version := flag.String("version", "", "MongoDB version to behave as: 7.0 (default) or 8.0")
	txnLifetime := flag.Duration("transaction-lifetime", 0, "how long a transaction may stay open before it is aborted (0: 60s, as mongod's transactionLifetimeLimitSeconds)")
	initiatedAgo := flag.Duration("initiated-ago", 0, "how long ago the replica set was initiated: the age of the oplog's first entry until the history evicts it (0: now)")
	var shards []mongotest.Shard
	flag.Func("shard", "act as a mongos with this shard, given as ID=SET/HOST:PORT[,HOST:PORT] (repeat for each shard)", func(v string) error {
		id, host, ok := strings.Cut(v, "=")
		if !ok || id == "" || host == "" {
			return fmt.Errorf("%q is not ID=SET/HOST:PORT", v)
		}
		shards = append(shards, mongotest.Shard{ID: id, Host: host})
		return nil
	})
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		// The server holds every document in memory, so at Go's default a garbage
		// collection marks the whole data set every time the heap doubles: the cost of
		// a write grows with the data, which a real server's does not. Collect less often.
		debug.SetGCPercent(400)
	}
	srv, err := mongotest.Start(mongotest.Options{
		Port: *port, History: *history, NoopInterval: *noop, TTLInterval: *ttl, ReplicaSet: *replSet, Version: *version,
		TransactionLifetime: *txnLifetime, InitiatedAgo: *initiatedAgo, Shards: shards,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mongotestd:", err)
		os.Exit(1)
	}
	fmt.Println(srv.URI())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
}
