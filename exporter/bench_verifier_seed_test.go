package exporter

// The metadata databases BenchmarkVerifierScrape reads, written at scale.

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// seedVerifierBench writes a verifier's metadata: n generation-0 verifyDocuments tasks
// over 1,000 namespaces, all finished but 1,000 when generation is 0; with generation 2,
// 1,000 finished recheck tasks in each of generations 1 and 2. The tasks were inserted
// an hour ago (their _ids say so): a steady state, not a burst of new tasks.
func seedVerifierBench(b *testing.B, db *mongo.Database, n int, generation int32) {
	ctx := b.Context()
	var counter uint64
	id := func() bson.ObjectID {
		oid := bson.NewObjectIDFromTimestamp(time.Now().Add(-time.Hour))
		counter++
		binary.BigEndian.PutUint64(oid[4:], counter)
		return oid
	}
	if _, err := db.Collection("generation").InsertOne(ctx, bson.D{{Key: "generation", Value: generation}, {Key: "metadataversion", Value: int32(7)}}); err != nil {
		b.Fatal(err)
	}
	tasks := db.Collection("verification_tasks")
	batch := make([]any, 0, 10_000)
	flush := func() {
		if len(batch) > 0 {
			if _, err := tasks.InsertMany(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	add := func(doc bson.D) {
		batch = append(batch, doc)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	add(bson.D{{Key: "_id", Value: id()}, {Key: "type", Value: taskPrimary}, {Key: "status", Value: statusCompleted}})
	for i := range n {
		status := statusCompleted
		if generation == 0 && i%(n/1000) == 0 {
			status = statusAdded
		}
		add(bson.D{
			{Key: "_id", Value: id()}, {Key: "type", Value: taskVerifyDocuments}, {Key: "status", Value: status}, {Key: "generation", Value: int32(0)},
			{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: fmt.Sprintf("db%d.coll%d", i%1000/100, i%1000)}}},
			{Key: "documents_count", Value: int64(0)}, {Key: "found_source_documents_count", Value: int64(1000)},
			{Key: "source_bytes_count", Value: int64(1 << 20)}, {Key: "begin_time", Value: bson.NewDateTimeFromTime(fixtureTime)},
		})
	}
	for g := int32(1); g <= generation; g++ {
		for i := range 1000 {
			add(bson.D{
				{Key: "_id", Value: id()}, {Key: "type", Value: taskVerifyDocuments}, {Key: "status", Value: statusCompleted}, {Key: "generation", Value: g},
				{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: fmt.Sprintf("db%d.coll%d", i/100, i)}}},
				{Key: "documents_count", Value: int64(3)}, {Key: "found_source_documents_count", Value: int64(3)},
				{Key: "source_bytes_count", Value: int64(3000)}, {Key: "srctimestamp", Value: bson.Timestamp{T: uint32(fixtureTime.Unix()), I: uint32(i)}},
			})
		}
	}
	flush()
}

// verifierScaleSeed is the unfinished tasks of a database seedVerifierScale wrote, for
// change to move on as a verifier would.
type verifierScaleSeed struct {
	added, processing []bson.ObjectID
	round             int
}

