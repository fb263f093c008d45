package collector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// sourceStore is one source's part of the oplog data store, in the layout of package
// oplogstore: events, the resume token document, the record of gaps, and the source's
// lease, which every write of a holder checks (fence.go).
type sourceStore struct {
	name   string
	client *mongo.Client
	events *mongo.Collection
	tokens *mongo.Collection
	gaps   *mongo.Collection
	leases *mongo.Collection
}

func newSourceStore(db *mongo.Database, name string) *sourceStore {
	majority := options.Collection().SetWriteConcern(writeconcern.Majority())
	return &sourceStore{
		name:   name,
		client: db.Client(),
		events: db.Collection(oplogstore.EventsCollection(name), majority),
		tokens: db.Collection(oplogstore.TokensCollection(name), majority),
		gaps:   db.Collection(oplogstore.GapsCollection(name), majority),
		leases: db.Collection(oplogstore.LeaseCollection, majority),
	}
}

// Names of the events collection's indexes.
const (
	windowIndex = "cluster_name_1_ts_1"
	ttlIndex    = "wall_1"
)

// indexModels are the events collection's indexes: the window index (the heartbeat's
// oldest-entry query and a replay's range scan use it) and, with a retention, the TTL
// index on wall.
func indexModels(retention time.Duration) []mongo.IndexModel {
	models := []mongo.IndexModel{{
		Keys:    bson.D{{Key: oplogstore.FieldClusterName, Value: 1}, {Key: oplogstore.FieldTS, Value: 1}},
		Options: options.Index().SetName(windowIndex),
	}}
	if retention > 0 {
		models = append(models, mongo.IndexModel{
			Keys:    bson.D{{Key: oplogstore.FieldWall, Value: 1}},
			Options: options.Index().SetName(ttlIndex).SetExpireAfterSeconds(int32(retention / time.Second)),
		})
	}
	return models
}

// prepareEvents tells whether the events collection exists, and gives an existing one
// the indexes it lacks (a store the old collector alone wrote) and the retention
// configured now. A missing one is created by the first write, with its indexes, in the
// transaction that checks the lease: one that a reset or de-registration dropped is
// never brought back by a collector that lost the lease.
func (s *sourceStore) prepareEvents(ctx context.Context, retention time.Duration) (exists bool, err error) {
	names, err := s.events.Database().ListCollectionNames(ctx, bson.D{{Key: "name", Value: s.events.Name()}})
	if err != nil {
		return false, fmt.Errorf("looking for the events collection: %w", err)
	}
	if len(names) == 0 {
		return false, nil
	}
	specs, err := s.events.Indexes().ListSpecifications(ctx)
	if err != nil {
		return false, fmt.Errorf("reading the store's indexes: %w", err)
	}
	have := map[string]*mongo.IndexSpecification{}
	for i := range specs {
		have[specs[i].Name] = &specs[i]
	}
	wall := have[ttlIndex]
	switch {
	case have[windowIndex] == nil || (retention > 0 && wall == nil):
		return true, s.createIndexes(ctx, retention)
	case retention > 0 && (wall.ExpireAfterSeconds == nil || int64(*wall.ExpireAfterSeconds) != int64(retention/time.Second)):
		// A retention changed since the index was made.
		err := s.events.Database().RunCommand(ctx, bson.D{
			{Key: "collMod", Value: s.events.Name()},
			{Key: "index", Value: bson.D{{Key: "name", Value: ttlIndex}, {Key: "expireAfterSeconds", Value: int64(retention / time.Second)}}},
		}).Err()
		if err != nil {
			return true, fmt.Errorf("changing the retention of the store's TTL index: %w", err)
		}
	}
	return true, nil
}

// createIndexes creates the events collection's indexes outside any transaction.
func (s *sourceStore) createIndexes(ctx context.Context, retention time.Duration) error {
	if _, err := s.events.Indexes().CreateMany(ctx, indexModels(retention)); err != nil {
		return fmt.Errorf("creating the store's indexes: %w", err)
	}
	return nil
}

// position is where a change stream resumes from, as the token document keeps it.
type position struct {
	Token      bson.Raw `bson:"token"`
	StartAfter bool     `bson:"start_after"` // after an invalidate, only startAfter can pass it
	// ClusterTime is the time the token stands for; zero when it cannot be told.
	ClusterTime bson.Timestamp `bson:"cluster_time,omitempty"`
	// Wall is the time up to which the store holds every event once this position is
	// reached, to the millisecond: the event's wallTime, or for a post-batch token of
	// an empty batch the time its answer came. Zero when only ClusterTime is known.
	Wall time.Time `bson:"-"`
}

