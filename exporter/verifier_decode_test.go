package exporter

import (
	"regexp"
	"testing"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// verifierFuzzSeeds are documents of every kind FuzzVerifierDocuments decodes, some
// well formed, some not.
var verifierFuzzSeeds = []bson.D{
	{{Key: "_id", Value: bson.NewObjectID()}, {Key: "type", Value: "verifyDocuments"}, {Key: "status", Value: "completed"},
		{Key: "generation", Value: int32(0)}, {Key: "query_filter", Value: bson.D{{Key: "namespace", Value: "shop.orders"}}},
		{Key: "documents_count", Value: int64(0)}, {Key: "found_source_documents_count", Value: int64(100)}, {Key: "source_bytes_count", Value: int64(4096)}},
	{{Key: "_id", Value: "x"}, {Key: "type", Value: "verify\xff"}, {Key: "status", Value: "added\xfe"},
		{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: "shop.\xc3("}}}, {Key: "found_source_documents_count", Value: "many"}},
	{{Key: "_id", Value: bson.D{{Key: "type", Value: int32(1)}, {Key: "status", Value: "failed"}, {Key: "namespace", Value: bson.A{}}}},
		{Key: "count", Value: 3.5}, {Key: "documents", Value: int32(7)}},
	{{Key: "_id", Value: "srcResumeToken"}, {Key: "eventCounts", Value: bson.D{{Key: "insert", Value: int64(5)}, {Key: "up\xffdate", Value: int64(2)}, {Key: "delete", Value: "x"}}}},
	{{Key: "_id", Value: "dstResumeToken"}, {Key: "eventCounts", Value: bson.A{1}}},
	{{Key: "generation", Value: int32(-3)}, {Key: "metadataversion", Value: "seven"}},
	{{Key: "generation", Value: 2.0}, {Key: "metadataversion", Value: int32(7)}},
	{{Key: "_id", Value: bson.D{{Key: "task", Value: nil}, {Key: "generation", Value: int32(0)}, {Key: "type", Value: "verifyDocuments"},
		{Key: "status", Value: "failed"}, {Key: "namespace", Value: "a.b"}}}, {Key: "count", Value: int32(4)}, {Key: "found", Value: int64(40)},
		{Key: "begin", Value: bson.NewDateTimeFromTime(fixtureTime)}, {Key: "src", Value: bson.Timestamp{T: 5}}, {Key: "last", Value: bson.NewObjectID()}},
	{{Key: "_id", Value: bson.NewObjectID()}, {Key: "generation", Value: int32(1)}, {Key: "taskType", Value: "verifyDocuments"}, {Key: "taskID", Value: bson.NewObjectID()},
		{Key: "detail", Value: bson.D{{Key: "details", Value: "Missing"}, {Key: "field", Value: ""}, {Key: "cluster", Value: "dstClient"}, {Key: "namespace", Value: "a.\xff"}}}},
	{{Key: "_id", Value: bson.D{{Key: "generation", Value: 1.0}, {Key: "task", Value: "t"}, {Key: "taskType", Value: "verifyCollection"},
		{Key: "missing", Value: true}, {Key: "namespace", Value: int32(3)}}}, {Key: "count", Value: 2.5}, {Key: "ids", Value: bson.A{1, "x"}}},
}

// FuzzVerifierDocuments feeds raw BSON to every decoder of verifier metadata (a task, a
// group of tasks, a row of the walk's chunks of tasks or mismatches, a mismatch, the
// generation document, a change reader's document), then exports what they read:
// nothing may panic, and every series must be valid, whatever the bytes (invalid UTF-8,
// wrong types, truncations).
func FuzzVerifierDocuments(f *testing.F) {
	for _, s := range verifierFuzzSeeds {
		doc, err := bson.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(doc))
		f.Add([]byte(doc[:len(doc)/2]))
	}
	target := &verifierTarget{include: regexp.MustCompile("")}
	limit, eventTypes := 10, 5
	target.NamespaceLimit, target.ChangeEventTypeLimit = &limit, &eventTypes
	f.Fuzz(func(t *testing.T, data []byte) {
		m := metadataOfAnyDocument(bson.Raw(data))
		// Problems go to the log, which escapes what is not UTF-8: their length is bounded.
		if text := m.problems.String(); len(text) > 4*maxProblems*maxErrorText {
			t.Errorf("problems too long: %d bytes", len(text))
		}
		for key := range m.tasks {
			if !slicesContains(taskTypes, key.Type) && key.Type != otherValue || !slicesContains(taskStatuses, key.Status) && key.Status != otherValue {
				t.Errorf("task key %+v is neither known nor other", key)
			}
		}
		checkLabels(t, target, m)
	})
}

// metadataOfAnyDocument decodes doc as every kind of document the verifier writes, and
// adds what each decoder found to one read's figures, as the reader would.
func metadataOfAnyDocument(doc bson.Raw) *verifierMetadata {
	m := &verifierMetadata{database: "db", hasGenerationDoc: true, complete: true, totalsRead: 1,
		tasks: map[taskKey]taskSums{}, namespaces: namespaceStates{}, changeEvents: map[string]map[string]float64{}}
	var problem string
	m.generation, m.metadataVersion, problem = decodeGeneration(doc)
	m.problems.add(problem)
	if task, problem, ok := decodeTask(doc); ok {
		m.problems.add(problem)
		if !task.malformed {
			m.tasks[task.key] = m.tasks[task.key].plus(task.sums)
			m.namespaces.add(task.key, task.namespace, 1)
		}
	}
	if key, namespace, sums, problem := decodeTaskGroup(doc); problem == "" {
		m.tasks[key] = m.tasks[key].plus(sums)
		m.namespaces.add(key, namespace, sums.count)
	} else {
		m.problems.add(problem)
	}
	if row, ok := decodeTaskRow(doc); ok {
		m.problems.add(row.problem)
		if !row.malformed {
			m.tasks[row.key] = m.tasks[row.key].plus(row.sums)
			m.namespaces.add(row.key, row.namespace, row.sums.count)
		}
	}
	mismatches := newMismatchTally(bson.ObjectID{}, 0)
	if mm, ok := decodeMismatch(doc); ok {
		mismatches.generation(mm.generation, m.generation).add(mm.kind, mm.namespace, mm.badNS, 1)
		mismatches.open[idKey(mm.id)] = mm
	}
	if row, ok := decodeMismatchRow(doc); ok {
		mismatches.generation(row.generation, m.generation).add(row.kind, row.namespace, row.badNS, row.count)
	}
	m.decide(nil)
	mismatches.fill(m)
	if role, counts, problems := decodeEventCounts(doc); role != "" {
		m.changeEvents[role] = counts
		for _, p := range problems {
			m.problems.add(p)
		}
	}
	return m
}

// checkLabels emits the series of m and checks each is a valid metric with valid,
// bounded label values.
func checkLabels(t *testing.T, target *verifierTarget, m *verifierMetadata) {
	out := newBatch(&scraperStats{})
	target.emitMetadata(emitter{out: out, labels: []string{"", "v"}}, m, nil)
	for _, metric := range out.metrics {
		var pb dto.Metric
		if err := metric.Write(&pb); err != nil {
			t.Fatalf("invalid metric %s: %v", metric.Desc(), err)
		}
		for _, l := range pb.GetLabel() {
			if !utf8.ValidString(l.GetValue()) || len(l.GetValue()) > maxLabelValueBytes {
				t.Errorf("label %s=%q is not a valid bounded label value", l.GetName(), l.GetValue())
			}
		}
	}
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
