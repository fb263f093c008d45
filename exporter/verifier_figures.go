package exporter

// What one read of a verifier's metadata database found, and what it means by the
// verifier's own definitions: the phase, whether the verifier is done and which
// generation's mismatches stand, a generation's progress.

// verifierMetadata is one read of the metadata database.
type verifierMetadata struct {
	database string // "" when no metadata database exists (not started, or dropped by --clean)

	hasGenerationDoc bool
	generationDocID  string // idKey of the generation document's _id: a new one is a new verification
	generation       int64
	metadataVersion  *float64

	// complete is whether every figure below was read; when it is not, the running
	// totals are still being read (totalsRead says how far), and tasks holds the
	// unfinished tasks of the current generation and the primary task only.
	complete   bool
	totalsRead float64

	tasks   map[taskKey]taskSums // current generation, plus the primary task
	initial map[taskKey]taskSums // generation 0
	// done is whether the verifier has finished: its API says it is not running
	// (phase idle) after a generation past the first, the one the generation document
	// names, and none of that generation's tasks is left.
	done     bool
	verdict  int64              // the generation whose mismatches stand: see decide
	mismatch map[string]float64 // kind -> count in the verdict generation; nil before metadata v6

	namespaceMismatches   map[string]float64            // namespace -> mismatches in the verdict generation
	generationMismatches  map[int64]float64             // generation -> mismatches, for the last generations
	changeEvents          map[string]map[string]float64 // cluster role -> op type -> count
	rechecksDone          *float64                      // the verifier's totalRechecksDone
	rechecksReported      *float64                      // rechecksDone plus what the verifier's restarts took from it
	lastRechecked         map[string]*float64           // cluster role -> cluster time of the newest finished recheck
	oldestProcessing      *float64
	newestTask, lastBegin *float64            // the newest task's _id time; the newest begin_time of the generation
	tokenTimes            map[string]*float64 // cluster role -> cluster time of the change reader's saved position

	namespaces namespaceStates // of the current generation

	malformed float64     // tasks left out because their type or status is not a string
	problems  problemList // what was wrong with the documents left out, for the log
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

// decide sets what depends on the verifier's own report: whether it has finished, and
// so which generation's mismatches stand. During generation G > 0 those found by G-1
// stand (the verifier's summary reads them: findAndSendMismatches in mismatches.go);
// once the verifier has finished, no generation follows its last one, whose mismatches
// are the result (its final report, PrintVerificationSummary at the end of the
// generation, lists them). Until the figures are complete, the verifier is not said to
// be done: its result, the mismatches, is not known yet.
func (m *verifierMetadata) decide(api *verifierProgress) {
	m.done = m.complete && api != nil && api.Phase != nil && *api.Phase == "idle" && api.Generation != nil &&
		*api.Generation >= 1 && m.hasGenerationDoc && *api.Generation == float64(m.generation) && !m.hasUnfinishedTasks()
	m.verdict = m.generation
	if m.generation > 0 && !m.done {
		m.verdict = m.generation - 1
	}
}

// hasUnfinishedTasks tells whether a task of the current generation (not the primary)
// is added or processing.
func (m *verifierMetadata) hasUnfinishedTasks() bool {
	for key, sums := range m.tasks {
		if key.Type != taskPrimary && key.unfinished() && sums.count > 0 {
			return true
		}
	}
	return false
}

// Mismatch kinds, as the verifier classifies them.
const (
	kindMissing  = "missing_on_destination"
	kindExtra    = "extra_on_destination"
	kindContent  = "content"
	kindMetadata = "metadata"
)

var mismatchKinds = []string{kindMissing, kindExtra, kindContent, kindMetadata}

// lastChange is the time of the newest change the metadata shows: a task inserted (the
// time in its _id) or picked (begin_time), a change reader's saved position. The
// verifier records no time when a task finishes.
func (m *verifierMetadata) lastChange() *float64 {
	return newer(newer(m.newestTask, m.lastBegin), newer(m.tokenTimes["source"], m.tokenTimes["destination"]))
}

// legacyFields tells whether tasks carry metadata v6's single source_documents_count
// rather than v7's documents_count and found_source_documents_count.
func (m *verifierMetadata) legacyFields() bool {
	return m.metadataVersion != nil && *m.metadataVersion < 7
}

// documents is what sums holds of the documents its tasks were to compare (or, for a
// recheck task, rechecked), in the fields of m's metadata version.
func (m *verifierMetadata) documents(sums taskSums) float64 {
	if m.legacyFields() {
		return sums.legacyDocuments
	}
	return sums.documents
}

// countTasks adds the sums of generation g's tasks of key to the figures they count
// in: the current generation's tasks; generation 0's, once a later one has begun; the
// documents rechecked, by the finished recheck tasks up to the current generation.
func (m *verifierMetadata) countTasks(g int64, key taskKey, sums taskSums) {
	if g == m.generation {
		m.tasks[key] = m.tasks[key].plus(sums)
	}
	if g == 0 && m.generation > 0 && (key.Type == taskVerifyDocuments || key.Type == taskVerifyCollection) {
		m.initial[key] = m.initial[key].plus(sums)
	}
	if g > 0 && g <= m.generation && key.Type == taskVerifyDocuments && key.compared() {
		*m.rechecksDone += m.documents(sums)
	}
}

func (m *verifierMetadata) documentsField() string {
	if m.legacyFields() {
		return "source_documents_count"
	}
	return "documents_count"
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