// wall is the position's time to the millisecond when known, else its cluster time's
// second; zero when neither is known.
func (p position) wall() time.Time {
	switch {
	case !p.Wall.IsZero():
		return p.Wall
	case !p.ClusterTime.IsZero():
		return time.Unix(int64(p.ClusterTime.T), 0)
	}
	return time.Time{}
}

// tokenDocument is the token document's fields this collector reads.
type tokenDocument struct {
	Token       bson.Raw         `bson:"token"`
	StartAfter  bool             `bson:"start_after"`
	ClusterTime bson.Timestamp   `bson:"cluster_time"`
	Identity    *clusterIdentity `bson:"source_identity"` // oplogstore.TokenFieldSourceIdentity
	// StartAt is where a resume starts capture again, in a document with no token.
	StartAt bson.Timestamp `bson:"start_at_operation_time,omitempty"` // oplogstore.TokenFieldStartAt
}

func (d tokenDocument) position() position {
	return position{Token: d.Token, StartAfter: d.StartAfter, ClusterTime: d.ClusterTime}
}

// loadToken reads the token document: the saved position (Token nil when none is
// saved) and the identity of the cluster the store's history comes from (nil when
// not recorded yet, as in the old collector's stores).
func (s *sourceStore) loadToken(ctx context.Context) (tokenDocument, error) {
	var doc tokenDocument
	err := s.tokens.FindOne(ctx, bson.D{{Key: "_id", Value: oplogstore.TokenID(s.name)}}).Decode(&doc)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return tokenDocument{}, fmt.Errorf("reading the saved resume token: %w", err)
	}
	if ts, ok := oplogstore.TokenTime(doc.Token); ok {
		doc.ClusterTime = ts // another tool saving the token leaves cluster_time as it was
	}
	return doc, nil
}

// batchWrite is what one store transaction writes: a batch's documents and, when the
// batch has one, the position that covers them.
type batchWrite struct {
	docs     []bson.Raw
	pos      *position
	identity *clusterIdentity // the source cluster's, recorded with the position
	// last is the token the store held when this holder last read or saved it: another
	// token there was saved by a process that holds no lease.
	last bson.Raw
	// createEvents makes the events collection, with its indexes, before the documents.
	createEvents bool
	retention    time.Duration
	// closeGaps records the position as where capture started again after the open gaps.
	closeGaps bool
	// skipStored inserts only the documents not in the store yet: a retry of a batch an
	// earlier attempt may have written.
	skipStored bool
}

// write stores b in one transaction fenced by epoch: the documents, acknowledged by a
// majority together with the position that covers them, in the token document and the
// lease. foreign tells that the token document held a token this holder did not save.
func (s *sourceStore) write(ctx context.Context, epoch int64, b batchWrite, command *[]byte) (foreign bool, err error) {
	var claim bson.D
	if b.pos != nil {
		claim = bson.D{{Key: "$set", Value: bson.D{{Key: oplogstore.LeaseFieldPosition, Value: b.pos}}}}
	}
	err = s.fenced(ctx, epoch, claim, func(ctx context.Context) error {
		foreign = false
		if b.createEvents && len(b.docs) > 0 {
			if _, err := s.events.Indexes().CreateMany(ctx, indexModels(b.retention)); err != nil {
				return fmt.Errorf("creating %s with its indexes: %w", s.events.Name(), err)
			}
		}
		docs := b.docs
		if b.skipStored {
			var err error
			if docs, err = s.unstored(ctx, docs); err != nil {
				return err
			}
		}
		if err := s.insert(ctx, docs, command); err != nil {
			return err
		}
		if b.pos != nil {
			var err error
			if foreign, err = s.savePosition(ctx, epoch, *b.pos, b.identity, b.last); err != nil {
				return err
			}
		}
		if b.closeGaps && b.pos != nil && !b.pos.ClusterTime.IsZero() {
			if _, err := s.gaps.UpdateMany(ctx, bson.D{{Key: "before", Value: bson.D{{Key: "$exists", Value: false}}}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "before", Value: b.pos.ClusterTime}}}}); err != nil {
				return fmt.Errorf("closing the record of a gap: %w", err)
			}
		}
		return nil
	})
	return foreign, err
}

