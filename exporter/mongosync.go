package exporter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"

	"github.com/mongomigrate/observability/internal/config"
)

var mongosyncRegistration = Registration{
	Name:    "mongosync",
	Help:    "Read GET /api/v1/progress of every configured mongosync instance.",
	Default: true,
	New:     newMongosyncScraper,
}

// maxProgressBytes bounds what one progress reply may take in memory; real replies are
// under 4 KiB.
const maxProgressBytes = 1 << 20

// States and phases mongosync 0.9 to 1.22 document. A value they do not list is
// exported as "other" and logged (see stateSet).
var (
	mongosyncStates             = []string{"INITIALIZING", "IDLE", "RUNNING", "PAUSED", "COMMITTING", "COMMITTED", "REVERSING"}
	mongosyncPhases             = []string{"collection copy", "change event application", "waiting for commit to complete", "commit completed"}
	mongosyncCEAStages          = []string{"collection copy drain", "steady state"}
	mongosyncVerificationPhases = []string{"not started", "initial hashing", "stream hashing"}
)

var mongosyncLabels = []string{"migration", "mongosync"}

func mongosyncDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("mongosync", "", name), help, append(slices.Clip(mongosyncLabels), extra...), nil)
}

var (
	mongosyncUp            = mongosyncDesc("up", "Whether the last read of the instance's /api/v1/progress succeeded (1) or not (0).")
	mongosyncInfo          = mongosyncDesc("info", "Identity of the instance and its clusters, from mongosyncID, coordinatorID and directionMapping; value 1.", "mongosync_id", "coordinator_id", "source", "destination")
	mongosyncState         = mongosyncDesc("state", "mongosync state (state-set: 1 for the current state).", "state")
	mongosyncPhase         = mongosyncDesc("phase", "mongosync progress info (state-set over the `info` field: 1 for the current phase).", "phase")
	mongosyncCEAStage      = mongosyncDesc("cea_stage", "Change event application stage, mongosync 1.22+ (state-set).", "stage")
	mongosyncCanCommit     = mongosyncDesc("can_commit", "Whether a commit request would succeed now (canCommit). For a migration, all instances must be 1.")
	mongosyncCanWrite      = mongosyncDesc("can_write", "Whether writes to the destination are permitted (canWrite). With several instances only the first instance's value is valid.")
	mongosyncLag           = mongosyncDesc("lag_seconds", "Lag between the last applied event and the newest source event (lag.overallLagSeconds, else lagTimeSeconds). Periodic no-op writes keep it above 0 before commit.")
	mongosyncCRUDLag       = mongosyncDesc("crud_lag_seconds", "Lag of CRUD event application (lag.crudLagSeconds, 1.21+).")
	mongosyncDDLLag        = mongosyncDesc("ddl_lag_seconds", "Lag of DDL event application (lag.ddlLagSeconds, 1.21+).")
	mongosyncCopyTotal     = mongosyncDesc("collection_copy_estimated_total_bytes", "Bytes to copy for the whole migration, estimated before the copy: the same on every instance, do not sum it.")
	mongosyncCopied        = mongosyncDesc("collection_copy_estimated_copied_bytes", "Bytes this instance has copied in collection copy: sum over the migration's instances.")
	mongosyncEvents        = mongosyncDesc("events_applied_total", "Change events applied, approximate (totalEventsApplied, 1.8+); resets when mongosync restarts.")
	mongosyncCatchup       = mongosyncDesc("cea_catchup_estimated_seconds", "Estimated time for change event application to catch up (estimatedSecondsToCEACatchup, 1.14+).")
	mongosyncOplogLeft     = mongosyncDesc("oplog_time_remaining_seconds", "Estimated time until the source oplog rolls over past mongosync's position (estimatedOplogTimeRemaining, 1.19+); bounds such as \"more than 72 hours\" are taken at their value.")
	mongosyncWarnings      = mongosyncDesc("warnings", "Number of warnings mongosync reports (1.19+); their text is logged when it changes.")
	mongosyncPing          = mongosyncDesc("ping_latency_seconds", "Latency of mongosync's last ping of the cluster (1.17+); absent below 1 ms or before the first ping.", "cluster_role")
	mongosyncPingFail      = mongosyncDesc("ping_failed", "Whether mongosync's last ping of the cluster failed (pingLatencyMs -1).", "cluster_role")
	mongosyncIdxBuilt      = mongosyncDesc("index_build_indexes_built", "Indexes built after the data copy (indexBuilding, 1.19+).")
	mongosyncIdxTotal      = mongosyncDesc("index_build_indexes_to_build", "Indexes to build after the data copy (indexBuilding, 1.19+).")
	mongosyncIdxCollsDone  = mongosyncDesc("index_build_collections_finished", "Collections whose indexes are built (indexBuilding, 1.19+).")
	mongosyncIdxCollsTotal = mongosyncDesc("index_build_collections_to_build", "Collections with indexes to build (indexBuilding, 1.19+).")
	mongosyncVerifPhase    = mongosyncDesc("verification_phase", "Phase of mongosync's embedded verifier per cluster (state-set, 1.9+).", "cluster_role", "phase")
	mongosyncVerifHashed   = mongosyncDesc("verification_documents_hashed", "Documents hashed by the embedded verifier.", "cluster_role")
	mongosyncVerifEstimate = mongosyncDesc("verification_documents_estimated", "Documents the embedded verifier estimates it must hash.", "cluster_role")
	mongosyncVerifScanned  = mongosyncDesc("verification_collections_scanned", "Collections scanned by the embedded verifier.", "cluster_role")
	mongosyncVerifTotal    = mongosyncDesc("verification_collections_to_scan", "Collections the embedded verifier must scan.", "cluster_role")
	mongosyncVerifLag      = mongosyncDesc("verification_lag_seconds", "Lag of the embedded verifier's change stream.", "cluster_role")
)

