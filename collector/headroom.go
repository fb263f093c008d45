package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
)

// Resume headroom: how long capture may stop, or fall behind, before its saved
// position leaves the source's oplog and the resume token is lost. It is the
// checkpoint less the time of the oldest entry the source's oplog still holds, which
// this file reads: the first entry of local.oplog.rs in natural order, as
// db.getReplicationInfo() reads it (its tFirst). A sharded cluster, reached through
// mongos, holds an oplog on each shard, read on the shard itself (listShards names
// them) with the source's credentials and options; the shard whose oldest entry is
// newest binds, since a change stream through mongos reads every shard.
//
// It is read at the heartbeat interval, by the holder of the lease only: the oldest
// entry moves as the oplog is truncated, slowly against a headroom of hours, and
// each read is one first-record read per replica set. A source or shard that cannot
// be read leaves the source with no series at all (the headroom is unknown, and a
// shard left out could be the binding one), counted in
// oplog_capture_errors_total{kind="source_oplog"} and logged once per cause.

// errSourceOplog is the kind of oplog_capture_errors_total for a failed read.
const errSourceOplog = "source_oplog"

// oplogReadTimeout bounds one read of the source's oplog edges, every shard included.
const oplogReadTimeout = 10 * time.Second

func newSourceOplogGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "oplog_capture", Name: "source_oplog_oldest_timestamp_seconds",
		Help: "Cluster time of the oldest entry the source's oplog still holds (per shard of a sharded source, the newest of them binding): the resume headroom is the checkpoint less this. Absent while it cannot be read.",
	}, []string{"source_cluster", "shard"})
}

// oplogEdge is how far one replica set's oplog reaches: its oldest entry and, when
// asked for, its newest. shard is the shard's name; empty for a replica set source.
type oplogEdge struct {
	shard          string
	oldest, newest bson.Timestamp
}

// binding is the edge that bounds a change stream over every shard: the oldest entry
// the whole cluster still holds is the newest of the shards' oldest, and the newest
// entry is the newest of theirs.
func binding(edges []oplogEdge) (oldest, newest bson.Timestamp) {
	for _, e := range edges {
		if e.oldest.After(oldest) {
			oldest = e.oldest
		}
		if e.newest.After(newest) {
			newest = e.newest
		}
	}
	return oldest, newest
}

// oplogReader reads the source's oplog edges: on the source itself for a replica set,
// on each shard for a sharded cluster, through clients it keeps for the shards.
type oplogReader struct {
	source *mongo.Client
	uri    config.MongoURI // the source's: shards are reached with its credentials and options

	mu     sync.Mutex
	shards map[string]*shardClient // by shard name
}

type shardClient struct {
	host   string // as listShards gives it: SET/HOST:PORT,...
	client *mongo.Client
}

func newOplogReader(source *mongo.Client, uri config.MongoURI) *oplogReader {
	return &oplogReader{source: source, uri: uri, shards: map[string]*shardClient{}}
}

// read returns the edges of every replica set of the source, each with its newest
// entry when newest is set.
func (r *oplogReader) read(ctx context.Context, newest bool) ([]oplogEdge, error) {
	ctx, cancel := context.WithTimeout(ctx, oplogReadTimeout)
	defer cancel()
	var hello struct {
		Msg string `bson:"msg"`
	}
	if err := r.source.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return nil, fmt.Errorf("asking the source what it is (hello): %w", err)
	}
	if hello.Msg != "isdbgrid" {
		e, err := readOplogEdge(ctx, r.source, newest)
		return []oplogEdge{e}, err
	}
	shards, err := listShards(ctx, r.source)
	if err != nil {
		return nil, err
	}
	edges := make([]oplogEdge, len(shards))
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, sh := range shards {
		wg.Go(func() {
			client, err := r.shardClient(sh)
			if err == nil {
				edges[i], err = readOplogEdge(ctx, client, newest)
			}
			edges[i].shard = sh.ID
			if err != nil {
				errs[i] = fmt.Errorf("shard %s: %w", sh.ID, err)
			}
		})
	}
	wg.Wait()
	r.forgetShardsBut(shards)
	return edges, errors.Join(errs...)
}

// listedShard is a shard as listShards gives it.
type listedShard struct {
	ID   string `bson:"_id"`
	Host string `bson:"host"`
}

func listShards(ctx context.Context, mongos *mongo.Client) ([]listedShard, error) {
	var res struct {
		Shards []listedShard `bson:"shards"`
	}
	if err := mongos.Database("admin").RunCommand(ctx, bson.D{{Key: "listShards", Value: 1}}).Decode(&res); err != nil {
		return nil, fmt.Errorf("listing the shards (listShards, which needs the clusterMonitor role): %w", err)
	}
	if len(res.Shards) == 0 {
		return nil, errors.New("listShards lists no shard")
	}
	return res.Shards, nil
}