// seedVerifierScale writes a verifier's metadata in generation 0: n verifyDocuments
// tasks over 1,000 namespaces (and their 1,000 verifyCollection tasks), of which
// `unfinished` are added or (one in ten) processing, and `mismatches` mismatches, three
// per failed task. The tasks were inserted an hour ago.
func seedVerifierScale(b *testing.B, db *mongo.Database, n, unfinished, mismatches int) *verifierScaleSeed {
	ctx := b.Context()
	hourAgo := time.Now().Add(-time.Hour)
	var counter uint64
	id := func() bson.ObjectID {
		oid := bson.NewObjectIDFromTimestamp(hourAgo)
		counter++
		binary.BigEndian.PutUint64(oid[4:], counter)
		return oid
	}
	if _, err := db.Collection("generation").InsertOne(ctx, bson.D{{Key: "generation", Value: int32(0)}, {Key: "metadataversion", Value: int32(7)}}); err != nil {
		b.Fatal(err)
	}
	seed := &verifierScaleSeed{}
	var tasks, found []any
	tasks = append(tasks, bson.D{{Key: "_id", Value: id()}, {Key: "type", Value: taskPrimary}, {Key: "status", Value: statusCompleted}})
	namespace := func(i int) string { return fmt.Sprintf("db%d.coll%d", i%1000/100, i%1000) }
	for i := range 1000 {
		tasks = append(tasks, bson.D{{Key: "_id", Value: id()}, {Key: "type", Value: taskVerifyCollection}, {Key: "status", Value: statusCompleted},
			{Key: "generation", Value: int32(0)}, {Key: "query_filter", Value: bson.D{{Key: "namespace", Value: namespace(i)}}},
			{Key: "documents_count", Value: int64(n)}, {Key: "source_bytes_count", Value: int64(n) << 20}})
	}
	failed := mismatches / 3
	for i := range n {
		taskID, status := id(), statusCompleted
		doc := bson.D{{Key: "_id", Value: taskID}, {Key: "type", Value: taskVerifyDocuments}, {Key: "generation", Value: int32(0)},
			{Key: "query_filter", Value: bson.D{{Key: "namespace", Value: namespace(i)}}}, {Key: "documents_count", Value: int64(0)}}
		switch {
		case i*unfinished/n != (i+1)*unfinished/n && (len(seed.added)+len(seed.processing))%10 == 9:
			status = statusProcessing
			seed.processing = append(seed.processing, taskID)
			doc = append(doc, bson.E{Key: "begin_time", Value: bson.NewDateTimeFromTime(time.Now())})
		case i*unfinished/n != (i+1)*unfinished/n:
			status = statusAdded
			seed.added = append(seed.added, taskID)
		case i*failed/n != (i+1)*failed/n:
			status = statusFailed
			found = append(found, benchMismatches(taskID, namespace(i), 3, hourAgo)...)
		}
		if status == statusCompleted || status == statusFailed {
			doc = append(doc, bson.E{Key: "found_source_documents_count", Value: int64(1000)}, bson.E{Key: "source_bytes_count", Value: int64(1 << 20)},
				bson.E{Key: "begin_time", Value: bson.NewDateTimeFromTime(hourAgo)})
		}
		tasks = append(tasks, append(doc, bson.E{Key: "status", Value: status}))
	}
	for _, docs := range []struct {
		collection string
		docs       []any
	}{{"verification_tasks", tasks}, {"mismatches", found}} {
		for start := 0; start < len(docs.docs); start += 10_000 {
			if _, err := db.Collection(docs.collection).InsertMany(ctx, docs.docs[start:min(start+10_000, len(docs.docs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	return seed
}

// benchMismatches makes the mismatch documents a verifyDocuments task of generation 0
// records at a time: missing on the destination, extra on it, or differing in content.
func benchMismatches(taskID bson.ObjectID, namespace string, n int, at time.Time) []any {
	var out []any
	for i := range n {
		id := bson.NewObjectID()
		binary.BigEndian.PutUint32(id[:4], uint32(at.Unix()))
		details, field, cluster := []string{"Missing", "Missing", "Different"}[i%3], []string{"", "", "total"}[i%3], []string{"dstClient", "srcClient", "dstClient"}[i%3]
		out = append(out, bson.D{{Key: "_id", Value: id}, {Key: "generation", Value: int32(0)}, {Key: "taskType", Value: taskVerifyDocuments},
			{Key: "taskID", Value: taskID}, {Key: "detail", Value: bson.D{{Key: "id", Value: i}, {Key: "field", Value: field}, {Key: "details", Value: details},
				{Key: "namespace", Value: namespace}, {Key: "cluster", Value: cluster}}}})
	}
	return out
}

// change does what a verifier does between two scrapes: 100 processing tasks finish (20
// of them failed, with 3 mismatches each), 100 added ones are picked, 100 are inserted.
func (seed *verifierScaleSeed) change(b *testing.B, db *mongo.Database) {
	ctx := b.Context()
	tasks := db.Collection("verification_tasks")
	seed.round++
	done := seed.processing[:min(100, len(seed.processing))]
	seed.processing = seed.processing[len(done):]
	var found []any
	var failed, completed bson.A
	for i, taskID := range done {
		if i < 20 {
			failed = append(failed, taskID)
			found = append(found, benchMismatches(taskID, "db0.coll0", 3, time.Now())...)
		} else {
			completed = append(completed, taskID)
		}
	}
	if len(found) > 0 {
		if _, err := db.Collection("mismatches").InsertMany(ctx, found); err != nil {
			b.Fatal(err)
		}
	}
	for status, ids := range map[string]bson.A{statusFailed: failed, statusCompleted: completed} {
		if _, err := tasks.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: status}, {Key: "found_source_documents_count", Value: int64(1000)}, {Key: "source_bytes_count", Value: int64(1 << 20)}}}}); err != nil {
			b.Fatal(err)
		}
	}
	picked := seed.added[:min(100, len(seed.added))]
	seed.added = seed.added[len(picked):]
	seed.processing = append(seed.processing, picked...)
	if _, err := tasks.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: picked}}}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: statusProcessing}, {Key: "begin_time", Value: bson.NewDateTimeFromTime(time.Now())}}}}); err != nil {
		b.Fatal(err)
	}
	var inserted []any
	for i := range 100 {
		taskID := bson.NewObjectID()
		seed.added = append(seed.added, taskID)
		inserted = append(inserted, bson.D{{Key: "_id", Value: taskID}, {Key: "type", Value: taskVerifyDocuments}, {Key: "status", Value: statusAdded},
			{Key: "generation", Value: int32(0)}, {Key: "query_filter", Value: bson.D{{Key: "namespace", Value: fmt.Sprintf("db0.coll%d", i)}}}, {Key: "documents_count", Value: int64(0)}})
	}
	if _, err := tasks.InsertMany(ctx, inserted); err != nil {
		b.Fatal(err)
	}
}
