package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-kit/log"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// LeaseCollection holds one lease document per source, in the store database
// (oplogstore.LeaseCollection). Collectors before fencing kept it in the metadata
// database when one was configured: see readLegacy.
const LeaseCollection = oplogstore.LeaseCollection

// Instance names one collector process in leases and heartbeats.
type Instance = hbdoc.Instance

// NewInstance names this process: a random id (a restarted process is a new holder),
// with the host and pid for people.
func NewInstance() Instance {
	host, _ := os.Hostname()
	return Instance{ID: newUUID(), Host: host, PID: os.Getpid()}
}

// lease is a source's lease document. Its times are the store server's own clock
// ($currentDate), and expiry is judged against that clock too (hello's localTime), so
// the hosts' clocks never matter.
type lease struct {
	Source string `bson:"_id"`
	// Epoch grows at every acquisition and every reset or de-registration; the store
	// refuses every write of a holder whose epoch it no longer is (fence.go).
	Epoch      int64            `bson:"epoch"`
	Holder     Instance         `bson:"holder"`
	Process    *processIdentity `bson:"process,omitempty"`
	AcquiredAt bson.DateTime    `bson:"acquired_at"`
	RenewedAt  bson.DateTime    `bson:"renewed_at"`
	TTLSeconds float64          `bson:"ttl_seconds"`
	// Session is the lsid of the session in which the holder runs its fenced
	// transactions (fence.go).
	Session bson.Raw `bson:"session,omitempty"`
	// Position is the position the holder last saved, written with the token document.
	Position *position `bson:"position,omitempty"`
	// Deregistered keeps the source stopped in every collector that lists it, until a
	// reset: de-registering is meant to stop its capture for good.
	Deregistered *deregistration `bson:"deregistered,omitempty"`
	// Wiping is a reset or de-registration under way, or interrupted: no collector
	// captures the source until it is done, by running it again if need be.
	Wiping *wiping `bson:"wiping,omitempty"`

	// legacy is a lease an earlier collector keeps in the metadata database.
	legacy bool
}

type deregistration struct {
	At bson.DateTime `bson:"at"`
	By string        `bson:"by"`
}

// wiping is a destructive act on the source's store: what, by whom, since when.
type wiping struct {
	Action string        `bson:"action"`
	By     string        `bson:"by"`
	Since  bson.DateTime `bson:"since"`
}

// expired tells whether the holder has not renewed the lease within its TTL, by the
// server's clock now.
func (l *lease) expired(now time.Time) bool {
	ttl := time.Duration(l.TTLSeconds * float64(time.Second))
	return l.RenewedAt.Time().Add(ttl).Before(now)
}

// leases reads and writes the lease documents of the store for one collector process.
type leases struct {
	coll *mongo.Collection // the store's
	// legacy is where collectors before fencing kept leases: the metadata database's
	// collection of the same name; nil without a metadata database.
	legacy *mongo.Collection
	beats  *heartbeats
	me     Instance
	proc   *processIdentity
	timing leaseTiming
	logger log.Logger
}

// leaseTiming is a lease's clock: how long it lasts unrenewed, how often its holder
// renews it, and how often a standby looks whether it is free.
type leaseTiming struct {
	ttl time.Duration
}

// renewEvery is the holder's renewal period: a third of the TTL, so that two
// renewals can fail (the store away for a moment) before the lease expires.
func (t leaseTiming) renewEvery() time.Duration { return t.ttl / 3 }

// pollEvery is a standby's period: a quarter of the TTL, so that it takes an expired
// lease over within about a quarter of the TTL after it expires.
func (t leaseTiming) pollEvery() time.Duration { return t.ttl / 4 }

// errLeaseLost is a renewal or a store write that found the lease in other hands (or
// its epoch moved on): this instance must stop writing.
var errLeaseLost = errors.New("the lease was taken over by another collector")

// epochIs selects a lease of epoch e: the leases of collectors before fencing have no
// epoch, which reads as 0.
func epochIs(e int64) bson.E {
	if e == 0 {
		return bson.E{Key: oplogstore.LeaseFieldEpoch, Value: bson.D{{Key: "$exists", Value: false}}}
	}
	return bson.E{Key: oplogstore.LeaseFieldEpoch, Value: e}
}