type mongosyncScraper struct {
	targets []mongosyncTarget
	env     Env
}

type mongosyncTarget struct {
	config.Mongosync
	progressURL string
	shownURL    string // progressURL for messages: as written when it came from the environment
	client      *http.Client
}

func newMongosyncScraper(cfg *config.Exporter, env Env) (Scraper, error) {
	s := &mongosyncScraper{env: env}
	for _, m := range cfg.Mongosync {
		client, err := commoncfg.NewClientFromConfig(m.HTTPClientConfig, "mongosync_exporter")
		if err != nil {
			return nil, fmt.Errorf("mongosync %q: %w", m.Name, err)
		}
		s.targets = append(s.targets, mongosyncTarget{
			Mongosync:   m,
			progressURL: strings.TrimSuffix(m.URL, "/") + "/api/v1/progress",
			shownURL:    strings.TrimSuffix(cmp.Or(m.URLShown, m.URL), "/") + "/api/v1/progress",
			client:      client,
		})
	}
	return s, nil
}

// Scrape reads every instance at once, each within its own timeout, so a slow or dead
// instance costs the scrape its timeout at most and never delays the others.
func (s *mongosyncScraper) Scrape(ctx context.Context, ch chan<- prometheus.Metric) error {
	var wg sync.WaitGroup
	for i := range s.targets {
		wg.Go(func() { s.scrapeTarget(ctx, &s.targets[i], ch) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("scrape deadline reached before every mongosync answered: %w", err)
	}
	return nil
}

func (s *mongosyncScraper) scrapeTarget(ctx context.Context, t *mongosyncTarget, ch chan<- prometheus.Metric) {
	ids := []any{"migration", t.Migration, "mongosync", t.Name}
	key := "mongosync/" + t.Name
	up := func(out *batch, ok bool) {
		out.add(mongosyncUp, prometheus.GaugeValue, boolValue(ok), t.Migration, t.Name)
	}
	s.env.target(ch, key, ids, func(out *batch) {
		p, skipped, err := t.fetch(ctx)
		s.env.OnChange.Failure(key, err, ids...)
		s.env.OnChange.Notice(key+"/skipped", "Part of the progress report has an unexpected type and is left out", skipped, ids...)
		up(out, err == nil)
		if err != nil {
			return
		}
		s.env.OnChange.Notice(key+"/warnings", "mongosync reports warnings", strings.Join(p.Warnings, "; "), ids...)
		s.env.unknownValue(key+"/state", "mongosync state", unknownOf(p.State, mongosyncStates), ids...)
		s.env.unknownValue(key+"/phase", "mongosync phase (info)", unknownOf(p.Info, mongosyncPhases), ids...)
		s.env.unknownValue(key+"/cea_stage", "change event application stage", unknownOf(p.CEAStage, mongosyncCEAStages), ids...)
		for role, side := range verificationSides(p) {
			s.env.unknownValue(key+"/verification/"+role, "embedded verifier phase", unknownOf(side.Phase, mongosyncVerificationPhases), ids...)
		}
		emitProgress(emitter{out: out, labels: []string{t.Migration, t.Name}}, p)
	}, func(out *batch) { up(out, false) })
}

// unknownOf returns the value when it is reported and not one of known, else "".
func unknownOf(value *string, known []string) string {
	if value == nil || slices.Contains(known, *value) {
		return ""
	}
	return *value
}

// fetch reads the instance's progress within its timeout and the scrape's deadline.
func (t *mongosyncTarget) fetch(scrapeCtx context.Context) (*progress, string, error) {
	ctx, cancel := context.WithTimeout(scrapeCtx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.progressURL, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, "", t.readError(scrapeCtx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProgressBytes+1))
	if err != nil {
		return nil, "", t.readError(scrapeCtx, err)
	}
	if len(body) > maxProgressBytes {
		return nil, "", fmt.Errorf("reply from %s is larger than %d bytes; is this a mongosync?", t.shownURL, maxProgressBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		detail := excerpt(body)
		if _, _, perr := parseProgress(body); perr != nil && !errors.Is(perr, errResponseShape) {
			detail = perr.Error() // mongosync's own error text says more than the status
		}
		return nil, "", fmt.Errorf("HTTP %s from %s: %s", resp.Status, t.shownURL, detail)
	}
	return parseProgress(body)
}

// readError says why a read failed, naming the URL as the configuration writes it, and
// which deadline cut it short, in words that stay the same from one scrape to the next
// (so OnChangeLogger logs it once).
func (t *mongosyncTarget) readError(scrapeCtx context.Context, err error) error {
	switch {
	case !errors.Is(err, context.DeadlineExceeded):
		if urlErr, ok := errors.AsType[*url.Error](err); ok {
			err = urlErr.Err // its text quotes the URL as requested
		}
		return fmt.Errorf("GET %s: %w", t.shownURL, err)
	case scrapeCtx.Err() != nil:
		return fmt.Errorf("no reply from %s before the scrape deadline (Prometheus' scrape_timeout less --timeout-offset)", t.shownURL)
	default:
		return fmt.Errorf("no reply from %s within its timeout of %s", t.shownURL, t.Timeout)
	}
}

// emitProgress sends the series of one progress report.
func emitProgress(out emitter, p *progress) {
	if p.MongosyncID != nil || p.CoordinatorID != nil || p.DirectionMapping != nil {
		var source, destination *string
		if p.DirectionMapping != nil {
			source, destination = p.DirectionMapping.Source, p.DirectionMapping.Destination
		}
		out.out.add(mongosyncInfo, prometheus.GaugeValue, 1, out.with(text(p.MongosyncID), text(p.CoordinatorID), text(source), text(destination))...)
	}
	out.stateSet(mongosyncState, mongosyncStates, p.State)
	out.stateSet(mongosyncPhase, mongosyncPhases, p.Info)
	out.stateSet(mongosyncCEAStage, mongosyncCEAStages, p.CEAStage)
	out.flag(mongosyncCanCommit, p.CanCommit)
	out.flag(mongosyncCanWrite, p.CanWrite)

	overall := p.LagTimeSeconds // deprecated in 1.21 for lag.overallLagSeconds
	if p.Lag != nil {
		if p.Lag.OverallLagSeconds != nil {
			overall = p.Lag.OverallLagSeconds
		}
		out.gauge(mongosyncCRUDLag, p.Lag.CRUDLagSeconds)
		out.gauge(mongosyncDDLLag, p.Lag.DDLLagSeconds)
	}
	out.gauge(mongosyncLag, overall)

	if p.CollectionCopy != nil {
		out.gauge(mongosyncCopyTotal, p.CollectionCopy.EstimatedTotalBytes)
		out.gauge(mongosyncCopied, p.CollectionCopy.EstimatedCopiedBytes)
	}
	out.counter(mongosyncEvents, p.TotalEventsApplied)
	out.gauge(mongosyncCatchup, p.EstimatedSecondsToCEACatchup)
	if p.EstimatedOplogTimeRemaining != nil {
		if seconds, ok := parseOplogTimeRemaining(*p.EstimatedOplogTimeRemaining); ok {
			out.gauge(mongosyncOplogLeft, &seconds)
		}
	}
	warnings := float64(len(p.Warnings)) // omitted when there are none: 0 is the truth
	out.gauge(mongosyncWarnings, &warnings)

	for role, pg := range map[string]*ping{"source": p.Source, "destination": p.Destination} {
		var failed bool
		if pg != nil && pg.PingLatencyMs != nil {
			if failed = *pg.PingLatencyMs < 0; !failed {
				seconds := *pg.PingLatencyMs / 1000
				out.gauge(mongosyncPing, &seconds, role)
			}
		}
		out.flag(mongosyncPingFail, &failed, role)
	}

	if ib := p.IndexBuilding; ib != nil {
		out.gauge(mongosyncIdxBuilt, ib.IndexesBuilt)
		out.gauge(mongosyncIdxTotal, ib.TotalIndexesToBuild)
		out.gauge(mongosyncIdxCollsDone, ib.CollectionsFinished)
		out.gauge(mongosyncIdxCollsTotal, ib.CollectionsTotal)
	}

	for role, v := range verificationSides(p) {
		out.stateSet(mongosyncVerifPhase, mongosyncVerificationPhases, v.Phase, role)
		out.gauge(mongosyncVerifHashed, v.HashedDocumentCount, role)
		out.gauge(mongosyncVerifEstimate, v.EstimatedDocumentCount, role)
		out.gauge(mongosyncVerifScanned, v.ScannedCollectionCount, role)
		out.gauge(mongosyncVerifTotal, v.TotalCollectionCount, role)
		out.gauge(mongosyncVerifLag, v.LagTimeSeconds, role)
	}
}

// verificationSides is the embedded verifier's report per cluster role, empty where
// mongosync reports none.
func verificationSides(p *progress) map[string]*verificationSide {
	var v sides[verificationSide]
	if p.Verification != nil {
		v = *p.Verification
	}
	out := map[string]*verificationSide{"source": v.Source, "destination": v.Destination}
	for role, side := range out {
		if side == nil {
			out[role] = &verificationSide{}
		}
	}
	return out
}

func text(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