// savePosition records pos as the position to resume from, with the identity of the
// cluster it comes from (when known), in the transaction of write. The old collector's
// fields stay as they were; the rest are additions. A token there that is not last was
// saved by another process: that is recorded in the lease (foreign).
func (s *sourceStore) savePosition(ctx context.Context, epoch int64, pos position, from *clusterIdentity, last bson.Raw) (foreign bool, err error) {
	set := bson.D{
		{Key: oplogstore.TokenFieldToken, Value: pos.Token},
		{Key: oplogstore.TokenFieldUpdatedAt, Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: oplogstore.TokenFieldStartAfter, Value: pos.StartAfter},
	}
	if !pos.ClusterTime.IsZero() {
		set = append(set, bson.E{Key: oplogstore.TokenFieldClusterTime, Value: pos.ClusterTime})
	}
	if from != nil {
		set = append(set, bson.E{Key: oplogstore.TokenFieldSourceIdentity, Value: from})
	}
	update := bson.D{{Key: "$set", Value: set}}
	id := bson.E{Key: "_id", Value: oplogstore.TokenID(s.name)}
	if last == nil {
		if taken, err := s.takeResumeStart(ctx, update); err != nil || taken {
			return false, err
		}
	}
	if last != nil {
		res, err := s.tokens.UpdateOne(ctx, bson.D{id, {Key: oplogstore.TokenFieldToken, Value: last}}, update)
		if err != nil {
			return false, fmt.Errorf("saving the resume token: %w", err)
		}
		if res.MatchedCount == 1 {
			return false, nil
		}
	}
	// Changed, deleted or created by another process since this holder read or saved it
	// (last nil and a document there), or absent: written as this holder's.
	res, err := s.tokens.UpdateOne(ctx, bson.D{id}, update, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return false, fmt.Errorf("saving the resume token: %w", err)
	}
	foreign = last != nil || res.MatchedCount == 1
	if foreign {
		if err := s.recordForeign(ctx, epoch, 0, 1); err != nil {
			return false, err
		}
	}
	return foreign, nil
}

// recordForeign counts in the lease, for range and people, what this holder found in
// the store that no holder wrote.
func (s *sourceStore) recordForeign(ctx context.Context, epoch int64, documents, positions int64) error {
	_, err := s.leases.UpdateOne(ctx, bson.D{{Key: "_id", Value: s.name}, epochIs(epoch)}, bson.D{
		{Key: "$inc", Value: bson.D{{Key: oplogstore.LeaseFieldForeign + ".documents", Value: documents}, {Key: oplogstore.LeaseFieldForeign + ".positions", Value: positions}}},
		{Key: "$currentDate", Value: bson.D{{Key: oplogstore.LeaseFieldForeign + ".last_seen", Value: true}}},
	})
	if err != nil {
		return fmt.Errorf("recording writes of a process that holds no lease: %w", err)
	}
	return nil
}

// unstored returns the documents of docs whose _id is not in the store.
func (s *sourceStore) unstored(ctx context.Context, docs []bson.Raw) ([]bson.Raw, error) {
	ids := make(bson.A, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.Lookup(oplogstore.FieldID))
	}
	cursor, err := s.events.Find(ctx, bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: oplogstore.FieldID, Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("finding what the store holds of a batch written again: %w", err)
	}
	var found []bson.Raw
	if err := cursor.All(ctx, &found); err != nil {
		return nil, fmt.Errorf("finding what the store holds of a batch written again: %w", err)
	}
	stored := map[string]bool{}
	for _, f := range found {
		stored[string(f.Lookup(oplogstore.FieldID).Value)] = true
	}
	out := docs[:0:0]
	for _, d := range docs {
		if !stored[string(d.Lookup(oplogstore.FieldID).Value)] {
			out = append(out, d)
		}
	}
	return out, nil
}

// maxCommandDocuments bounds the documents of one insert command: with the command's
// own fields it stays under the 16 MiB a command may hold.
const maxCommandDocuments = 15 << 20

