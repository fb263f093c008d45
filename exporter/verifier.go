package exporter

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
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

// emitMetadata sends the series read from the metadata database, with what the API (nil
// when not read) adds to them.
func (t *verifierTarget) emitMetadata(out emitter, m *verifierMetadata, api *verifierProgress) {
	phase := m.phase(api)
	out.stateSet(verifierPhase, verifierPhases, &phase)
	if m.database == "" {
		return
	}
	out.gauge(verifierTotalsRead, &m.totalsRead)
	out.gauge(verifierMetadataVersion, m.metadataVersion)
	if m.hasGenerationDoc {
		generation := float64(m.generation)
		out.gauge(verifierGeneration, &generation)
	}
	// Until the running totals are read, only the unfinished tasks and the primary task
	// are known.
	known := func(pair taskKey) bool { return m.complete || pair.unfinished() || pair.Type == taskPrimary }
	for _, pair := range verifierTaskPairs {
		if known(pair) {
			count := m.tasks[pair].count
			out.gauge(verifierTasks, &count, pair.Type, pair.Status)
		}
	}
	for _, pair := range slices.SortedFunc(maps.Keys(m.tasks), compareTaskKeys) {
		if !slices.Contains(verifierTaskPairs, pair) && known(pair) {
			count := m.tasks[pair].count
			out.gauge(verifierTasks, &count, pair.Type, pair.Status)
		}
	}
	for _, role := range []string{"source", "destination"} {
		counts := m.changeEvents[role]
		kept := eventTypesToExport(counts, *t.ChangeEventTypeLimit)
		for _, op := range kept {
			n := counts[op]
			out.counter(verifierChangeEvents, &n, role, op)
		}
		if counts != nil {
			omitted := float64(len(counts) - len(kept))
			out.gauge(verifierChangeTypesLeft, &omitted, role)
		}
	}
	out.gauge(verifierOldestTask, m.oldestProcessing)
	if !m.complete {
		return
	}
	out.gauge(verifierMalformed, &m.malformed)
	legacy := m.legacyFields()
	current := progressOf(m.tasks, m.generation, legacy).withInProgress(api, m.generation)
	out.gauge(verifierDocsCompared, &current.docsCompared)
	out.gauge(verifierDocsToCompare, &current.docsToCompare)
	out.gauge(verifierBytesCompared, &current.bytesCompared)
	out.gauge(verifierBytesToCompare, &current.bytesToCompare)
	initial := current
	if m.generation > 0 {
		initial = progressOf(m.initial, 0, legacy)
	}
	out.gauge(verifierInitDocsDone, &initial.docsCompared)
	out.gauge(verifierInitDocsToDo, &initial.docsToCompare)
	out.gauge(verifierInitBytesDone, &initial.bytesCompared)
	out.gauge(verifierInitBytesToDo, &initial.bytesToCompare)

	if m.mismatch != nil {
		for _, kind := range mismatchKinds {
			n := m.mismatch[kind]
			out.gauge(verifierMismatches, &n, kind)
		}
	}
	t.emitNamespaceMismatches(out, m.namespaceMismatches)
	for _, g := range slices.Sorted(maps.Keys(m.generationMismatches)) {
		if n := m.generationMismatches[g]; n > 0 {
			out.gauge(verifierGenerationCount, &n, strconv.FormatInt(g, 10))
		}
	}
	t.emitNamespaces(out, m.namespaces)
	for _, role := range []string{"source", "destination"} {
		out.gauge(verifierLastRechecked, m.lastRechecked[role], role)
	}
	out.counter(verifierRechecks, m.rechecksReported)
	out.gauge(verifierLastChange, m.lastChange())
}

// eventTypesToExport picks at most limit operation types of counts: the verifier's own
// first, then the others in name order.
func eventTypesToExport(counts map[string]float64, limit int) []string {
	var kept []string
	for _, op := range changeEventTypes {
		if _, ok := counts[op]; ok {
			kept = append(kept, op)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(changeEventTypes, op) {
			kept = append(kept, op)
		}
	}
	return kept[:min(len(kept), limit)]
}

// emitNamespaces sends the verdict counts, and one 0/1 series per namespace for at most
// namespace_limit namespaces that namespace_include keeps, mismatched ones first.
func (t *verifierTarget) emitNamespaces(out emitter, stats namespaceStates) {
	counts := map[string]float64{}
	for _, state := range stats {
		counts[state.status()]++
	}
	for _, status := range namespaceStatuses {
		n := counts[status]
		out.gauge(verifierNamespaces, &n, status)
	}
	mismatched := func(name string) float64 { return boolValue(stats[name].status() == nsMismatched) }
	kept := t.namespacesToExport(slices.Collect(maps.Keys(stats)), mismatched)
	for _, name := range kept {
		out.flag(verifierNamespaceBad, new(mismatched(name) == 1), name)
	}
	omitted := float64(len(stats) - len(kept))
	out.gauge(verifierNamespacesLeft, &omitted)
}

// emitNamespaceMismatches sends the mismatch count of the namespaces that have some, at
// most namespace_limit of those namespace_include keeps, most mismatches first.
func (t *verifierTarget) emitNamespaceMismatches(out emitter, counts map[string]float64) {
	var names []string
	for name, n := range counts {
		if n > 0 {
			names = append(names, name)
		}
	}
	for _, name := range t.namespacesToExport(names, func(name string) float64 { return counts[name] }) {
		n := counts[name]
		out.gauge(verifierNamespaceCounts, &n, name)
	}
}

// namespacesToExport keeps the names namespace_include matches, highest rank first, then
// by name, at most namespace_limit of them.
func (t *verifierTarget) namespacesToExport(names []string, rank func(string) float64) []string {
	kept := slices.DeleteFunc(names, func(name string) bool { return !t.include.MatchString(name) })
	slices.SortFunc(kept, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(b), rank(a)), strings.Compare(a, b))
	})
	return kept[:min(len(kept), *t.NamespaceLimit)]
}