// shardClient returns the client of a shard's replica set, made anew when its hosts
// changed.
func (r *oplogReader) shardClient(sh listedShard) (*mongo.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.shards[sh.ID]; c != nil && c.host == sh.Host {
		return c.client, nil
	}
	r.disconnect(sh.ID)
	uri, err := r.uri.Resolve()
	if err != nil {
		return nil, err
	}
	set, hosts, ok := strings.Cut(sh.Host, "/")
	if !ok {
		set, hosts = "", sh.Host
	}
	shardURI, err := config.ReplicaSetURI(uri, set, strings.Split(hosts, ","))
	if err != nil {
		return nil, fmt.Errorf("the shard's connection string, made from the source's: %w", err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(shardURI).SetAppName("oplog_collector").SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return nil, errors.New(describe(err))
	}
	r.shards[sh.ID] = &shardClient{host: sh.Host, client: client}
	return client, nil
}

// forgetShardsBut disconnects from the shards no longer listed.
func (r *oplogReader) forgetShardsBut(listed []listedShard) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.shards {
		if !slices.ContainsFunc(listed, func(sh listedShard) bool { return sh.ID == id }) {
			r.disconnect(id)
		}
	}
}

// disconnect drops the client of a shard. The caller holds mu.
func (r *oplogReader) disconnect(id string) {
	if c := r.shards[id]; c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.client.Disconnect(ctx)
		cancel()
		delete(r.shards, id)
	}
}

// close disconnects from every shard.
func (r *oplogReader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.shards {
		r.disconnect(id)
	}
}

// readOplogEdge reads a replica set's oldest oplog entry, and its newest when asked.
func readOplogEdge(ctx context.Context, client *mongo.Client, newest bool) (oplogEdge, error) {
	oplog := client.Database("local").Collection("oplog.rs")
	entry := func(order int) (bson.Timestamp, error) {
		var doc struct {
			TS bson.Timestamp `bson:"ts"`
		}
		err := oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: order}}).
			SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&doc)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return bson.Timestamp{}, errors.New("local.oplog.rs holds no entry: is it a replica set member?")
		case err != nil:
			return bson.Timestamp{}, fmt.Errorf("reading local.oplog.rs (which needs read on the local database): %w", err)
		}
		return doc.TS, nil
	}
	var e oplogEdge
	var err error
	if e.oldest, err = entry(1); err != nil || !newest {
		return e, err
	}
	e.newest, err = entry(-1)
	return e, err
}

// headroom exports how far back the source's oplog reaches, read while the source
// holds its lease, and keeps the binding oldest entry for the heartbeat.
type headroom struct {
	name   string
	oplog  *oplogReader
	gauge  *prometheus.GaugeVec // oplog_capture_source_oplog_oldest_timestamp_seconds
	errors prometheus.Counter   // oplog_capture_errors_total{kind="source_oplog"}
	logger log.Logger

	mu      sync.Mutex
	shards  []string  // those exported: one "" for a replica set
	oldest  time.Time // the binding oldest entry
	errText string    // why the last read failed
}

func newHeadroom(name string, oplog *oplogReader, m *metrics, logger log.Logger) *headroom {
	return &headroom{name: name, oplog: oplog, gauge: m.sourceOplogOldest, errors: m.errors.WithLabelValues(name, errSourceOplog), logger: logger}
}

// watch exports the source's oplog edges every period while holds says the source
// holds its lease, and deletes them otherwise.
func (h *headroom) watch(ctx context.Context, period time.Duration, holds func() bool) {
	for {
		if holds() {
			edges, err := h.oplog.read(ctx, false)
			if ctx.Err() != nil {
				return
			}
			h.export(edges, err)
		} else {
			h.forget()
		}
		if !sleep(ctx, period) {
			return
		}
	}
}

// export sets the gauge of each shard read (one without a shard label for a replica
// set), deleting those of shards gone; a failed read deletes them all.
func (h *headroom) export(edges []oplogEdge, err error) {
	h.mu.Lock()
	was, wasErr := h.shards, h.errText
	h.errText = describe(err)
	h.mu.Unlock()
	if err != nil {
		h.errors.Inc()
		h.forget()
		if describe(err) != wasErr {
			level.Warn(h.logger).Log("msg", "The source's oplog cannot be read: its resume headroom is unknown and oplog_capture_source_oplog_oldest_timestamp_seconds is not exported until it is; see the README on the access it needs", "err", describe(err))
		}
		return
	}
	if wasErr != "" {
		level.Info(h.logger).Log("msg", "The source's oplog is read again")
	}
	var shards []string
	for _, e := range edges {
		shards = append(shards, e.shard)
		h.gauge.WithLabelValues(h.name, e.shard).Set(seconds(e.oldest))
	}
	for _, shard := range was {
		if !slices.Contains(shards, shard) {
			h.gauge.DeleteLabelValues(h.name, shard)
		}
	}
	oldest, _ := binding(edges)
	h.mu.Lock()
	h.shards, h.oldest = shards, tsTime(oldest)
	h.mu.Unlock()
}

// forget deletes the source's oplog series: unknown, or the holder's to report.
func (h *headroom) forget() {
	h.gauge.DeletePartialMatch(prometheus.Labels{"source_cluster": h.name})
	h.mu.Lock()
	h.shards, h.oldest = nil, time.Time{}
	h.mu.Unlock()
}

// oldestEntry is the oldest entry the source's oplog holds, as last read; zero when
// unknown.
func (h *headroom) oldestEntry() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.oldest
}
