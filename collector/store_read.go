package collector

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// What the store holds of a source, read: its edges, the first fragment of a split
// event, and the documents that no holder of the lease wrote.

// oldest returns the cluster time of the oldest event in the store (index-backed).
func (s *sourceStore) oldest(ctx context.Context) (bson.Timestamp, bool, error) {
	return oplogstore.Edge(ctx, s.events.Database(), s.name, false)
}

// newest returns the cluster time of the newest event in the store (index-backed).
func (s *sourceStore) newest(ctx context.Context) (bson.Timestamp, bool, error) {
	return oplogstore.Edge(ctx, s.events.Database(), s.name, true)
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