// insert writes docs, unordered, in as few commands as fit: in write's transaction,
// whose commit is acknowledged by a majority.
//
// command is scratch space for the command, reused from batch to batch: the driver has
// copied it by the time RunCommand returns.
func (s *sourceStore) insert(ctx context.Context, docs []bson.Raw, command *[]byte) error {
	for len(docs) > 0 {
		n, size := 1, len(docs[0])
		for n < len(docs) && size+len(docs[n]) <= maxCommandDocuments {
			size += len(docs[n])
			n++
		}
		*command = appendInsertCommand((*command)[:0], s.events.Name(), docs[:n])
		if err := s.events.Database().RunCommand(ctx, bson.Raw(*command)).Err(); err != nil {
			return fmt.Errorf("writing %d events to %s: %w", n, s.events.Name(), err)
		}
		docs = docs[n:]
	}
	return nil
}

// appendInsertCommand appends the insert command for docs to dst, built in BSON
// directly. InsertMany would decode every document again to find its _id, and even a
// command given as a Go value is walked field by field to encode it: together more than
// half of the writer's CPU. As one document, the driver copies it at once. It has no
// write concern: a statement of a transaction may not (its commit has one).
func appendInsertCommand(dst []byte, collection string, docs []bson.Raw) []byte {
	start, cmd := bsoncore.AppendDocumentStart(dst)
	cmd = bsoncore.AppendStringElement(cmd, "insert", collection)
	array, cmd := bsoncore.AppendArrayElementStart(cmd, "documents")
	for i, doc := range docs {
		// The array's keys are the indexes, written in place rather than as strings.
		cmd = strconv.AppendInt(bsoncore.AppendType(cmd, bsoncore.TypeEmbeddedDocument), int64(i), 10)
		cmd = append(append(cmd, 0), doc...)
	}
	cmd, _ = bsoncore.AppendArrayEnd(cmd, array)
	cmd = bsoncore.AppendBooleanElement(cmd, "ordered", false)
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, start)
	return cmd
}

// onlyDuplicates tells whether every failure of an insert is a duplicate key (11000):
// every document is in the store then, or the others were not written for it (in a
// transaction, the first failure aborts it).
func onlyDuplicates(err error) bool {
	var we mongo.WriteException
	if !errors.As(err, &we) || we.WriteConcernError != nil || len(we.WriteErrors) == 0 {
		return false
	}
	for _, e := range we.WriteErrors {
		if e.Code != 11000 {
			return false
		}
	}
	return true
}

// oldest returns the cluster time of the oldest event in the store (index-backed).
func (s *sourceStore) oldest(ctx context.Context) (bson.Timestamp, bool, error) {
	return s.edge(ctx, 1)
}

// newest returns the cluster time of the newest event in the store (index-backed).
func (s *sourceStore) newest(ctx context.Context) (bson.Timestamp, bool, error) {
	return s.edge(ctx, -1)
}

func (s *sourceStore) edge(ctx context.Context, order int) (bson.Timestamp, bool, error) {
	var doc struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err := s.events.FindOne(ctx, bson.D{{Key: oplogstore.FieldClusterName, Value: s.name}},
		options.FindOne().SetSort(bson.D{{Key: oplogstore.FieldClusterName, Value: order}, {Key: oplogstore.FieldTS, Value: order}}).
			SetProjection(bson.D{{Key: oplogstore.FieldTS, Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.Timestamp{}, false, nil
	}
	if err != nil {
		return bson.Timestamp{}, false, fmt.Errorf("finding the stored events' time range: %w", err)
	}
	return doc.TS, true, nil
}

// dropAfter deletes the store documents of events after the position token, in a
// transaction fenced by epoch: this collector's, whose _id is their token's _data,
// which sorts as the stream does. The parts of the event at the position
// ("<_id>:<k>", oplogstore.Split) sort after its _id but belong to it, and stay. The old
// collector's documents (ObjectId _ids) are left alone.
func (s *sourceStore) dropAfter(ctx context.Context, epoch int64, token bson.Raw) (int64, error) {
	data, ok := token.Lookup("_data").StringValueOK()
	if !ok {
		return 0, nil // a token of another shape: nothing can be compared with it
	}
	var deleted int64
	err := s.fenced(ctx, epoch, nil, func(ctx context.Context) error {
		res, err := s.events.DeleteMany(ctx, bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$gt", Value: data}, {Key: "$lt", Value: data + oplogstore.PartSeparator}}}},
			bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$gte", Value: oplogstore.PartsEnd(data)}}}},
		}}})
		if err != nil {
			return fmt.Errorf("dropping what was stored after the saved position: %w", err)
		}
		deleted = res.DeletedCount
		return nil
	})
	return deleted, err
}

