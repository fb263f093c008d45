// Package mongotest is an in-process MongoDB server for tests: it speaks the
// real wire protocol to the official drivers and behaves like the primary of
// a single-node replica set for the commands this project uses. Anything it
// does not implement fails with an error naming it. See README.md.
package mongotest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Options configures a server. The zero value gives real-server defaults.
type Options struct {
	// Port to listen on (127.0.0.1). 0 picks a free port.
	Port int
	// ReplicaSet is the replica set name announced by hello (default "rs0").
	ReplicaSet string
	// History is how many change events the server retains for resuming
	// change streams (the fake's equivalent of the oplog size; default 100000).
	History int
	// NoopInterval is how often the idle server advances the cluster time, as
	// the real primary's periodic no-op writer does (default 10s).
	NoopInterval time.Duration
	// TTLInterval is how often expired documents are deleted (default 60s,
	// like the real server's TTL monitor).
	TTLInterval time.Duration
	// Version is the MongoDB release the server announces and behaves as
	// where releases differ here: "7.0" (the default) or "8.0", whose
	// vectored inserts are batched (see README.md).
	Version string
	// CursorTimeout is how long an idle cursor lives (default 10 minutes,
	// mongod's cursorTimeoutMillis).
	CursorTimeout time.Duration
	// TransactionLifetime is how long a transaction may stay open before the
	// server aborts it (default 60s, mongod's transactionLifetimeLimitSeconds):
	// a client that went away mid-transaction holds its documents no longer.
	TransactionLifetime time.Duration
	// InitiatedAgo is how long ago the replica set was initiated: the oplog's
	// first entry, the initiation's no-op, is that old until the bounded history
	// evicts it, as on a set whose oplog has not filled since (default 0: now).
	InitiatedAgo time.Duration
	// Shards makes the server a mongos of a sharded cluster with these shards
	// (mongos.go); empty, it is a replica set's primary.
	Shards []Shard
}

// releases are the versions the server can announce.
var releases = map[string]release{
	"7.0": {version: "7.0.14", wire: 21, array: []int32{7, 0, 14, 0}},
	"8.0": {version: "8.0.4", wire: 25, array: []int32{8, 0, 4, 0}, batchedInserts: true},
}

// release is what a MongoDB version changes here: what hello and buildInfo
// say (wire versions from the specifications' table), and whether an
// insert of several documents is one applyOps oplog entry per batch, whose
// events share a cluster time (MongoDB 8.0,
// https://www.mongodb.com/docs/manual/reference/change-events/insert/).
type release struct {
	version        string
	wire           int32
	array          []int32
	batchedInserts bool
}

func (o Options) withDefaults() Options {
	if o.ReplicaSet == "" {
		o.ReplicaSet = "rs0"
	}
	if o.History <= 0 {
		o.History = 100_000
	}
	if o.NoopInterval <= 0 {
		o.NoopInterval = 10 * time.Second
	}
	if o.TTLInterval <= 0 {
		o.TTLInterval = 60 * time.Second
	}
	if o.Version == "" {
		o.Version = "7.0"
	}
	if o.CursorTimeout <= 0 {
		o.CursorTimeout = 10 * time.Minute
	}
	if o.TransactionLifetime <= 0 {
		o.TransactionLifetime = 60 * time.Second
	}
	return o
}

// Server is a running fake. All its methods are safe for concurrent use.
type Server struct {
	opts    Options
	release release
	addr    string // host:port, fixed for the server's life so Restart keeps the URI

	// mu guards the data: catalog, clock, change log, cursors, sessions.
	// Commands run with it held; waits release it (see cmdCtx.waitForChange).
	mu      sync.Mutex
	clock   clock
	dbs     map[string]*database
	log     changeLog
	cursors cursorTable
	// sessions by lsid id.
	sessions map[string]*session
	// changed is closed (and replaced) whenever the cluster time moves, to
	// wake waiting change-stream getMores.
	changed chan struct{}

	fail        failPoint // failCommand
	failGetMore failPoint // failGetMoreAfterCursorCheckout
	// shards are a mongos's (Options.Shards), as listShards lists them.
	shards []Shard

	// netMu guards the listener side.
	netMu     sync.Mutex
	ln        net.Listener
	conns     map[*conn]struct{}
	nextConn  int32
	processID bson.ObjectID
	serving   sync.WaitGroup
	// replicaSetID is the replica set's identity (settings.replicaSetId),
	// fixed for the server's life as a real set's is for its life.
	replicaSetID bson.ObjectID
	closed       bool

	stopBackground chan struct{}
	background     sync.WaitGroup
}

