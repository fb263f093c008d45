package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

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
	// fencing runs the store's writes, fenced by the lease (fence.go).
	fencing fencing
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
