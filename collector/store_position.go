package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

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
