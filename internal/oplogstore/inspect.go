package oplogstore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Edge returns the ts of source's oldest (newest false) or newest stored event, read
// from the {cluster_name: 1, ts: 1} index; ok is false when the store holds none.
func Edge(ctx context.Context, db *mongo.Database, source string, newest bool) (ts bson.Timestamp, ok bool, err error) {
	order := 1
	if newest {
		order = -1
	}
	var doc struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err = db.Collection(EventsCollection(source)).FindOne(ctx,
		bson.D{{Key: FieldClusterName, Value: source}, {Key: FieldTS, Value: bson.D{{Key: "$type", Value: "timestamp"}}}},
		options.FindOne().SetSort(bson.D{{Key: FieldClusterName, Value: order}, {Key: FieldTS, Value: order}}).
			SetProjection(bson.D{{Key: FieldTS, Value: 1}})).Decode(&doc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return bson.Timestamp{}, false, nil
	case err != nil:
		return bson.Timestamp{}, false, fmt.Errorf("reading %s: %w", EventsCollection(source), err)
	}
	return doc.TS, true, nil
}

// CountEvents counts the store documents of source with after < ts <= upTo (after nil:
// no lower bound): events, and the parts and fragments of large ones.
func CountEvents(ctx context.Context, db *mongo.Database, source string, after *bson.Timestamp, upTo bson.Timestamp) (int64, error) {
	n, err := db.Collection(EventsCollection(source)).CountDocuments(ctx, RangeFilter(source, after, upTo))
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", EventsCollection(source), err)
	}
	return n, nil
}

// ReadGaps returns every Gap recorded for source, oldest first.
func ReadGaps(ctx context.Context, db *mongo.Database, source string) ([]Gap, error) {
	cursor, err := db.Collection(GapsCollection(source)).Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "detected_at", Value: 1}, {Key: FieldID, Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", GapsCollection(source), err)
	}
	var gaps []Gap
	if err := cursor.All(ctx, &gaps); err != nil {
		return nil, fmt.Errorf("reading %s: %w", GapsCollection(source), err)
	}
	return gaps, nil
}
