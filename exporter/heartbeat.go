package exporter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/heartbeat"
	"github.com/mongomigrate/observability/internal/mongoerr"
)

var heartbeatRegistration = Registration{
	Name:    "collector_heartbeat",
	Help:    "Read the oplog collectors' heartbeat documents from every configured central metadata database.",
	Default: true,
	New:     newHeartbeatScraper,
}

var (
	heartbeatMetadataUp = prometheus.NewDesc("oplog_collector_metadata_up",
		"Whether the central metadata database's heartbeat collection was readable (1) or not (0). A database or collection that does not exist yet is readable and empty.",
		[]string{"metadata"}, nil)
	heartbeatOmitted = prometheus.NewDesc("oplog_collector_sources_omitted",
		"Heartbeat documents without series: beyond source_limit (in name order), without a name, or with a name used by an earlier document.",
		[]string{"metadata"}, nil)
	heartbeatStatus = prometheus.NewDesc("oplog_collector_status",
		"collector_status.status of each registered source cluster (state-set; \"other\" for a status this exporter does not know, which is logged).",
		[]string{"metadata", "source_cluster", "status"}, nil)
	heartbeatLastReport = prometheus.NewDesc("oplog_collector_last_report_timestamp_seconds",
		"When the collector last wrote its heartbeat (collector_status.last_collector_reported_utc). Kept when the collector stops reporting, so time() - this grows.",
		[]string{"metadata", "source_cluster"}, nil)
	heartbeatLastOplog = prometheus.NewDesc("oplog_collector_last_oplog_timestamp_seconds",
		"The collector's checkpoint (collector_status.last_oplog_time_utc): every event up to this cluster time is stored. time() - this is the capture lag.",
		[]string{"metadata", "source_cluster"}, nil)
	heartbeatFirstOplog = prometheus.NewDesc("oplog_collector_first_oplog_timestamp_seconds",
		"Time of the oldest event in the oplog store (collector_status.first_oplog_time_utc): last_oplog - first_oplog is the recovery window.",
		[]string{"metadata", "source_cluster"}, nil)
	heartbeatSourceOplogOldest = prometheus.NewDesc("oplog_collector_source_oplog_oldest_timestamp_seconds",
		"Time of the oldest entry the source's oplog still holds (collector_status.source_oplog_oldest_time_utc; on a sharded source, the newest of the shards' oldest): last_oplog - this is the resume headroom. This project's collector only; absent while it cannot read the oplog.",
		[]string{"metadata", "source_cluster"}, nil)
	heartbeatError = prometheus.NewDesc("oplog_collector_error",
		"Whether the collector reports an error message (1) or not (0); the text is logged when it changes, never exported.",
		[]string{"metadata", "source_cluster"}, nil)
)

type heartbeatScraper struct {
	targets []heartbeatTarget
	env     Env
}

type heartbeatTarget struct {
	config.HeartbeatDatabase
	client *mongoClient
}

func newHeartbeatScraper(cfg *config.Exporter, env Env) (Scraper, error) {
	s := &heartbeatScraper{env: env}
	for _, m := range cfg.HeartbeatDatabases {
		s.targets = append(s.targets, heartbeatTarget{HeartbeatDatabase: m, client: newMongoClient(m.MongoURI, m.Timeout)})
	}
	return s, nil
}

func (s *heartbeatScraper) Close() {
	for _, t := range s.targets {
		t.client.close()
	}
}

