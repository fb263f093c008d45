package exporter

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongoerr"
)

var verifierRegistration = Registration{
	Name:    "verifier",
	Help:    "Read every configured migration-verifier's metadata database and, where api_url is set, its GET /api/v1/progress.",
	Default: true,
	New:     newVerifierScraper,
}

// Phases of a verification: the verifier's own (its API's phase: idle when it is not
// running, check in generation 0, recheck after), and not_started (no metadata database)
// and initializing (a database, no generation document yet) from the metadata database.
const (
	phaseNotStarted   = "not_started"
	phaseInitializing = "initializing"
	phaseCheck        = "check"
	phaseRecheck      = "recheck"
	phaseIdle         = "idle"
)

var verifierPhases = []string{phaseNotStarted, phaseInitializing, phaseCheck, phaseRecheck, phaseIdle}

// verifierTaskPairs are the type and status pairs the verifier writes; each gets a
// series, 0 when no task has it, so a count that drops to nothing shows as 0.
var verifierTaskPairs = []taskKey{
	{taskPrimary, statusAdded}, {taskPrimary, statusProcessing}, {taskPrimary, statusCompleted},
	{taskProcessRecheckQueue, statusAdded}, {taskProcessRecheckQueue, statusProcessing}, {taskProcessRecheckQueue, statusCompleted},
	{taskVerifyCollection, statusAdded}, {taskVerifyCollection, statusProcessing}, {taskVerifyCollection, statusCompleted},
	{taskVerifyCollection, statusFailed}, {taskVerifyCollection, statusMismatch},
	{taskVerifyDocuments, statusAdded}, {taskVerifyDocuments, statusProcessing}, {taskVerifyDocuments, statusCompleted},
	{taskVerifyDocuments, statusFailed},
}

// verifierLabels lead every verifier series: the configured migration ("" when unset,
// which Prometheus stores as no label) and the verifier's name.
var verifierLabels = []string{"migration", "verifier"}

func verifierDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("migration_verifier", "", name), help, append(slices.Clip(verifierLabels), extra...), nil)
}