func emitVerifierAPI(out emitter, p *verifierProgress) {
	for role, stats := range map[string]*verifierChangeStats{"source": p.SrcChangeStats, "destination": p.DstChangeStats} {
		if stats == nil {
			continue
		}
		out.gauge(verifierChangeLag, stats.LagSecs, role)
		out.gauge(verifierChangeBuffer, stats.BufferSaturation, role)
		out.gauge(verifierChangeRate, stats.EventsPerSecond, role)
	}
	if p.LongestDocMismatch != nil {
		out.gauge(verifierLongestMismatch, p.LongestDocMismatch.DurationSecs)
	}
}

// phase tells the verification's phase: the verifier's own when its API answered (idle
// while it does not run, check or recheck while it does), from the metadata database
// otherwise, where a generation document means the verifier got past its start (it is
// written once the initial tasks exist, persistGenerationWhileLocked in check.go) and
// the generation tells check from recheck, as the verifier's getPhaseWhileLocked does.
// A database without that document means a verifier that began (it creates its
// database as it starts, AddMetaIndexes) and has not got that far, or died on the way.
func (m *verifierMetadata) phase(api *verifierProgress) string {
	apiPhase := ""
	if api != nil && api.Phase != nil {
		apiPhase = *api.Phase
	}
	running := apiPhase != "" && apiPhase != phaseIdle
	switch {
	case m.database == "" && running:
		return phaseInitializing
	case m.database == "":
		return phaseNotStarted
	case apiPhase == phaseIdle:
		return phaseIdle
	case !m.hasGenerationDoc:
		return phaseInitializing
	case running:
		return apiPhase
	case m.generation == 0:
		return phaseCheck
	}
	return phaseRecheck
}

// verifierProgressFigures are one generation's documents and bytes, compared and to
// compare, by the verifier's own definition.
type verifierProgressFigures struct {
	docsCompared, docsToCompare, bytesCompared, bytesToCompare float64
}

// progressOf computes a generation's figures from its task sums as the verifier does
// (GetPersistedNamespaceStatistics, statistics.go): compared counts the finished
// (completed or failed) verifyDocuments tasks; to compare is the source count of the
// verifyCollection tasks in generation 0, and of the recheck tasks after; bytes to compare
// are the verifyCollection tasks' sizes, in any generation. Metadata before v7 kept one
// source_documents_count for both counts.
func progressOf(tasks map[taskKey]taskSums, generation int64, legacy bool) verifierProgressFigures {
	var p verifierProgressFigures
	for key, s := range tasks {
		docs, found := s.documents, s.found
		if legacy {
			docs, found = s.legacyDocuments, s.legacyDocuments
		}
		switch key.Type {
		case taskVerifyDocuments:
			if key.compared() {
				p.docsCompared += found
				p.bytesCompared += s.bytes
			}
			if generation > 0 {
				p.docsToCompare += docs
			}
		case taskVerifyCollection:
			if generation == 0 {
				p.docsToCompare += docs
			}
			p.bytesToCompare += s.bytes
		}
	}
	return p
}

// withInProgress adds what the verifier's workers have compared of the tasks they are
// running, which only its API reports (its generationStats, for the same generation;
// the larger figure wins, as either source may have been read a moment before the other).
func (p verifierProgressFigures) withInProgress(api *verifierProgress, generation int64) verifierProgressFigures {
	if api == nil || api.Generation == nil || *api.Generation != float64(generation) || api.GenerationStats == nil {
		return p
	}
	if n := api.GenerationStats.DocsCompared; n != nil {
		p.docsCompared = max(p.docsCompared, *n)
	}
	if n := api.GenerationStats.SrcBytesCompared; n != nil {
		p.bytesCompared = max(p.bytesCompared, *n)
	}
	return p
}

func compareTaskKeys(a, b taskKey) int {
	return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.Status, b.Status))
}