func (s *heartbeatScraper) Scrape(ctx context.Context, ch chan<- prometheus.Metric) error {
	var wg sync.WaitGroup
	for i := range s.targets {
		wg.Go(func() { s.scrapeTarget(ctx, &s.targets[i], ch) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("scrape deadline reached before every metadata database answered: %w", err)
	}
	return nil
}

func (s *heartbeatScraper) scrapeTarget(ctx context.Context, t *heartbeatTarget, ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	ids := []any{"metadata", t.Name}
	key := "collector_metadata/" + t.Name
	up := func(out *batch, ok bool) {
		out.add(heartbeatMetadataUp, prometheus.GaugeValue, boolValue(ok), t.Name)
	}
	s.env.target(ch, key, ids, func(out *batch) {
		docs, total, err := t.read(ctx)
		s.env.OnChange.Failure(key, err, ids...)
		up(out, err == nil)
		if err != nil {
			return
		}
		exported := s.emit(out, t, docs)
		omitted := float64(total - exported)
		out.add(heartbeatOmitted, prometheus.GaugeValue, omitted, t.Name)
		if total > *t.SourceLimit {
			s.env.OnChange.Notice(key+"/limit", "More source clusters than source_limit: the rest have no series (oplog_collector_sources_omitted)",
				fmt.Sprintf("%d documents, source_limit %d", total, *t.SourceLimit), ids...)
		} else {
			s.env.OnChange.Notice(key+"/limit", "", "", ids...)
		}
	}, func(out *batch) { up(out, false) })
}

// emit sends the series of each usable document and returns how many sources it
// exported. A document without a name, or whose name (once a valid label value) an
// earlier document has, is logged and left out.
func (s *heartbeatScraper) emit(out *batch, t *heartbeatTarget, docs []bson.Raw) int {
	ids := []any{"metadata", t.Name}
	key := "collector_metadata/" + t.Name
	seen := map[string]bool{}
	var unusable []string
	for _, doc := range docs {
		hb, problems := heartbeat.Parse(doc)
		name, _ := labelValue(hb.Name)
		switch {
		case hb.Name == "":
			unusable = append(unusable, strings.Join(problems, "; "))
			continue
		case seen[name]:
			unusable = append(unusable, fmt.Sprintf("two documents are named %q; only the first is exported", name))
			continue
		}
		seen[name] = true
		docKey := key + "/" + name
		sourceIDs := append(slices.Clip(ids), "source_cluster", name)
		s.env.OnChange.Notice(docKey+"/fields", "Heartbeat fields of an unexpected type are left out", strings.Join(problems, "; "), sourceIDs...)
		s.env.OnChange.Notice(docKey+"/error", "The collector reports an error", hb.Error, sourceIDs...)
		s.env.unknownValue(docKey+"/status", "collector status", unknownOf(hb.Status, heartbeat.Statuses), sourceIDs...)
		e := emitter{out: out, labels: []string{t.Name, hb.Name}} // the batch repairs and counts the label
		e.stateSet(heartbeatStatus, heartbeat.Statuses, hb.Status)
		e.gauge(heartbeatLastReport, unixSeconds(hb.LastReport))
		e.gauge(heartbeatLastOplog, unixSeconds(hb.Checkpoint))
		e.gauge(heartbeatFirstOplog, unixSeconds(hb.FirstOplog))
		e.gauge(heartbeatSourceOplogOldest, unixSeconds(hb.SourceOplogOldest))
		failed := hb.Error != ""
		e.flag(heartbeatError, &failed)
	}
	slices.Sort(unusable)
	s.env.OnChange.Notice(key+"/unusable", "Heartbeat documents cannot be exported", strings.Join(slices.Compact(unusable), " | "), ids...)
	return len(seen)
}

// read returns the first source_limit heartbeat documents in name order, and how many
// there are. Only the name and collector_status are fetched: the old collector (whose
// layout package oplogstore names) stores connection strings with passwords next to
// them.
func (t *heartbeatTarget) read(ctx context.Context) ([]bson.Raw, int, error) {
	client, err := t.client.get()
	if err != nil {
		return nil, 0, err
	}
	db := client.Database(t.Database)
	cursor, err := aggregate(ctx, db, t.Collection, mongo.Pipeline{
		{{Key: "$sort", Value: bson.D{{Key: heartbeat.FieldName, Value: 1}}}},
		{{Key: "$limit", Value: max(*t.SourceLimit, 1)}},
		{{Key: "$project", Value: heartbeat.Projection()}},
	})
	if err != nil {
		return nil, 0, mongoerr.ScrapeError(ctx, t.Timeout, "reading the heartbeat documents", err)
	}
	var docs []bson.Raw
	for cursor.Next(ctx) && len(docs) < *t.SourceLimit {
		docs = append(docs, slices.Clone(cursor.Current))
	}
	err = cursor.Err()
	_ = cursor.Close(context.WithoutCancel(ctx))
	if err != nil {
		return nil, 0, mongoerr.ScrapeError(ctx, t.Timeout, "reading the heartbeat documents", err)
	}
	total := len(docs)
	if len(docs) == *t.SourceLimit || *t.SourceLimit == 0 {
		n, err := db.Collection(t.Collection).CountDocuments(ctx, bson.D{})
		if err != nil {
			return nil, 0, mongoerr.ScrapeError(ctx, t.Timeout, "counting the heartbeat documents", err)
		}
		total = int(n)
	}
	return docs, total, nil
}

// unixSeconds is a time as Unix seconds, nil when unknown.
func unixSeconds(t *time.Time) *float64 {
	if t == nil {
		return nil
	}
	seconds := float64(t.Unix()) + float64(t.Nanosecond())/1e9
	return &seconds
}