var (
	verifierUp              = verifierDesc("up", "Whether the verifier's metadata database was readable (1) or not (0). A database that does not exist yet (not started, or dropped by --clean) is readable.")
	verifierTotalsRead      = verifierDesc("totals_read_ratio", "How much of the verifier's tasks and mismatches the exporter has read since it started (or since a new verification began): 1 once its figures are complete. Below 1, the series computed from them are absent; they are read a part at each scrape.")
	verifierAPIUp           = verifierDesc("api_up", "Whether the verifier's GET /api/v1/progress answered without error (1) or not (0); only when api_url is configured.")
	verifierMetadataVersion = verifierDesc("metadata_version", "metadataversion of the verifier's generation document; versions 6 and 7 are read fully, older ones in part.")
	verifierGeneration      = verifierDesc("generation", "Current generation, from the generation document: 0 is the initial check, each later one rechecks what mismatched or changed.")
	verifierPhase           = verifierDesc("phase", "Phase of the verification (state-set): the verifier's own from its API (idle: not running), else from the metadata database (check in generation 0, recheck after); not_started without a metadata database, initializing before its generation document.", "phase")
	verifierDone            = verifierDesc("done", "Whether the verifier has finished (1): its API reports it idle after its final generation (the one after writesOff), whose tasks are all finished. 0 otherwise, and whenever the API is not configured or not read.")
	verifierTasks           = verifierDesc("tasks", "Verification tasks of the current generation (and the primary task) by type and status; \"other\" stands for a type or status this exporter does not know.", "type", "status")
	verifierMalformed       = verifierDesc("malformed_tasks", "Verification tasks left out of every figure because their type or status is not a string; each is logged.")
	verifierDocsCompared    = verifierDesc("documents_compared", "Documents compared in the current generation: finished verifyDocuments tasks, plus the tasks in progress as the verifier's API reports them.")
	verifierDocsToCompare   = verifierDesc("documents_to_compare", "Documents to compare in the current generation: the source count in generation 0, the documents to recheck after.")
	verifierBytesCompared   = verifierDesc("bytes_compared", "Source bytes compared in the current generation: finished verifyDocuments tasks, plus the tasks in progress as the verifier's API reports them.")
	verifierBytesToCompare  = verifierDesc("bytes_to_compare", "Source bytes to compare in the current generation: the sizes of its verifyCollection tasks (every collection in generation 0; after, those with a metadata mismatch to check again).")
	verifierInitDocsDone    = verifierDesc("initial_documents_compared", "Documents compared in generation 0, the initial check.")
	verifierInitDocsToDo    = verifierDesc("initial_documents_to_compare", "Documents to compare in generation 0 (source document counts).")
	verifierInitBytesDone   = verifierDesc("initial_bytes_compared", "Source bytes compared in generation 0.")
	verifierInitBytesToDo   = verifierDesc("initial_bytes_to_compare", "Source bytes to compare in generation 0 (source storage sizes).")
	verifierMismatches      = verifierDesc("mismatches", "Mismatches that stand, by kind: those of the previous generation while rechecking, of the current one during the initial check and once the verifier is done. Metadata version 6 and later.", "kind")
	verifierNamespaceCounts = verifierDesc("namespace_mismatches", "Mismatches that stand (as migration_verifier_mismatches) by namespace, for namespaces with at least one; at most namespace_limit namespaces, most mismatches first, filtered by namespace_include.", "namespace")
	verifierGenerationCount = verifierDesc("generation_mismatches", "Mismatches found by each of the last 10 generations, for generations that found at least one.", "generation")
	verifierNamespaces      = verifierDesc("namespaces", "Namespaces of the current generation by verdict: mismatched, complete (its document tasks finished), in_progress.", "status")
	verifierNamespaceBad    = verifierDesc("namespace_mismatched", "Whether the namespace has a mismatch (1) or not (0) in the current generation; at most namespace_limit namespaces, mismatched first, filtered by namespace_include.", "namespace")
	verifierNamespacesLeft  = verifierDesc("namespaces_omitted", "Namespaces left out of migration_verifier_namespace_mismatched by namespace_limit or namespace_include.")
	verifierChangeEvents    = verifierDesc("change_events_total", "Change events the verifier's change reader has seen, by operation type (changeReader.eventCounts; persisted by the verifier at most every 10 s); at most change_event_type_limit operation types per reader.", "cluster_role", "op_type")
	verifierChangeTypesLeft = verifierDesc("change_event_types_omitted", "Operation types of the change reader's eventCounts left out of migration_verifier_change_events_total by change_event_type_limit.", "cluster_role")
	verifierChangeLag       = verifierDesc("change_lag_seconds", "Lag of the verifier's change reader (API lagSecs).", "cluster_role")
	verifierChangeBuffer    = verifierDesc("change_buffer_saturation_ratio", "How full the change reader's buffer is, 0 to 1 (API bufferSaturation).", "cluster_role")
	verifierChangeRate      = verifierDesc("change_events_per_second", "Change events per second as the verifier measures them (API eventsPerSecond).", "cluster_role")
	verifierRechecks        = verifierDesc("rechecks_total", "Documents rechecked in all generations after the first: the verifier's totalRechecksDone, plus what its restarts deleted from it in this verification.")
	verifierLastRechecked   = verifierDesc("last_rechecked_timestamp_seconds", "Cluster time of the newest change that a finished recheck task covered.", "cluster_role")
	verifierLastChange      = verifierDesc("last_change_timestamp_seconds", "Time of the newest change the metadata database shows: a task inserted or picked, a change reader's saved position (saved at most every 10 s while it reads).")
	verifierOldestTask      = verifierDesc("oldest_processing_task_start_timestamp_seconds", "When the longest-running processing task began; absent when none is processing. An old value with no progress means a stalled verifier.")
	verifierLongestMismatch = verifierDesc("longest_mismatch_duration_seconds", "How long the longest-standing document mismatch has lasted (API longestDocMismatch.durationSecs).")
)

// changeEventTypes are the operation types the verifier counts (eventCounts); a reader's
// series show these first, then others in name order, up to change_event_type_limit.
var changeEventTypes = []string{
	"insert", "update", "replace", "delete", "create", "modify", "createIndexes", "dropIndexes",
	"shardCollection", "reshardCollection", "refineCollectionShardKey",
}