// acquire takes the source's lease when it is free, expired, already ours, or held by
// a process this one can prove dead (same host and boot, process gone), with a new
// epoch, and returns that epoch. held is the lease as found when it cannot be taken: a
// live holder, a de-registration, a destructive act under way. act, when not nil, takes
// the lease for that act (a reset or a de-registration): it overrides a
// de-registration, and an act left unfinished, and is recorded in the lease until
// finishAct.
func (ls *leases) acquire(ctx context.Context, source string, act *wiping) (epoch int64, held *lease, err error) {
	current, now, err := ls.read(ctx, source)
	if err != nil {
		return 0, nil, err
	}
	if current != nil && !ls.mayTake(current, now, act) {
		return 0, current, nil
	}
	legacy, err := ls.readLegacy(ctx, source)
	if err != nil {
		return 0, nil, err
	}
	if legacy != nil && !ls.mayTake(legacy, now, act) {
		return 0, legacy, nil
	}
	var from int64
	filter := bson.D{{Key: "_id", Value: source}, {Key: oplogstore.LeaseFieldHolder, Value: bson.D{{Key: "$exists", Value: false}}}}
	if current != nil {
		// Taken only if still as read, so that of two collectors one wins.
		from = current.Epoch
		filter = bson.D{{Key: "_id", Value: source}, epochIs(current.Epoch),
			{Key: oplogstore.LeaseFieldHolder + ".id", Value: current.Holder.ID}, {Key: oplogstore.LeaseFieldRenewedAt, Value: current.RenewedAt}}
		// A transaction the holder left open would keep the update below waiting.
		ls.killHolderSession(ctx, current)
	}
	// Heartbeats are fenced by epoch too, and a source's heartbeat document outlives a
	// change of store: a new epoch is past the one it records.
	epoch = max(from, ls.beats.epoch(ctx, source)) + 1
	set := bson.D{{Key: oplogstore.LeaseFieldEpoch, Value: epoch}, {Key: oplogstore.LeaseFieldHolder, Value: ls.me}, {Key: oplogstore.LeaseFieldProcess, Value: ls.proc}, {Key: oplogstore.LeaseFieldTTL, Value: ls.timing.ttl.Seconds()}}
	unset := bson.D{}
	if act != nil {
		set = append(set, bson.E{Key: oplogstore.LeaseFieldWiping, Value: act})
		unset = append(unset, bson.E{Key: oplogstore.LeaseFieldDeregistered, Value: ""})
	}
	update := bson.D{{Key: "$set", Value: set}, {Key: "$currentDate", Value: bson.D{{Key: oplogstore.LeaseFieldRenewedAt, Value: true}, {Key: oplogstore.LeaseFieldAcquiredAt, Value: true}}}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	res, err := ls.coll.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(current == nil))
	switch {
	case mongo.IsDuplicateKeyError(err):
		return 0, nil, nil // another instance created it first; the next try sees it
	case err != nil:
		return 0, nil, fmt.Errorf("taking the lease: %w", err)
	case res.MatchedCount+res.UpsertedCount != 1:
		return 0, nil, nil
	}
	if legacy != nil {
		ls.retireLegacy(ctx, source)
	}
	return epoch, nil, nil
}

// free tells whether no live collector other than this one holds l: it is ours,
// expired, or held by a process known dead.
func (ls *leases) free(l *lease, now time.Time) bool {
	return l.Holder.ID == ls.me.ID || l.expired(now) || gone(l.Holder.Host, l.Holder.PID, l.Process, ls.proc, ls.me.Host)
}

// mayTake tells whether l may be taken now: for an act, when it is free; to capture,
// when it is also neither de-registered nor being wiped.
func (ls *leases) mayTake(l *lease, now time.Time, act *wiping) bool {
	if act != nil {
		return ls.free(l, now)
	}
	return ls.free(l, now) && l.Deregistered == nil && l.Wiping == nil
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

// liveHolder returns the source's lease when a live collector holds it (here or in the
// metadata database, where earlier collectors keep theirs), with the server's time.
func (ls *leases) liveHolder(ctx context.Context, source string) (*lease, time.Time, error) {
	current, now, err := ls.read(ctx, source)
	if err != nil || (current != nil && !ls.free(current, now)) {
		return current, now, err
	}
	legacy, err := ls.readLegacy(ctx, source)
	if err != nil || legacy == nil || legacy.Deregistered != nil || ls.free(legacy, now) {
		return nil, now, err
	}
	return legacy, now, nil
}

// readLegacy reads the lease an earlier collector keeps for the source in the metadata
// database, when it still counts: not retired (see retireLegacy). Its expiry is judged
// by its own server's clock, whose time it returns in the lease's stead: RenewedAt is
// shifted so that expired compares it with the store's time.
func (ls *leases) readLegacy(ctx context.Context, source string) (*lease, error) {
	if ls.legacy == nil {
		return nil, nil
	}
	var l lease
	raw, err := ls.legacy.FindOne(ctx, bson.D{{Key: "_id", Value: source}}).Raw()
	if err == nil {
		err = bson.Unmarshal(raw, &l)
	}
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the lease an earlier collector kept in the metadata database: %w", err)
	case l.Epoch != 0 || raw.Lookup("retired").Type != 0:
		return nil, nil // the store's own lease (the metadata database is the store's), or retired
	}
	metaNow, err := serverTime(ctx, ls.legacy.Database())
	if err != nil {
		return nil, err
	}
	storeNow, err := serverTime(ctx, ls.coll.Database())
	if err != nil {
		return nil, err
	}
	l.RenewedAt = bson.NewDateTimeFromTime(l.RenewedAt.Time().Add(storeNow.Sub(metaNow)))
	l.legacy = true
	return &l, nil
}