// Start starts a server listening on 127.0.0.1.
func Start(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if _, ok := releases[opts.Version]; !ok {
		return nil, fmt.Errorf("mongotest: unsupported Version %q (7.0 or 8.0)", opts.Version)
	}
	s := &Server{
		opts:           opts,
		release:        releases[opts.Version],
		dbs:            map[string]*database{},
		sessions:       map[string]*session{},
		changed:        make(chan struct{}),
		conns:          map[*conn]struct{}{},
		stopBackground: make(chan struct{}),
		replicaSetID:   bson.NewObjectID(),
	}
	s.log.capacity = opts.History
	s.cursors.init(opts.CursorTimeout)
	// History starts at the set's initiation: a token from before it is lost.
	initiated, wall := s.clock.next(), s.clock.wall
	if opts.InitiatedAgo > 0 {
		wall = wall.Add(-opts.InitiatedAgo)
		initiated = bson.Timestamp{T: uint32(wall.Unix()), I: 1}
		s.clock.last, s.clock.wall = initiated, wall
	}
	s.log.startAt(initiated, noopInitiating, wall)
	s.shards = slices.Clone(opts.Shards)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", opts.Port))
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	s.background.Add(3)
	go s.every(opts.NoopInterval, s.noop)
	go s.every(opts.TTLInterval, s.expireTTL)
	go s.every(opts.TransactionLifetime/2, s.expireTransactions)
	return s, nil
}

// URI is a connection string for this server, naming its replica set (a mongos
// has none).
func (s *Server) URI() string {
	if s.isMongos() {
		return fmt.Sprintf("mongodb://%s/", s.addr)
	}
	return fmt.Sprintf("mongodb://%s/?replicaSet=%s", s.addr, s.opts.ReplicaSet)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Close stops the server for good and drops its data.
func (s *Server) Close() {
	s.netMu.Lock()
	if s.closed {
		s.netMu.Unlock()
		return
	}
	s.closed = true
	s.netMu.Unlock()
	s.Stop()
	close(s.stopBackground)
	s.background.Wait()
}

// Stop closes the listener and every connection, keeping the data: the
// server looks down to clients until Restart. It has no real-server
// equivalent that keeps the same process.
func (s *Server) Stop() {
	s.netMu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
		s.ln = nil
	}
	s.dropConnsLocked()
	s.netMu.Unlock()
	s.serving.Wait()
}

// Restart listens again on the same address after Stop, with the same data
// and change history, announcing a new topologyVersion process id as a
// restarted mongod would.
func (s *Server) Restart() error {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	if s.closed {
		return errors.New("mongotest: server is closed")
	}
	if s.ln != nil {
		return errors.New("mongotest: server is running")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.startAcceptingLocked(ln)
	return nil
}

func (s *Server) dropConnsLocked() {
	for c := range s.conns {
		c.close()
	}
}

func (s *Server) serve(ln net.Listener) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	s.startAcceptingLocked(ln)
}

func (s *Server) startAcceptingLocked(ln net.Listener) {
	s.ln = ln
	s.processID = bson.NewObjectID()
	s.serving.Add(1)
	go s.accept(ln)
}

func (s *Server) accept(ln net.Listener) {
	defer s.serving.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return // listener closed by Stop
		}
		s.netMu.Lock()
		if s.ln != ln {
			s.netMu.Unlock()
			_ = nc.Close()
			return
		}
		s.nextConn++
		c := &conn{nc: nc, id: s.nextConn, done: make(chan struct{})}
		s.conns[c] = struct{}{}
		s.serving.Add(1)
		s.netMu.Unlock()
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(c *conn) {
	defer s.serving.Done()
	defer func() {
		c.close()
		s.netMu.Lock()
		delete(s.conns, c)
		s.netMu.Unlock()
	}()
	c.r = bufio.NewReader(c.nc)
	for {
		req, err := readRequest(c.r)
		if err != nil {
			return
		}
		reply, keepOpen := s.handle(c, req)
		if !keepOpen {
			return
		}
		if req.moreToCome {
			continue
		}
		header := msgHeader(req.requestID, len(reply))
		if req.legacy {
			header = replyHeader(req.requestID, len(reply))
		}
		out := net.Buffers{header, reply}
		if _, err := out.WriteTo(c.nc); err != nil {
			return
		}
	}
}

// every runs f each interval until the server is closed.
func (s *Server) every(interval time.Duration, f func()) {
	defer s.background.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopBackground:
			return
		case <-t.C:
			f()
		}
	}
}

// conn is one client connection.
type conn struct {
	nc        net.Conn
	r         *bufio.Reader
	id        int32
	appName   string // from the handshake's client metadata, for failCommand's appName filter
	done      chan struct{}
	closeOnce sync.Once
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.nc.Close()
	})
}

// watchHangUp notices the client closing the connection while a command
// waits (awaitable hello, awaitData getMore), so the wait ends at once
// instead of at its timeout. stop must be called before the next read.
func (c *conn) watchHangUp() (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.r.Peek(1); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.close()
		}
	}()
	return func() {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}
