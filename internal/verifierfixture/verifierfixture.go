package verifierfixture

import (
	"cmp"
	"context"
	"encoding/binary"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Task types and statuses the verifier writes.
const (
	TaskPrimary             = "primary"
	TaskProcessRecheckQueue = "processRecheckQueue"
	TaskVerifyCollection    = "verifyCollection"
	TaskVerifyDocuments     = "verifyDocuments"

	StatusAdded      = "added"
	StatusProcessing = "processing"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
	StatusMismatch   = "mismatch"
)

// Fixture writes one verifier's metadata database.
type Fixture struct {
	DB *mongo.Database
	// Version is the metadataversion: 7 when 0. Before 7 the tasks carry one
	// source_documents_count instead of documents_count and found_source_documents_count.
	Version int32
	// Now anchors the times the fixture makes up (task _ids made for it, mismatch
	// histories, change tokens); the zero time stands for the clock's.
	Now time.Time
}

func (f Fixture) version() int32 {
	if f.Version == 0 {
		return 7
	}
	return f.Version
}

// Generation writes the generation document. The verifier upserts it without an _id
// (persistGenerationWhileLocked, generation.go), so the server gives it an ObjectId the
// first time, at the start of a verification; later generations replace its fields and
// keep that _id.
func (f Fixture) Generation(ctx context.Context, generation int32) error {
	_, err := f.DB.Collection("generation").InsertOne(ctx, bson.D{
		{Key: "generation", Value: generation},
		{Key: "metadataversion", Value: f.version()},
		{Key: "sourcechangereaderopt", Value: "changeStream"},
		{Key: "destinationchangereaderopt", Value: "changeStream"},
	})
	return err
}

// Task is one verification task; zero fields are written as the verifier writes them
// before they are known.
type Task struct {
	ID                      bson.ObjectID // zero: a new one, as the verifier makes them
	Type, Status, Namespace string
	Generation              int32
	Documents, Found, Size  int64
	IDs                     []int // a recheck task's document ids
	Begin                   time.Time
	SrcTS, DstTS            time.Time // newest change a recheck covers on each side
}

// Tasks writes verification tasks.
func (f Fixture) Tasks(ctx context.Context, tasks ...Task) error {
	docs := make([]any, 0, len(tasks))
	for _, tk := range tasks {
		docs = append(docs, f.taskDoc(tk))
	}
	_, err := f.DB.Collection("verification_tasks").InsertMany(ctx, docs)
	return err
}

// newID makes an ObjectId as the verifier does when it inserts a document, with the
// time at (unless zero).
func newID(at time.Time) bson.ObjectID {
	id := bson.NewObjectID()
	if !at.IsZero() {
		binary.BigEndian.PutUint32(id[:4], uint32(at.Unix()))
	}
	return id
}

func (f Fixture) taskDoc(tk Task) bson.D {
	id := tk.ID
	if id.IsZero() { // inserted when it was picked, or now
		id = newID(cmp.Or(tk.Begin, f.Now))
	}
	doc := bson.D{{Key: "_id", Value: id}, {Key: "type", Value: tk.Type}, {Key: "status", Value: tk.Status}}
	if tk.Type == TaskPrimary { // one document, no generation
		return doc
	}
	doc = append(doc, bson.E{Key: "generation", Value: tk.Generation})
	if tk.Type == TaskProcessRecheckQueue { // upserted with its generation, type and status only
		if !tk.Begin.IsZero() {
			doc = append(doc, bson.E{Key: "begin_time", Value: bson.NewDateTimeFromTime(tk.Begin)})
		}
		return doc
	}
	if tk.IDs != nil {
		ids := bson.A{}
		for _, id := range tk.IDs {
			ids = append(ids, id)
		}
		doc = append(doc, bson.E{Key: "_ids", Value: ids})
	} else {
		doc = append(doc, bson.E{Key: "_ids", Value: nil})
	}
	if tk.Type != TaskProcessRecheckQueue {
		filter := bson.D{{Key: "namespace", Value: tk.Namespace}, {Key: "to", Value: tk.Namespace}}
		if tk.Type == TaskVerifyDocuments && tk.Generation == 0 {
			filter = append(filter, bson.E{Key: "partition", Value: bson.D{{Key: "_id", Value: bson.D{
				{Key: "lowerBound", Value: bson.MinKey{}}, {Key: "upperBound", Value: bson.MaxKey{}}}}}})
		} else {
			filter = append(filter, bson.E{Key: "partition", Value: nil})
		}
		doc = append(doc, bson.E{Key: "query_filter", Value: filter})
	}
	if f.version() >= 7 {
		doc = append(doc, bson.E{Key: "documents_count", Value: tk.Documents}, bson.E{Key: "found_source_documents_count", Value: tk.Found})
	} else {
		// One field held the source count, and the documents found once finished.
		count := tk.Documents
		if tk.Type == TaskVerifyDocuments && tk.Found > 0 {
			count = tk.Found
		}
		doc = append(doc, bson.E{Key: "source_documents_count", Value: count})
	}
	doc = append(doc, bson.E{Key: "source_bytes_count", Value: tk.Size})
	if !tk.Begin.IsZero() {
		doc = append(doc, bson.E{Key: "begin_time", Value: bson.NewDateTimeFromTime(tk.Begin)})
	}
	for _, ts := range []struct {
		key string
		at  time.Time
	}{{"srctimestamp", tk.SrcTS}, {"dsttimestamp", tk.DstTS}} {
		if ts.at.IsZero() {
			doc = append(doc, bson.E{Key: ts.key, Value: nil})
		} else {
			doc = append(doc, bson.E{Key: ts.key, Value: bson.Timestamp{T: uint32(ts.at.Unix()), I: 7}})
		}
	}
	return doc
}

// Mismatch is one document of the mismatches collection, as of metadata v6.
type Mismatch struct {
	Generation     int32
	TaskType       string
	TaskID         bson.ObjectID // the task that found it; zero: a new one
	ID             any           // the document's _id, an index name or "spec"
	Field, Details string
	Cluster        string // srcClient or dstClient
	Namespace      string
}

// Mismatches writes mismatch documents, each with an ObjectId made as the driver makes
// it when the verifier inserts one (at Now, when set).
func (f Fixture) Mismatches(ctx context.Context, ms ...Mismatch) error {
	if len(ms) == 0 {
		return nil
	}
	docs := make([]any, 0, len(ms))
	for _, m := range ms {
		taskID := m.TaskID
		if taskID.IsZero() {
			taskID = bson.NewObjectID()
		}
		docs = append(docs, bson.D{
			{Key: "_id", Value: newID(f.Now)},
			{Key: "generation", Value: m.Generation},
			{Key: "taskType", Value: m.TaskType},
			{Key: "taskID", Value: taskID},
			{Key: "detail", Value: bson.D{
				{Key: "id", Value: m.ID},
				{Key: "field", Value: m.Field},
				{Key: "details", Value: m.Details},
				{Key: "namespace", Value: m.Namespace},
				{Key: "cluster", Value: m.Cluster},
				{Key: "mismatchHistory", Value: bson.D{{Key: "first", Value: bson.NewDateTimeFromTime(f.Now.Add(-time.Hour))}, {Key: "durationMS", Value: int64(3_600_000)}}},
				{Key: "srctimestamp", Value: bson.Timestamp{T: uint32(f.Now.Unix()), I: 1}}, // dsttimestamp: omitted when none
			}},
		})
	}
	_, err := f.DB.Collection("mismatches").InsertMany(ctx, docs)
	return err
}

// ChangeReader writes the change readers' documents with their cumulative event counts
// into collection: changeReader, or changeStream before metadata v4.
func (f Fixture) ChangeReader(ctx context.Context, collection string, src, dst bson.D) error {
	_, err := f.DB.Collection(collection).InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "srcResumeToken"}, {Key: "token", Value: bson.D{{Key: "_data", Value: "8267B1A2C3000000012B0429296E1404"}}}, {Key: "eventCounts", Value: src}},
		bson.D{{Key: "_id", Value: "dstResumeToken"}, {Key: "token", Value: bson.D{{Key: "ts", Value: bson.Timestamp{T: uint32(f.Now.Unix()), I: 3}}}}, {Key: "eventCounts", Value: dst}},
	})
	return err
}

// Counts builds eventCounts from name, count pairs.
func Counts(pairs ...any) bson.D {
	var d bson.D
	for i := 0; i+1 < len(pairs); i += 2 {
		d = append(d, bson.E{Key: pairs[i].(string), Value: int64(pairs[i+1].(int))})
	}
	return d
}
