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
)

// sourceStore is one source's part of the oplog data store, in the old collector's
// layout: events in oplogs_<name>, the resume token in resume_tokens_for_<name>.
type sourceStore struct {
	name   string
	events *mongo.Collection
	tokens *mongo.Collection
}

func newSourceStore(db *mongo.Database, name string) *sourceStore {
	majority := options.Collection().SetWriteConcern(writeconcern.Majority())
	return &sourceStore{
		name:   name,
		events: db.Collection("oplogs_"+name, majority),
		tokens: db.Collection("resume_tokens_for_"+name, majority),
	}
}

func (s *sourceStore) tokenID() string { return "resume_token_" + s.name }

// ensureIndexes creates the window index (the heartbeat's oldest-entry query and a
// replay's range scan use it) and, with a retention, the TTL index on wall. A retention
// changed since the index was made is applied with collMod.
func (s *sourceStore) ensureIndexes(ctx context.Context, retention time.Duration) error {
	models := []mongo.IndexModel{{
		Keys:    bson.D{{Key: "cluster_name", Value: 1}, {Key: "ts", Value: 1}},
		Options: options.Index().SetName("cluster_name_1_ts_1"),
	}}
	if retention > 0 {
		models = append(models, mongo.IndexModel{
			Keys:    bson.D{{Key: "wall", Value: 1}},
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

// position is where a change stream resumes from.
type position struct {
	token      bson.Raw
	startAfter bool // after an invalidate, only startAfter can pass it
}

// loadToken reads the saved resume token; an empty position means none is saved.
func (s *sourceStore) loadToken(ctx context.Context) (position, error) {
	var doc struct {
		Token      bson.Raw `bson:"token"`
		StartAfter bool     `bson:"start_after"`
	}
	err := s.tokens.FindOne(ctx, bson.D{{Key: "_id", Value: s.tokenID()}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("reading the saved resume token: %w", err)
	}
	return position{token: doc.Token, startAfter: doc.StartAfter}, nil
}

// saveToken records it as the position to resume from, acknowledged by a majority. The
// old collector's fields stay as they were; the rest are additions.
func (s *sourceStore) saveToken(ctx context.Context, it item) error {
	set := bson.D{
		{Key: "token", Value: it.token},
		{Key: "updated_at", Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: "start_after", Value: it.startAfter},
	}
	if !it.tokenTime.IsZero() {
		set = append(set, bson.E{Key: "cluster_time", Value: it.tokenTime})
	}
	_, err := s.tokens.UpdateOne(ctx, bson.D{{Key: "_id", Value: s.tokenID()}}, bson.D{{Key: "$set", Value: set}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("saving the resume token: %w", err)
	}
	return nil
}

// insert writes a batch, unordered, acknowledged by a majority. Documents already in
// the store (a batch written again after a crash or a retry) are not errors.
//
// command is scratch space for the command, reused from batch to batch: the driver has
// copied it by the time RunCommand returns.
func (s *sourceStore) insert(ctx context.Context, docs []bson.Raw, command *[]byte) error {
	*command = appendInsertCommand((*command)[:0], s.events.Name(), docs)
	err := s.events.Database().RunCommand(ctx, bson.Raw(*command)).Err()
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return fmt.Errorf("writing %d events to %s: %w", len(docs), s.events.Name(), err)
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
	var doc struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err := s.events.FindOne(ctx, bson.D{{Key: "cluster_name", Value: s.name}},
		options.FindOne().SetSort(bson.D{{Key: "cluster_name", Value: 1}, {Key: "ts", Value: 1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.Timestamp{}, false, nil
	}
	if err != nil {
		return bson.Timestamp{}, false, fmt.Errorf("finding the oldest stored event: %w", err)
	}
	return doc.TS, true, nil
}

// wipe drops the events and the token: the old tool's reset and de-register.
func (s *sourceStore) wipe(ctx context.Context) error {
	if err := s.events.Drop(ctx); err != nil {
		return fmt.Errorf("dropping %s: %w", s.events.Name(), err)
	}
	if err := s.tokens.Drop(ctx); err != nil {
		return fmt.Errorf("dropping %s: %w", s.tokens.Name(), err)
	}
	return nil
}
