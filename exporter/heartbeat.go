package exporter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/config"
)

var heartbeatRegistration = Registration{
	Name:    "collector_heartbeat",
	Help:    "Read the oplog collectors' heartbeat documents from every configured central metadata database.",
	Default: true,
	New:     newHeartbeatScraper,
}

// collectorStatuses are the values of collector_status.status that the old Python
// collector and its manager write (../shared/reference/oplog-collector.md); this
// project's collector writes the same ones.
var collectorStatuses = []string{
	"pending_registration", "starting", "running", "retrying_connection", "error",
	"error_resume_token_lost", "error_max_retries_reached", "stopping", "stopped",
	"resetting_oplog_store", "error_stopped_unexpectedly", "stopped_orphaned",
}

var (
	heartbeatMetadataUp = prometheus.NewDesc("oplog_collector_metadata_up",
		"Whether the central metadata database's heartbeat collection was readable (1) or not (0). A database or collection that does not exist yet is readable and empty.",
		[]string{"metadata"}, nil)
	heartbeatStatus = prometheus.NewDesc("oplog_collector_status",
		"collector_status.status of each registered source cluster (state-set).",
		[]string{"metadata", "source_cluster", "status"}, nil)
	heartbeatLastReport = prometheus.NewDesc("oplog_collector_last_report_timestamp_seconds",
		"When the collector last wrote its heartbeat (collector_status.last_collector_reported_utc). Kept when the collector stops reporting, so time() - this grows.",
		[]string{"metadata", "source_cluster"}, nil)
	heartbeatLastOplog = prometheus.NewDesc("oplog_collector_last_oplog_timestamp_seconds",
		"Cluster time of the newest event the collector saved (collector_status.last_oplog_time_utc): time() - this is the capture lag.",
		[]string{"metadata", "source_cluster"}, nil)
	heartbeatFirstOplog = prometheus.NewDesc("oplog_collector_first_oplog_timestamp_seconds",
		"Time of the oldest event in the oplog store (collector_status.first_oplog_time_utc): last - first is the recovery window.",
		[]string{"metadata", "source_cluster"}, nil)
	heartbeatError = prometheus.NewDesc("oplog_collector_error",
		"Whether the collector reports an error message (1) or not (0); the text is logged when it changes, never exported.",
		[]string{"metadata", "source_cluster"}, nil)
	heartbeatDescs = []*prometheus.Desc{heartbeatMetadataUp, heartbeatStatus, heartbeatLastReport, heartbeatLastOplog, heartbeatFirstOplog, heartbeatError}
)

type heartbeatScraper struct {
	targets []heartbeatTarget
	env     Env
}

type heartbeatTarget struct {
	config.CollectorMetadata
	client *mongo.Client
}

func newHeartbeatScraper(cfg *config.Exporter, env Env) (Scraper, error) {
	s := &heartbeatScraper{env: env}
	for _, m := range cfg.CollectorMetadata {
		client, err := connectMongo(m.MongoURI, m.Timeout)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("collector_metadata %q: %w", m.Name, err)
		}
		s.targets = append(s.targets, heartbeatTarget{CollectorMetadata: m, client: client})
	}
	return s, nil
}

func (s *heartbeatScraper) Close() {
	for _, t := range s.targets {
		disconnect(t.client, t.Timeout)
	}
}

func (s *heartbeatScraper) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range heartbeatDescs {
		ch <- d
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
	docs, err := t.read(ctx)
	s.env.Changes.Failure("collector_metadata/"+t.Name, err, ids...)
	ch <- prometheus.MustNewConstMetric(heartbeatMetadataUp, prometheus.GaugeValue, boolValue(err == nil), t.Name)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, doc := range docs {
		hb, problem := parseHeartbeat(doc)
		if hb.name == "" || seen[hb.name] {
			if hb.name != "" {
				problem = fmt.Sprintf("two documents are named %q; only the first is exported", hb.name)
			}
			s.env.Changes.Notice("collector_metadata/"+t.Name+"/unusable", "A heartbeat document cannot be exported", problem, ids...)
			continue
		}
		seen[hb.name] = true
		clusterIDs := append(slices.Clip(ids), "source_cluster", hb.name)
		s.env.Changes.Notice("collector_metadata/"+t.Name+"/"+hb.name+"/fields", "Heartbeat fields of an unexpected type are left out", problem, clusterIDs...)
		s.env.Changes.Notice("collector_metadata/"+t.Name+"/"+hb.name+"/error", "The collector reports an error", hb.errorMessage, clusterIDs...)
		out := emitter{ch: ch, labels: []string{t.Name, hb.name}}
		out.stateSet(heartbeatStatus, collectorStatuses, hb.status)
		out.gauge(heartbeatLastReport, hb.lastReport)
		out.gauge(heartbeatLastOplog, hb.lastOplog)
		out.gauge(heartbeatFirstOplog, hb.firstOplog)
		failed := hb.errorMessage != ""
		out.flag(heartbeatError, &failed)
	}
}