type verifierScraper struct {
	targets []*verifierTarget
	env     Env
}

type verifierTarget struct {
	config.Verifier
	reader      *verifierReader
	apiClient   *http.Client
	progressURL string
	include     *regexp.Regexp
}

func newVerifierScraper(cfg *config.Exporter, env Env) (Scraper, error) {
	s := &verifierScraper{env: env}
	for _, v := range cfg.Verifiers {
		t := &verifierTarget{
			Verifier:  v,
			reader:    newVerifierReader(newMongoClient(v.MongoURI, v.Timeout), v.Database, v.NamespaceRefresh),
			apiClient: &http.Client{},
			include:   regexp.MustCompile(v.NamespaceInclude), // validated with the config
		}
		if v.APIURL != "" {
			t.progressURL = strings.TrimSuffix(v.APIURL, "/") + "/api/v1/progress"
		}
		s.targets = append(s.targets, t)
	}
	return s, nil
}

func (s *verifierScraper) Close() {
	for _, t := range s.targets {
		t.reader.client.close()
	}
}

func (s *verifierScraper) Scrape(ctx context.Context, ch chan<- prometheus.Metric) error {
	var wg sync.WaitGroup
	for _, t := range s.targets {
		wg.Go(func() { s.scrapeTarget(ctx, t, ch) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("scrape deadline reached before every verifier answered: %w", err)
	}
	return nil
}

// scrapeTarget reads the metadata database and the API at once; each source failing
// leaves the other's series in place. The metadata read waits for the API's report
// before it reads mismatches: whether the verifier is done decides which generation's
// stand.
func (s *verifierScraper) scrapeTarget(ctx context.Context, t *verifierTarget, ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	ids := []any{"verifier", t.Name}
	key := "verifier/" + t.Name
	labels := []string{t.Migration, t.Name}
	up := func(out *batch, metaOK, apiOK, done bool) {
		e := emitter{out: out, labels: labels}
		e.flag(verifierUp, &metaOK)
		if t.progressURL != "" {
			e.flag(verifierAPIUp, &apiOK)
		}
		e.flag(verifierDone, &done)
	}
	s.env.target(ch, key, ids, func(out *batch) {
		var (
			wg            sync.WaitGroup
			meta          *verifierMetadata
			api           *verifierProgress
			metaErr, apiE error
			apiRead       = make(chan struct{})
		)
		if t.progressURL != "" {
			wg.Go(func() {
				defer close(apiRead)
				apiE = guard(func() (err error) { api, err = fetchVerifierProgress(ctx, t.apiClient, t.progressURL); return err })
			})
		} else {
			close(apiRead)
		}
		wg.Go(func() {
			metaErr = guard(func() (err error) {
				meta, err = t.reader.read(ctx, func() *verifierProgress {
					<-apiRead
					if apiE != nil {
						return nil
					}
					return api
				})
				if err != nil {
					return mongoerr.ScrapeError(ctx, t.Timeout, "metadata database", err)
				}
				return nil
			})
		})
		wg.Wait()
		s.env.OnChange.Failure(key+"/metadata", metaErr, append(ids, "source", "metadata database")...)
		if t.progressURL != "" {
			s.env.OnChange.Failure(key+"/api", apiE, append(ids, "source", "api")...)
		}
		if apiE != nil {
			api = nil
		}
		up(out, metaErr == nil, api != nil, metaErr == nil && meta.done)
		e := emitter{out: out, labels: labels}
		if api != nil {
			s.env.unknownValue(key+"/api-phase", "verifier phase", unknownOf(api.Phase, verifierPhases), ids...)
		}
		switch {
		case metaErr == nil:
			s.env.OnChange.Notice(key+"/malformed", "Verifier metadata documents are left out", meta.problems.String(), ids...)
			t.emitMetadata(e, meta, api)
		case api != nil:
			e.stateSet(verifierPhase, verifierPhases, api.Phase)
		}
		if api != nil {
			emitVerifierAPI(e, api)
		}
	}, func(out *batch) { up(out, false, false, false) })
}