// firstFragmentType returns the type of the split event whose later fragment has the
// token data given: its first fragment has the same cluster time and the greatest token
// below it (tokens order as the stream does).
func (s *sourceStore) firstFragmentType(ctx context.Context, ts bson.Timestamp, laterData string) (string, error) {
	var doc struct {
		OpType string `bson:"op_type"`
	}
	err := s.events.FindOne(ctx, bson.D{
		{Key: oplogstore.FieldClusterName, Value: s.name},
		{Key: oplogstore.FieldTS, Value: ts},
		{Key: oplogstore.FieldSplitEvent + ".fragment", Value: 1},
		{Key: oplogstore.FieldID, Value: bson.D{{Key: "$lt", Value: laterData}}},
	}, options.FindOne().SetSort(bson.D{{Key: oplogstore.FieldID, Value: -1}})).Decode(&doc)
	if err != nil {
		return "", fmt.Errorf("finding the first fragment of a split event: %w", err)
	}
	return doc.OpType, nil
}

// count is about how many events the store holds (the collection's metadata count:
// exact after a clean shutdown, and free of a scan of what may be millions).
func (s *sourceStore) count(ctx context.Context) (int64, error) {
	n, err := s.events.EstimatedDocumentCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("counting the stored events: %w", err)
	}
	return n, nil
}

// holdsNothing tells whether the store holds nothing of the source: no events and no
// gap records (a reset leaves its gap record).
func (s *sourceStore) holdsNothing(ctx context.Context) (bool, error) {
	for _, c := range []*mongo.Collection{s.events, s.gaps} {
		err := c.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		switch {
		case err == nil:
			return false, nil
		case !errors.Is(err, mongo.ErrNoDocuments):
			return false, fmt.Errorf("reading %s: %w", c.Name(), err)
		}
	}
	return true, nil
}

// wipe drops the events and the token: the old tool's reset. The gap records stay, so
// the store still tells what was wiped; dropGaps removes them too (de-registering).
// The caller holds the source's lease for the act, whose epoch fences every earlier
// holder out: none of them brings back what is dropped here.
func (s *sourceStore) wipe(ctx context.Context, dropGaps bool) error {
	colls := []*mongo.Collection{s.events, s.tokens}
	if dropGaps {
		colls = append(colls, s.gaps)
	}
	for _, c := range colls {
		if err := c.Drop(ctx); err != nil {
			return fmt.Errorf("dropping %s: %w", c.Name(), err)
		}
	}
	return nil
}

// recordGap adds a gap to the store's record, in a transaction fenced by epoch. Its
// Before is set by the first position saved once capture has started again.
func (s *sourceStore) recordGap(ctx context.Context, epoch int64, gap oplogstore.Gap) error {
	gap.ID = newUUID()
	gap.DetectedAt = bson.NewDateTimeFromTime(time.Now())
	return s.fenced(ctx, epoch, nil, func(ctx context.Context) error {
		if _, err := s.gaps.InsertOne(ctx, gap); err != nil {
			return fmt.Errorf("recording a gap in the captured history: %w", err)
		}
		return nil
	})
}

// foreignDocuments counts the documents with an ObjectId _id greater than after (the
// old collector's: this one's _ids are strings), and returns the greatest.
func (s *sourceStore) foreignDocuments(ctx context.Context, after bson.ObjectID) (int64, bson.ObjectID, error) {
	filter := bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$gt", Value: after}}}}
	n, err := s.events.CountDocuments(ctx, filter)
	if err != nil || n == 0 {
		return 0, after, err
	}
	newest, err := s.greatestObjectID(ctx, filter)
	return n, newest, err
}

// greatestObjectID is the greatest ObjectId _id of the documents filter selects; the
// zero ObjectID when there are none.
func (s *sourceStore) greatestObjectID(ctx context.Context, filter bson.D) (bson.ObjectID, error) {
	var doc struct {
		ID bson.ObjectID `bson:"_id"`
	}
	err := s.events.FindOne(ctx, filter, options.FindOne().SetSort(bson.D{{Key: oplogstore.FieldID, Value: -1}}).
		SetProjection(bson.D{{Key: oplogstore.FieldID, Value: 1}})).Decode(&doc)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return bson.ObjectID{}, fmt.Errorf("reading %s: %w", s.events.Name(), err)
	}
	return doc.ID, nil
}
