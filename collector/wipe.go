package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// ErrUnknownSource is returned for a name the running config does not capture.
var ErrUnknownSource = errors.New("no such source in the running configuration")

// ErrNotHolder is returned for a command on a source that another collector captures.
var ErrNotHolder = errors.New("another collector holds this source's lease")

// Requester is who asked for a destructive command, for the log and the gap record.
type Requester struct {
	User       string // the authenticated user: basic auth, or a client certificate's subject
	RemoteAddr string
	Via        string // "api" or "offline"
}

func (r Requester) String() string {
	who := r.User
	if who == "" {
		who = "an unauthenticated client"
	}
	if r.RemoteAddr != "" {
		who += " from " + r.RemoteAddr
	}
	return who + " (" + r.Via + ")"
}

// Wiped tells what a reset or a de-registration deleted.
type Wiped struct {
	Source        string `json:"source"`
	Action        string `json:"action"`
	EventsDeleted int64  `json:"events_deleted"`
}

// act is a destructive act on a source (a reset, a de-registration, a resume) under
// way: the actor holds the source's lease for it, at epoch. Taking it moves the epoch
// on: from then the store refuses every write of an earlier holder, however long it
// was paused or cut off, so what the act does stays done. The lease says the act is
// under way until finishAct, so no collector captures the source meanwhile, even if
// the act outlasts the lease's TTL; an act that was interrupted is finished by running
// it again.
type act struct {
	sh          *shared
	name, scope string // scope is the source's captured database, for the heartbeat
	epoch       int64
}

// beginAct takes the source's lease for action, refusing while another live collector
// holds it, and reports the act in the heartbeat document.
func beginAct(ctx context.Context, sh *shared, name, scope, action string, by Requester) (*act, error) {
	epoch, held, err := sh.leases.acquire(ctx, name, &wiping{Action: action, By: by.String(), Since: bson.NewDateTimeFromTime(time.Now())})
	switch {
	case err != nil:
		return nil, err
	case held != nil:
		return nil, fmt.Errorf("%q: %w: %s", name, ErrNotHolder, describeHolder(held, time.Now()))
	case epoch == 0:
		return nil, fmt.Errorf("%q: %w: another process took it at the same moment; try again", name, ErrNotHolder)
	}
	a := &act{sh: sh, name: name, scope: scope, epoch: epoch}
	a.report(ctx, stateResettingOplogStore)
	return a, nil
}

// report writes the act's state to the heartbeat document.
func (a *act) report(ctx context.Context, status string) {
	acting := func(ctx context.Context) (bool, error) { return a.sh.leases.holds(ctx, a.name, a.epoch, true) }
	_ = a.sh.beats.report(ctx, a.name, hbdoc.Report{Status: status, Scope: a.scope, PID: holding(status != stateStopped),
		Holder: &a.sh.leases.me, LeaseEpoch: a.epoch}, acting)
}

// wipeSource resets or de-registers a source: the one path of the admin API and of the
// offline commands. A reset drops the events and the token and records the gap (its
// end is set by whoever captures next); a de-registration drops everything, marks the
// lease de-registered and deletes the metadata document.
func wipeSource(ctx context.Context, sh *shared, name, scope string, by Requester, deregister bool) (Wiped, error) {
	wiped := Wiped{Source: name, Action: "reset"}
	if deregister {
		wiped.Action = "deregister"
	}
	a, err := beginAct(ctx, sh, name, scope, wiped.Action, by)
	if err != nil {
		return wiped, err
	}
	store := newSourceStore(sh.storeDB, name)
	defer store.close(context.WithoutCancel(ctx))
	saved, err := store.loadToken(ctx)
	if err != nil {
		return wiped, err
	}
	if wiped.EventsDeleted, err = store.count(ctx); err != nil {
		return wiped, err
	}
	if err := store.wipe(ctx, deregister); err != nil {
		return wiped, err
	}
	if deregister {
		if err := sh.leases.finishAct(ctx, name, a.epoch, &deregistration{At: bson.NewDateTimeFromTime(time.Now()), By: by.String()}); err != nil {
			return wiped, err
		}
		return wiped, sh.beats.remove(ctx, name)
	}
	gap := oplogstore.Gap{Reason: oplogstore.GapReset, EventsDeleted: wiped.EventsDeleted, After: saved.ClusterTime,
		Detail: fmt.Sprintf("reset by %s: %d events deleted, capture started again from then", by, wiped.EventsDeleted)}
	if err := store.recordGap(ctx, a.epoch, gap); err != nil {
		return wiped, err
	}
	if err := sh.leases.finishAct(ctx, name, a.epoch, nil); err != nil {
		return wiped, err
	}
	a.report(ctx, stateStopped)
	return wiped, nil
}