// read returns every heartbeat document. Only the name and collector_status are
// fetched: the old collector stores connection strings with passwords next to them.
func (t *heartbeatTarget) read(ctx context.Context) ([]bson.Raw, error) {
	cursor, err := aggregate(ctx, t.client.Database(t.Database), t.Collection, mongo.Pipeline{
		{{Key: "$project", Value: bson.D{{Key: "_id", Value: 0}, {Key: "name", Value: 1}, {Key: "collector_status", Value: 1}}}},
		{{Key: "$sort", Value: bson.D{{Key: "name", Value: 1}}}},
	})
	if err != nil {
		return nil, describeMongoError(ctx, t.Timeout, err)
	}
	var docs []bson.Raw
	for cursor.Next(ctx) {
		docs = append(docs, slices.Clone(cursor.Current))
	}
	err = cursor.Err()
	_ = cursor.Close(context.WithoutCancel(ctx))
	if err != nil {
		return nil, describeMongoError(ctx, t.Timeout, err)
	}
	return docs, nil
}

// describeMongoError words a timeout the same way at every scrape (so it is logged
// once) and keeps the driver's text otherwise.
func describeMongoError(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || mongo.IsTimeout(err) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no answer within the timeout of %s or the scrape deadline", timeout)
		}
		return fmt.Errorf("operation timed out on the server or in the driver: %w", err)
	}
	return err
}

// heartbeat is what a collector_status document says, nil where it says nothing.
type heartbeat struct {
	name                              string
	status                            *string
	lastReport, lastOplog, firstOplog *float64
	errorMessage                      string
}

// parseHeartbeat reads one document as either collector writes it: ISO-8601 strings
// from the old Python collector (Python's isoformat, "+00:00"), BSON dates from ours.
// Fields of another type are left out and described in problem.
func parseHeartbeat(doc bson.Raw) (hb heartbeat, problem string) {
	var problems []string
	if v, err := doc.LookupErr("name"); err == nil {
		if name, ok := v.StringValueOK(); ok {
			hb.name = name
		} else {
			problems = append(problems, "name is not a string")
		}
	} else {
		problems = append(problems, "the document has no name")
	}
	field := func(key string) bson.RawValue {
		v, _ := doc.LookupErr("collector_status", key)
		return v
	}
	if s, ok := field("status").StringValueOK(); ok {
		hb.status = &s
	}
	for key, dst := range map[string]**float64{
		"last_collector_reported_utc": &hb.lastReport,
		"last_oplog_time_utc":         &hb.lastOplog,
		"first_oplog_time_utc":        &hb.firstOplog,
	} {
		seconds, err := timestampSeconds(field(key))
		if err != nil {
			problems = append(problems, fmt.Sprintf("collector_status.%s: %v", key, err))
		}
		*dst = seconds
	}
	if msg, ok := field("error_message").StringValueOK(); ok {
		hb.errorMessage = msg
	}
	slices.Sort(problems) // map order must not make the text, and so the log, change
	return hb, strings.Join(problems, "; ")
}

// isoLayouts are the shapes Python's datetime.isoformat() produces: with or without a
// UTC offset (naive times are taken as UTC), with or without fractional seconds, with
// "T" or a space between date and time.
var isoLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// timestampSeconds reads a point in time as Unix seconds: a BSON date, a BSON
// timestamp, or an ISO-8601 string. Null or absent is no value and no error.
func timestampSeconds(v bson.RawValue) (*float64, error) {
	var t time.Time
	switch v.Type {
	case 0, bson.TypeNull, bson.TypeUndefined:
		return nil, nil
	case bson.TypeDateTime:
		t = v.Time()
	case bson.TypeTimestamp:
		seconds, _ := v.Timestamp()
		t = time.Unix(int64(seconds), 0)
	case bson.TypeString:
		text := v.StringValue()
		var err error
		for _, layout := range isoLayouts {
			if t, err = time.ParseInLocation(layout, text, time.UTC); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not an ISO-8601 time", text)
		}
	default:
		return nil, fmt.Errorf("a BSON %s is not a time", v.Type)
	}
	seconds := float64(t.Unix()) + float64(t.Nanosecond())/1e9
	return &seconds, nil
}
