package exporter

// Decoding what migration-verifier writes (docs/migration-verifier.md). Every decoder
// takes raw BSON and never fails as a whole: a document with a field of the wrong type
// is left out and described, so one malformed task costs that task, not the verifier.

import (
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Task types and statuses the verifier writes.
const (
	taskPrimary             = "primary"
	taskProcessRecheckQueue = "processRecheckQueue"
	taskVerifyCollection    = "verifyCollection"
	taskVerifyDocuments     = "verifyDocuments"
	taskVerify              = "verify" // verifyDocuments before metadata version 2

	statusAdded      = "added"
	statusProcessing = "processing"
	statusCompleted  = "completed"
	statusFailed     = "failed"
	statusMismatch   = "mismatch"
)

var (
	taskTypes    = []string{taskPrimary, taskProcessRecheckQueue, taskVerifyCollection, taskVerifyDocuments, taskVerify}
	taskStatuses = []string{statusAdded, statusProcessing, statusCompleted, statusFailed, statusMismatch}
	// unfinishedStatuses are the only ones the verifier onChange: a task is added, then
	// processing, then one of the others for good.
	unfinishedStatuses = bson.A{statusAdded, statusProcessing}
)

// taskKey is a task's type and status, each one the verifier writes or "other": a
// hostile or future value must not make a series of its own.
type taskKey struct{ Type, Status string }

// taskSums adds up the tasks of one type and status.
type taskSums struct {
	count, documents, found, bytes, legacyDocuments float64
}

func (s taskSums) plus(o taskSums) taskSums {
	return taskSums{s.count + o.count, s.documents + o.documents, s.found + o.found, s.bytes + o.bytes, s.legacyDocuments + o.legacyDocuments}
}

func (k taskKey) unfinished() bool { return k.Status == statusAdded || k.Status == statusProcessing }

// compared tells whether a task of this status has compared what it had to: completed
// (no mismatch) or failed (mismatches found). A verifyCollection task may also end as
// mismatch, which says nothing of its documents.
func (k taskKey) compared() bool { return k.Status == statusCompleted || k.Status == statusFailed }

// decodeTaskKey reads a task's type and status (or a group's _id holding them).
func decodeTaskKey(doc bson.Raw) (taskKey, string) {
	typ, okType := doc.Lookup("type").StringValueOK()
	status, okStatus := doc.Lookup("status").StringValueOK()
	if !okType || !okStatus {
		return taskKey{}, fmt.Sprintf("type %s and status %s are not both strings", describeValue(doc.Lookup("type")), describeValue(doc.Lookup("status")))
	}
	return taskKey{Type: known(typ, taskTypes), Status: known(status, taskStatuses)}, ""
}

// numberOrZero reads a count as the server's $sum does: any BSON number, anything else 0.
func numberOrZero(doc bson.Raw, key string) float64 {
	v, _ := doc.Lookup(key).AsFloat64OK()
	return v
}

// task is one verification task, as far as the exporter needs it.
type task struct {
	id            bson.RawValue
	generation    int64
	hasGeneration bool // whether generation is a whole number (the primary task has none)
	key           taskKey
	namespace     string // "" when absent or not a string
	sums          taskSums
	begin         *float64 // begin_time, when the verifier last picked it; nil when absent
	src, dst      *float64 // a recheck task's srctimestamp and dsttimestamp; nil when null
	malformed     bool     // left out of every figure but malformed_tasks (sums.count 1): its type or status is not a string
	// unfinished is whether the verifier may still change it: added or processing.
	unfinished bool
	problem    string // what is wrong with it, for the log; "" when nothing
}

// taskProjection is what the exporter reads of a task: never its _ids, which a recheck
// task can hold by the thousand.
var taskProjection = bson.D{
	{Key: "type", Value: 1}, {Key: "status", Value: 1}, {Key: "query_filter.namespace", Value: 1},
	{Key: "documents_count", Value: 1}, {Key: "found_source_documents_count", Value: 1},
	{Key: "source_bytes_count", Value: 1}, {Key: "source_documents_count", Value: 1}, {Key: "begin_time", Value: 1},
	{Key: "generation", Value: 1}, {Key: "srctimestamp", Value: 1}, {Key: "dsttimestamp", Value: 1},
}

// decodeTask reads one task. A task whose type or status is not a string is malformed,
// and problem says why; so it does for a namespace that is not a string. A document
// without an _id is not a task at all (ok is false).
func decodeTask(doc bson.Raw) (t task, problem string, ok bool) {
	defer func() { t.problem = problem }()
	if err := doc.Validate(); err != nil {
		return t, "a task that is not valid BSON", false
	}
	t.id = doc.Lookup("_id")
	if t.id.Type == 0 {
		return t, "a task without _id", false
	}
	if v := doc.Lookup("begin_time"); v.Type == bson.TypeDateTime {
		t.begin = timeSeconds(v)
	}
	t.generation, t.hasGeneration = wholeNumber(doc.Lookup("generation"))
	t.src, t.dst = timestampSeconds(doc.Lookup("srctimestamp")), timestampSeconds(doc.Lookup("dsttimestamp"))
	status, _ := doc.Lookup("status").StringValueOK()
	t.unfinished = status == statusAdded || status == statusProcessing
	if t.key, problem = decodeTaskKey(doc); problem != "" {
		t.malformed, t.sums.count = true, 1
		return t, fmt.Sprintf("task %s: %s", describeValue(t.id), problem), true
	}
	ns := doc.Lookup("query_filter", "namespace")
	t.namespace, _ = ns.StringValueOK()
	if ns.Type != 0 && ns.Type != bson.TypeNull && ns.Type != bson.TypeString {
		problem = fmt.Sprintf("task %s: query_filter.namespace is %s; left out of the per-namespace figures", describeValue(t.id), describeValue(ns))
	}
	t.sums = taskSums{
		count:           1,
		documents:       numberOrZero(doc, "documents_count"),
		found:           numberOrZero(doc, "found_source_documents_count"),
		bytes:           numberOrZero(doc, "source_bytes_count"),
		legacyDocuments: numberOrZero(doc, "source_documents_count"),
	}
	return t, problem, true
}

// decodeTaskGroup reads one row of taskGroupPipeline: {_id: {type, status[, namespace]},
// count, documents, found, bytes, legacy}. A row whose type or status is not a string
// stands for that many malformed tasks.
func decodeTaskGroup(row bson.Raw) (key taskKey, namespace string, sums taskSums, problem string) {
	if err := row.Validate(); err != nil {
		return key, "", sums, "a task group that is not valid BSON"
	}
	sums = taskSums{
		count:           numberOrZero(row, "count"),
		documents:       numberOrZero(row, "documents"),
		found:           numberOrZero(row, "found"),
		bytes:           numberOrZero(row, "bytes"),
		legacyDocuments: numberOrZero(row, "legacy"),
	}
	id, ok := row.Lookup("_id").DocumentOK()
	if !ok {
		return key, "", sums, "a task group without its type and status"
	}
	key, problem = decodeTaskKey(id)
	if ns := id.Lookup("namespace"); problem == "" && ns.Type != 0 && ns.Type != bson.TypeNull && ns.Type != bson.TypeString {
		problem = "query_filter.namespace is " + describeValue(ns)
	}
	if problem != "" {
		return key, "", sums, fmt.Sprintf("%.0f task(s): %s", sums.count, problem)
	}
	namespace, _ = id.Lookup("namespace").StringValueOK()
	return key, namespace, sums, ""
}

// taskRow is one row of a walk's chunk of tasks: one task (task is its _id), or
// several of one generation, type, status and (in the current generation and later)
// namespace.
type taskRow struct {
	task       bson.RawValue // zero for a row of several
	generation int64
	key        taskKey
	namespace  string
	sums       taskSums
	begin      *float64 // the newest begin_time
	src, dst   *float64 // the newest srctimestamp and dsttimestamp
	malformed  bool     // its tasks' type or status is not a string
	problem    string
}

// asTask is the row as a task: one task (unfinished or held), or a group of finished
// ones whose sums count them.
func (r taskRow) asTask() task {
	return task{id: r.task, generation: r.generation, hasGeneration: true, key: r.key, namespace: r.namespace, sums: r.sums,
		begin: r.begin, src: r.src, dst: r.dst, malformed: r.malformed, unfinished: r.key.unfinished(), problem: r.problem}
}

// decodeTaskRow reads a row of walkTaskStages; ok is false for one whose generation is
// not a whole number (no figure counts those tasks).
func decodeTaskRow(row bson.Raw) (r taskRow, ok bool) {
	var id bson.Raw
	if id, r.generation, ok = walkRowKey(row); !ok {
		return r, false
	}
	if task := id.Lookup("task"); task.Type != bson.TypeNull {
		r.task = task
	}
	r.sums = taskSums{
		count:           numberOrZero(row, "count"),
		documents:       numberOrZero(row, "documents"),
		found:           numberOrZero(row, "found"),
		bytes:           numberOrZero(row, "bytes"),
		legacyDocuments: numberOrZero(row, "legacy"),
	}
	if v := row.Lookup("begin"); v.Type == bson.TypeDateTime {
		r.begin = timeSeconds(v)
	}
	r.src, r.dst = timestampSeconds(row.Lookup("src")), timestampSeconds(row.Lookup("dst"))
	what := fmt.Sprintf("%.0f task(s)", r.sums.count)
	if r.task.Type != 0 {
		what = "task " + describeValue(r.task)
	}
	var problem string
	if r.key, problem = decodeTaskKey(id); problem != "" {
		r.malformed = true
		r.problem = what + ": " + problem
		return r, true
	}
	ns := id.Lookup("namespace")
	r.namespace, _ = ns.StringValueOK()
	if ns.Type != 0 && ns.Type != bson.TypeNull && ns.Type != bson.TypeString {
		r.problem = fmt.Sprintf("%s: query_filter.namespace is %s; left out of the per-namespace figures", what, describeValue(ns))
	}
	return r, true
}

// walkRowKey reads the key of a row of a walk's chunk (its _id) and the generation in it;
// ok is false for a row without one, or whose generation is not a whole number (no figure
// counts what such a row stands for).
func walkRowKey(row bson.Raw) (key bson.Raw, generation int64, ok bool) {
	if err := row.Validate(); err != nil {
		return nil, 0, false
	}
	doc, isDoc := row.Lookup("_id").DocumentOK()
	if !isDoc {
		return nil, 0, false
	}
	key = bson.Raw(doc)
	generation, ok = wholeNumber(key.Lookup("generation"))
	return key, generation, ok
}

// wholeNumber reads a BSON number that holds a whole number, as the server compares it
// with one (2.0 is 2; 2.5 is no generation).
func wholeNumber(v bson.RawValue) (int64, bool) {
	f, ok := v.AsFloat64OK()
	if !ok || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

// timestampSeconds reads a BSON timestamp's seconds; nil for anything else.
func timestampSeconds(v bson.RawValue) *float64 {
	if v.Type != bson.TypeTimestamp {
		return nil
	}
	return timeSeconds(v)
}

// decodeGeneration reads the generation document: the current generation (0 when it
// is not a whole number of at least 0) and the metadata version (nil when absent).
func decodeGeneration(doc bson.Raw) (generation int64, version *float64, problem string) {
	if err := doc.Validate(); err != nil {
		return 0, nil, "the generation document is not valid BSON"
	}
	if g, ok := doc.Lookup("generation").AsInt64OK(); ok && g >= 0 {
		generation = g
	} else if v := doc.Lookup("generation"); v.Type != 0 {
		problem = fmt.Sprintf("the generation document's generation is %s; taken as 0", describeValue(v))
	}
	if v, ok := doc.Lookup("metadataversion").AsFloat64OK(); ok {
		version = &v
	}
	return generation, version, problem
}

// decodeTokenTime reads the cluster time up to which a change reader's saved resume
// token has read: a change stream's {_data} (its KeyString starts with the time), or the
// oplog reader's {ts} (oplog.ResumeToken). nil for anything else.
func decodeTokenTime(doc bson.Raw) *float64 {
	token, ok := doc.Lookup("token").DocumentOK()
	if !ok {
		return nil
	}
	if ts, ok := oplogstore.TokenTime(bson.Raw(token)); ok {
		seconds := float64(ts.T)
		return &seconds
	}
	return timeSeconds(token.Lookup("ts"))
}

// decodeEventCounts reads a change reader's document: which cluster it reads, and its
// cumulative counts by operation type. A count that is not a number is left out.
func decodeEventCounts(doc bson.Raw) (role string, counts map[string]float64, problems []string) {
	if err := doc.Validate(); err != nil {
		return "", nil, []string{"a change reader document that is not valid BSON"}
	}
	switch id, _ := doc.Lookup("_id").StringValueOK(); id {
	case "srcResumeToken":
		role = "source"
	case "dstResumeToken":
		role = "destination"
	default:
		return "", nil, []string{fmt.Sprintf("a change reader document with _id %s", describeValue(doc.Lookup("_id")))}
	}
	raw, ok := doc.Lookup("eventCounts").DocumentOK()
	if !ok {
		if v := doc.Lookup("eventCounts"); v.Type != 0 && v.Type != bson.TypeNull {
			problems = append(problems, fmt.Sprintf("%s eventCounts is a BSON %s, not a document", role, v.Type))
		}
		return role, map[string]float64{}, problems
	}
	elements, err := raw.Elements()
	if err != nil {
		return role, map[string]float64{}, []string{role + " eventCounts is not valid BSON"}
	}
	counts = map[string]float64{}
	for _, e := range elements {
		n, ok := e.Value().AsFloat64OK()
		if !ok {
			problems = append(problems, fmt.Sprintf("%s eventCounts.%s is a BSON %s, not a number", role, truncate(e.Key()), e.Value().Type))
			continue
		}
		counts[e.Key()] = n
	}
	return role, counts, problems
}

// describeValue shows a value from a document in a message: a short rendering of it,
// and its type.
func describeValue(v bson.RawValue) string {
	var text string
	switch v.Type {
	case 0:
		return "(absent)"
	case bson.TypeString:
		str, _ := v.StringValueOK()
		text = fmt.Sprintf("%q", truncate(str))
	case bson.TypeObjectID:
		oid, _ := v.ObjectIDOK()
		text = oid.Hex()
	default:
		if n, ok := v.AsFloat64OK(); ok {
			text = fmt.Sprint(n)
		} else {
			text = truncate(v.String())
		}
	}
	return fmt.Sprintf("%s (BSON %s)", text, v.Type)
}

// problemList keeps the distinct problems of one read, at most maxProblems of them, for
// one log line.
type problemList struct {
	items []string
	more  int
}

const maxProblems = 10

func (p *problemList) add(problem string) {
	switch {
	case problem == "" || slices.Contains(p.items, problem):
	case len(p.items) < maxProblems:
		p.items = append(p.items, problem)
	default:
		p.more++
	}
}

func (p *problemList) addAll(o problemList) {
	for _, item := range o.items {
		p.add(item)
	}
	p.more += o.more
}

func (p *problemList) String() string {
	items := slices.Sorted(slices.Values(p.items))
	text := ""
	for i, item := range items {
		if i > 0 {
			text += "; "
		}
		text += item
	}
	if p.more > 0 {
		text += fmt.Sprintf("; and %d more", p.more)
	}
	return text
}

// timeSeconds reads a BSON date or timestamp as Unix seconds; nil for anything else.
func timeSeconds(v bson.RawValue) *float64 {
	var seconds float64
	switch v.Type {
	case bson.TypeDateTime:
		seconds = float64(v.DateTime()) / 1000
	case bson.TypeTimestamp:
		t, _ := v.Timestamp()
		seconds = float64(t)
	default:
		return nil
	}
	return &seconds
}
