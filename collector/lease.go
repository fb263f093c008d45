package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
)

// LeaseCollection holds one lease document per source: the collector instance allowed
// to capture it. It is in the metadata database when one is configured (where every
// collector reporting on a source meets), else in the store database.
const LeaseCollection = "oplog_collector_leases"

// Instance names one collector process in leases and heartbeats.
type Instance = hbdoc.Instance

// NewInstance names this process: a random id (a restarted process is a new holder),
// with the host and pid for people.
func NewInstance() Instance {
	host, _ := os.Hostname()
	return Instance{ID: newUUID(), Host: host, PID: os.Getpid()}
}

// lease is a source's lease document. Its times are the metadata server's own clock
// ($currentDate), and expiry is judged against that clock too (hello's localTime), so
// the hosts' clocks never matter.
type lease struct {
	Source     string        `bson:"_id"`
	Holder     Instance      `bson:"holder"`
	AcquiredAt bson.DateTime `bson:"acquired_at"`
	RenewedAt  bson.DateTime `bson:"renewed_at"`
	TTLSeconds float64       `bson:"ttl_seconds"`
	// Position is the holder's last saved position, so that a restart on an empty store
	// (the store changed in the config) goes on from where the previous store stopped.
	Position *position `bson:"position,omitempty"`
	// Deregistered keeps the source stopped in every collector that lists it, until a
	// reset: de-registering is meant to stop its capture for good.
	Deregistered *deregistration `bson:"deregistered,omitempty"`
}

type deregistration struct {
	At bson.DateTime `bson:"at"`
	By string        `bson:"by"`
}

// expired tells whether the holder has not renewed the lease within its TTL, by the
// server's clock now.
func (l *lease) expired(now time.Time) bool {
	ttl := time.Duration(l.TTLSeconds * float64(time.Second))
	return l.RenewedAt.Time().Add(ttl).Before(now)
}

// leases reads and writes the lease documents for one collector instance.
type leases struct {
	coll *mongo.Collection
	me   Instance
	ttl  time.Duration
}

// errLeaseLost is a renewal that found another holder: this instance must stop writing.
var errLeaseLost = errors.New("the lease was taken over by another collector")

// acquire takes the source's lease when it is free, expired or already ours. held is
// the lease as found when another live instance holds it, or when the source was
// de-registered (unless overriding that: a reset captures it again).
func (ls *leases) acquire(ctx context.Context, source string, overrideDeregistered bool) (acquired bool, held *lease, err error) {
	current, now, err := ls.read(ctx, source)
	if err != nil {
		return false, nil, err
	}
	if current != nil && current.Deregistered != nil && !overrideDeregistered {
		return false, current, nil
	}
	if current != nil && current.Holder.ID != ls.me.ID && !current.expired(now) {
		return false, current, nil
	}
	// Ours or absent: claim it by our id. Taken over: claim it only if it is still as
	// we saw it, so that of two standbys one wins.
	filter := bson.D{{Key: "_id", Value: source}, {Key: "holder.id", Value: ls.me.ID}}
	if current != nil && current.Holder.ID != ls.me.ID {
		filter = bson.D{{Key: "_id", Value: source}, {Key: "holder.id", Value: current.Holder.ID}, {Key: "renewed_at", Value: current.RenewedAt}}
	}
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "holder", Value: ls.me}, {Key: "ttl_seconds", Value: ls.ttl.Seconds()}}},
		{Key: "$currentDate", Value: bson.D{{Key: "renewed_at", Value: true}, {Key: "acquired_at", Value: true}}},
	}
	res, err := ls.coll.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(current == nil))
	switch {
	case mongo.IsDuplicateKeyError(err):
		return false, nil, nil // another instance created it first; the next try sees it
	case err != nil:
		return false, nil, fmt.Errorf("taking the lease: %w", err)
	}
	return res.MatchedCount+res.UpsertedCount == 1, nil, nil
}

// read returns the source's lease (nil when there is none) and the server's time.
func (ls *leases) read(ctx context.Context, source string) (*lease, time.Time, error) {
	var l lease
	err := ls.coll.FindOne(ctx, bson.D{{Key: "_id", Value: source}}).Decode(&l)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, time.Time{}, fmt.Errorf("reading the lease: %w", err)
	}
	now, timeErr := serverTime(ctx, ls.coll.Database())
	if timeErr != nil {
		return nil, time.Time{}, timeErr
	}
	if err != nil {
		return nil, now, nil
	}
	return &l, now, nil
}

// serverTime is the server's clock (hello's localTime): leases are judged by it.
func serverTime(ctx context.Context, db *mongo.Database) (time.Time, error) {
	var hello struct {
		LocalTime bson.DateTime `bson:"localTime"`
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return time.Time{}, fmt.Errorf("reading the server's time: %w", err)
	}
	if hello.LocalTime == 0 {
		return time.Time{}, errors.New("the server's hello has no localTime")
	}
	return hello.LocalTime.Time(), nil
}

// renew extends the lease and records pos there. errLeaseLost means another instance
// holds it now.
func (ls *leases) renew(ctx context.Context, source string, pos *position) error {
	set := bson.D{{Key: "ttl_seconds", Value: ls.ttl.Seconds()}}
	if pos != nil {
		set = append(set, bson.E{Key: "position", Value: pos})
	}
	res, err := ls.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: source}, {Key: "holder.id", Value: ls.me.ID}},
		bson.D{{Key: "$set", Value: set}, {Key: "$currentDate", Value: bson.D{{Key: "renewed_at", Value: true}}}})
	if err != nil {
		return fmt.Errorf("renewing the lease: %w", err)
	}
	if res.MatchedCount == 0 {
		return errLeaseLost
	}
	return nil
}

// release lets a standby take over at once: the lease stays (with its position) but
// reads as expired.
func (ls *leases) release(ctx context.Context, source string) error {
	_, err := ls.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: source}, {Key: "holder.id", Value: ls.me.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "renewed_at", Value: bson.DateTime(0)}}}})
	if err != nil {
		return fmt.Errorf("releasing the lease: %w", err)
	}
	return nil
}

// forgetPosition removes the carried-over position (a reset starts from now) and the
// de-registration (a reset captures the source again).
func (ls *leases) forgetPosition(ctx context.Context, source string) error {
	_, err := ls.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: source}, {Key: "holder.id", Value: ls.me.ID}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "position", Value: ""}, {Key: "deregistered", Value: ""}}}})
	if err != nil {
		return fmt.Errorf("clearing the lease's position: %w", err)
	}
	return nil
}

// deregister marks the source de-registered, so no collector captures it until a
// reset, and releases it.
func (ls *leases) deregister(ctx context.Context, source, by string) error {
	_, err := ls.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: source}, {Key: "holder.id", Value: ls.me.ID}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "deregistered.by", Value: by}, {Key: "renewed_at", Value: bson.DateTime(0)}}},
			{Key: "$currentDate", Value: bson.D{{Key: "deregistered.at", Value: true}}},
			{Key: "$unset", Value: bson.D{{Key: "position", Value: ""}}},
		})
	if err != nil {
		return fmt.Errorf("marking the source de-registered: %w", err)
	}
	return nil
}

// describeHolder says who holds a lease, for logs and errors.
func describeHolder(l *lease, now time.Time) string {
	return fmt.Sprintf("collector %s, lease renewed %s ago", l.Holder, now.Sub(l.RenewedAt.Time()).Round(time.Second))
}

// newUUID is a random UUID in its text form (the old manager's str(uuid.uuid4())).
func newUUID() string { return uuid.NewString() }