// retireLegacy marks the lease an earlier collector kept in the metadata database as
// moved to the store, and as de-registered for collectors that still read it: one that
// holds it stops at its next renewal, and none takes it again, so an earlier collector
// left running never writes beside this one unfenced.
func (ls *leases) retireLegacy(ctx context.Context, source string) {
	by := "the lease moved beside the store (collector " + ls.me.String() + "): upgrade this collector"
	_, _ = ls.legacy.UpdateOne(ctx, bson.D{{Key: "_id", Value: source}, epochIs(0)}, bson.D{
		{Key: "$set", Value: bson.D{{Key: oplogstore.LeaseFieldHolder, Value: ls.me}, {Key: oplogstore.LeaseFieldRenewedAt, Value: bson.DateTime(0)},
			{Key: oplogstore.LeaseFieldDeregistered + ".by", Value: by}, {Key: "retired.by", Value: by}}},
		{Key: "$currentDate", Value: bson.D{{Key: oplogstore.LeaseFieldDeregistered + ".at", Value: true}, {Key: "retired.at", Value: true}}},
	})
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

// mine selects the source's lease while this instance holds it at epoch.
func (ls *leases) mine(source string, epoch int64) bson.D {
	return bson.D{{Key: "_id", Value: source}, {Key: oplogstore.LeaseFieldHolder + ".id", Value: ls.me.ID}, epochIs(epoch)}
}

// renew extends the lease. errLeaseLost means it is no longer this instance's at epoch.
func (ls *leases) renew(ctx context.Context, source string, epoch int64) error {
	res, err := ls.coll.UpdateOne(ctx, ls.mine(source, epoch),
		bson.D{{Key: "$set", Value: bson.D{{Key: oplogstore.LeaseFieldTTL, Value: ls.timing.ttl.Seconds()}}}, {Key: "$currentDate", Value: bson.D{{Key: oplogstore.LeaseFieldRenewedAt, Value: true}}}})
	if err != nil {
		return fmt.Errorf("renewing the lease: %w", err)
	}
	if res.MatchedCount == 0 {
		return errLeaseLost
	}
	return nil
}

// release lets a standby take over at once: the lease stays but reads as expired.
func (ls *leases) release(ctx context.Context, source string, epoch int64) error {
	_, err := ls.coll.UpdateOne(ctx, ls.mine(source, epoch), bson.D{{Key: "$set", Value: bson.D{{Key: oplogstore.LeaseFieldRenewedAt, Value: bson.DateTime(0)}}}})
	if err != nil {
		return fmt.Errorf("releasing the lease: %w", err)
	}
	return nil
}

// holds tells whether this instance still holds the source's lease at epoch, with
// nothing else under way: no de-registration, and no act unless acting.
func (ls *leases) holds(ctx context.Context, source string, epoch int64, acting bool) (bool, error) {
	l, _, err := ls.read(ctx, source)
	if err != nil || l == nil {
		return false, err
	}
	return l.Epoch == epoch && l.Holder.ID == ls.me.ID && l.Deregistered == nil && (l.Wiping == nil || acting), nil
}

// finishAct ends the act recorded in the lease at epoch and releases it: after a
// de-registration (dereg not nil) the source is marked de-registered; what the lease
// knew of the wiped store (its position, foreign writes) is forgotten.
func (ls *leases) finishAct(ctx context.Context, source string, epoch int64, dereg *deregistration) error {
	set := bson.D{{Key: oplogstore.LeaseFieldRenewedAt, Value: bson.DateTime(0)}}
	if dereg != nil {
		set = append(set, bson.E{Key: oplogstore.LeaseFieldDeregistered, Value: dereg})
	}
	res, err := ls.coll.UpdateOne(ctx, ls.mine(source, epoch), bson.D{
		{Key: "$set", Value: set},
		{Key: "$unset", Value: bson.D{{Key: oplogstore.LeaseFieldWiping, Value: ""}, {Key: oplogstore.LeaseFieldPosition, Value: ""}, {Key: oplogstore.LeaseFieldForeign, Value: ""}}},
	})
	switch {
	case err != nil:
		return fmt.Errorf("recording the end of the reset or de-registration in the lease: %w", err)
	case res.MatchedCount == 0:
		return errLeaseLost
	}
	return nil
}

// describeHolder says who holds a lease, for logs and errors.
func describeHolder(l *lease, now time.Time) string {
	who := "collector " + l.Holder.String()
	if l.legacy {
		who = "an earlier collector, " + l.Holder.String() + ", whose lease is in the metadata database"
	}
	return fmt.Sprintf("%s, lease renewed %s ago", who, now.Sub(l.RenewedAt.Time()).Round(time.Second))
}

// newUUID is a random UUID in its text form: an id that no other process makes, with no
// coordination (a collector instance's, a gap record's).
func newUUID() string { return uuid.NewString() }
