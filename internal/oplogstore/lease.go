package oplogstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// LeaseCollection holds one lease document per source, _id the source's name: the
// collector instance allowed to capture it, and the epoch every store write of that
// holder is checked against. It lives in the store database, beside what it guards, so
// that the daemon and every command that knows the store find it; resets and
// de-registrations never drop it.
const LeaseCollection = "oplog_collector_leases"

// Fields of a lease document.
const (
	// LeaseFieldEpoch grows at every acquisition of the lease and every reset or
	// de-registration. Each store write of a holder runs in a transaction that first
	// writes this document on the holder's epoch: once the epoch has moved on, the
	// holder can land nothing more.
	LeaseFieldEpoch      = "epoch"
	LeaseFieldHolder     = "holder"
	LeaseFieldProcess    = "process"
	LeaseFieldAcquiredAt = "acquired_at"
	LeaseFieldRenewedAt  = "renewed_at"
	LeaseFieldTTL        = "ttl_seconds"
	// LeaseFieldPosition is the position the holder last saved, written in the same
	// transaction as the token document: a token document that differs from it was saved
	// by a process that holds no lease.
	LeaseFieldPosition     = "position"
	LeaseFieldDeregistered = "deregistered"
	LeaseFieldWiping       = "wiping"
	LeaseFieldWrites       = "writes"
	LeaseFieldForeign      = "foreign_writes"
	// LeaseFieldSession is the lsid of the session in which the holder runs its fenced
	// transactions: a collector taking the lease over kills it, so that a transaction
	// its holder left open does not hold the lease document.
	LeaseFieldSession = "session"
)

// ForeignWrites is what holders of a source's lease found in its store that no holder
// wrote: documents with ObjectId _ids (the old collector's) and token saves.
type ForeignWrites struct {
	Documents int64         `bson:"documents,omitempty" json:"documents"`
	Positions int64         `bson:"positions,omitempty" json:"positions"`
	LastSeen  bson.DateTime `bson:"last_seen" json:"-"`
}

// ReadForeignWrites tells what the source's store holds that no lease holder wrote:
// what holders recorded finding (nil when nothing), and whether the saved position is
// not the one the last holder saved.
func ReadForeignWrites(ctx context.Context, db *mongo.Database, source string) (found *ForeignWrites, positionForeign bool, err error) {
	var lease struct {
		Foreign  *ForeignWrites `bson:"foreign_writes"`
		Position *struct {
			Token bson.Raw `bson:"token"`
		} `bson:"position"`
	}
	err = db.Collection(LeaseCollection).FindOne(ctx, bson.D{{Key: FieldID, Value: source}}).Decode(&lease)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading %s: %w", LeaseCollection, err)
	}
	if lease.Position != nil && lease.Position.Token != nil {
		var saved struct {
			Token bson.Raw `bson:"token"`
		}
		err := db.Collection(TokensCollection(source)).FindOne(ctx, bson.D{{Key: FieldID, Value: TokenID(source)}}).Decode(&saved)
		switch {
		case err == nil:
			positionForeign = !bytes.Equal(saved.Token, lease.Position.Token)
		case !errors.Is(err, mongo.ErrNoDocuments):
			return nil, false, fmt.Errorf("reading %s: %w", TokensCollection(source), err)
		}
	}
	return lease.Foreign, positionForeign, nil
}

// KnownSources lists, sorted, the sources db holds anything of: a lease, events, a
// position or gap records.
func KnownSources(ctx context.Context, db *mongo.Database) ([]string, error) {
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("listing the store's collections: %w", err)
	}
	var known []string
	for _, name := range names {
		for _, prefix := range []string{EventsCollection(""), TokensCollection(""), GapsCollection("")} {
			if source, ok := strings.CutPrefix(name, prefix); ok && source != "" {
				known = append(known, source)
			}
		}
	}
	leased, err := LeasedSources(ctx, db.Collection(LeaseCollection))
	if err != nil {
		return nil, err
	}
	known = append(known, leased...)
	slices.Sort(known)
	return slices.Compact(known), nil
}

// LeasedSources lists the sources that have a lease document in coll.
func LeasedSources(ctx context.Context, coll *mongo.Collection) ([]string, error) {
	cursor, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: FieldID, Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", coll.Name(), err)
	}
	var leases []struct {
		Source string `bson:"_id"`
	}
	if err := cursor.All(ctx, &leases); err != nil {
		return nil, fmt.Errorf("reading %s: %w", coll.Name(), err)
	}
	sources := make([]string, 0, len(leases))
	for _, l := range leases {
		sources = append(sources, l.Source)
	}
	return sources, nil
}
