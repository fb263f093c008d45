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
// oplogstore: events, the resume token document, and the record of gaps.
type sourceStore struct {
	name   string
	events *mongo.Collection
	tokens *mongo.Collection
	gaps   *mongo.Collection
}

func newSourceStore(db *mongo.Database, name string) *sourceStore {
	majority := options.Collection().SetWriteConcern(writeconcern.Majority())
	return &sourceStore{
		name:   name,
		events: db.Collection(oplogstore.EventsCollection(name), majority),
		tokens: db.Collection(oplogstore.TokensCollection(name), majority),
		gaps:   db.Collection(oplogstore.GapsCollection(name), majority),
	}
}

// ensureIndexes creates the window index (the heartbeat's oldest-entry query and a
// replay's range scan use it) and, with a retention, the TTL index on wall. A retention
// changed since the index was made is applied with collMod.
func (s *sourceStore) ensureIndexes(ctx context.Context, retention time.Duration) error {
	models := []mongo.IndexModel{{
		Keys:    bson.D{{Key: oplogstore.FieldClusterName, Value: 1}, {Key: oplogstore.FieldTS, Value: 1}},
		Options: options.Index().SetName("cluster_name_1_ts_1"),
	}}
	if retention > 0 {
		models = append(models, mongo.IndexModel{
			Keys:    bson.D{{Key: oplogstore.FieldWall, Value: 1}},
			Options: options.Index().SetName("wall_1").SetExpireAfterSeconds(int32(retention / time.Second)),
		})
	}
	if _, err := s.events.Indexes().CreateMany(ctx, models); err != nil {
		var se mongo.ServerError
		// 85 IndexOptionsConflict: wall_1 exists with another expireAfterSeconds.
		if errors.As(err, &se) && se.HasErrorCode(85) && retention > 0 {
			return s.events.Database().RunCommand(ctx, bson.D{
				{Key: "collMod", Value: s.events.Name()},
				{Key: "index", Value: bson.D{{Key: "name", Value: "wall_1"}, {Key: "expireAfterSeconds", Value: int64(retention / time.Second)}}},
			}).Err()
		}
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
}

// tokenDocument is the token document's fields this collector reads.
type tokenDocument struct {
	Token       bson.Raw         `bson:"token"`
	StartAfter  bool             `bson:"start_after"`
	ClusterTime bson.Timestamp   `bson:"cluster_time"`
	Identity    *clusterIdentity `bson:"source_identity"` // oplogstore.TokenFieldSourceIdentity
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
	if doc.Token != nil && doc.ClusterTime.IsZero() {
		doc.ClusterTime, _ = oplogstore.TokenTime(doc.Token) // saved by the old collector
	}
	return doc, nil
}

// saveToken records pos as the position to resume from, acknowledged by a majority,
// with the identity of the cluster it comes from (when known). The old collector's
// fields stay as they were; the rest are additions.
func (s *sourceStore) saveToken(ctx context.Context, pos position, from *clusterIdentity) error {
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
	_, err := s.tokens.UpdateOne(ctx, bson.D{{Key: "_id", Value: oplogstore.TokenID(s.name)}}, bson.D{{Key: "$set", Value: set}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("saving the resume token: %w", err)
	}
	return nil
}

// maxCommandDocuments bounds the documents of one insert command: with the command's
// own fields it stays under the 16 MiB a command may hold.
const maxCommandDocuments = 15 << 20

// insert writes docs, unordered, acknowledged by a majority, in as few commands as fit.
// Documents already in the store (written again after a crash or a retry) are not
// errors.
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
		if err := s.events.Database().RunCommand(ctx, bson.Raw(*command)).Err(); err != nil && !onlyDuplicates(err) {
			return fmt.Errorf("writing %d events to %s: %w", n, s.events.Name(), err)
		}
		docs = docs[n:]
	}
	return nil
}

// appendInsertCommand appends the insert command for docs to dst, built in BSON
// directly. InsertMany would decode every document again to find its _id, and even a
// command given as a Go value is walked field by field to encode it: together more than
// half of the writer's CPU. As one document, the driver copies it at once.
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
	concern, cmd := bsoncore.AppendDocumentElementStart(cmd, "writeConcern")
	cmd = bsoncore.AppendStringElement(cmd, "w", "majority")
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, concern)
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, start)
	return cmd
}

// onlyDuplicates tells whether every failure of an insert is a duplicate key (11000) and
// the write concern was met: then every document is in the store.
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

// dropAfter deletes the store documents of events after the position token: this
// collector's, whose _id is their token's _data, which sorts as the stream does. The
// parts of the event at the position ("<_id>:<k>", oplogstore.Split) sort after its _id
// but belong to it, and stay. The old collector's documents (ObjectId _ids) are left
// alone.
func (s *sourceStore) dropAfter(ctx context.Context, token bson.Raw) (int64, error) {
	data, ok := token.Lookup("_data").StringValueOK()
	if !ok {
		return 0, nil // a token of another shape: nothing can be compared with it
	}
	res, err := s.events.DeleteMany(ctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$gt", Value: data}, {Key: "$lt", Value: data + oplogstore.PartSeparator}}}},
		bson.D{{Key: oplogstore.FieldID, Value: bson.D{{Key: "$gte", Value: oplogstore.PartsEnd(data)}}}},
	}}})
	if err != nil {
		return 0, fmt.Errorf("dropping what was stored after the saved position: %w", err)
	}
	return res.DeletedCount, nil
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

// wipe drops the events and the token: the old tool's reset. The gap records stay, so
// the store still tells what was wiped; dropGaps removes them too (de-registering).
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

// recordGap adds a gap to the store's record. Its Before is set by closeGaps once
// capture has started again.
func (s *sourceStore) recordGap(ctx context.Context, gap oplogstore.Gap) error {
	gap.ID = newUUID()
	gap.DetectedAt = bson.NewDateTimeFromTime(time.Now())
	if _, err := s.gaps.InsertOne(ctx, gap); err != nil {
		return fmt.Errorf("recording a gap in the captured history: %w", err)
	}
	return nil
}

// closeGaps records where capture started again after the open gaps.
func (s *sourceStore) closeGaps(ctx context.Context, restart bson.Timestamp) error {
	_, err := s.gaps.UpdateMany(ctx, bson.D{{Key: "before", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "before", Value: restart}}}})
	if err != nil {
		return fmt.Errorf("closing the record of a gap: %w", err)
	}
	return nil
}
