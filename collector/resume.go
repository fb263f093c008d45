package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Resume: capture a source again from a time its oplog still holds, keeping the stored
// history, after its saved position was lost (error_resume_token_lost), or to skip
// ahead. It can skip events, so it is a destructive act, taken through the one path of
// resets (act, in wipe.go): the lease taken for it fences out every earlier holder.
// The stretch between the saved position and the new start is recorded as a gap with
// both ends, so range and replay see exactly what is missing; the token document then
// holds no token but the time to start at (TokenFieldStartAt), and the next holder
// opens the change stream there with startAtOperationTime, which includes the events
// of that very time.

// ResumeEarliest asks resume for the oldest event the source's oplog still holds.
const ResumeEarliest = "earliest"

// ErrBadResumePoint is a resume's from that does not parse.
var ErrBadResumePoint = errors.New("not a point to resume from")

// ErrNotHeld is a time the source's oplog does not hold: gone, or not come yet.
var ErrNotHeld = errors.New("the source's oplog does not hold that time")

// resumeFrom is where a resume was asked to start: the oldest event the source holds,
// or a cluster time.
type resumeFrom struct {
	earliest bool
	at       bson.Timestamp
	given    string
}

// parseResumeFrom reads "earliest", a timestamp "seconds,increment" (that operation
// and those after it), or an RFC 3339 time in whole seconds (the start of that
// second: all its operations are captured).
func parseResumeFrom(s string) (resumeFrom, error) {
	s = strings.TrimSpace(s)
	if s == ResumeEarliest {
		return resumeFrom{earliest: true, given: s}, nil
	}
	if s == "" {
		return resumeFrom{}, fmt.Errorf("%w: give earliest (the oldest event the source still holds), an RFC 3339 time or a timestamp seconds,increment", ErrBadResumePoint)
	}
	at, err := oplogstore.ParseTime(s)
	if err != nil {
		return resumeFrom{}, fmt.Errorf("%w: %v; or earliest", ErrBadResumePoint, err)
	}
	if !strings.Contains(s, ",") {
		at.I = 0 // ParseTime gives a second's end; a resume starts at its beginning
	}
	return resumeFrom{at: at, given: s}, nil
}

// resumePlan is where a resume starts capture again, checked against the source.
type resumePlan struct {
	from     string
	startAt  bson.Timestamp
	identity clusterIdentity // the source's: the store's history must be from it
}

// planResume reads the source's oplog (on every shard of a sharded source) and
// refuses a start it does not hold: before its oldest entry (on a sharded source, the
// newest of the shards' oldest), or after its newest.
func planResume(ctx context.Context, client *mongo.Client, reader *oplogReader, from resumeFrom) (resumePlan, error) {
	edges, err := reader.read(ctx, true)
	if err != nil {
		return resumePlan{}, fmt.Errorf("reading the source's oplog, to see where it starts: %w", err)
	}
	oldest, newest := binding(edges)
	where := ""
	for _, e := range edges {
		if e.shard != "" && e.oldest == oldest {
			where = " (shard " + e.shard + ")"
		}
	}
	plan := resumePlan{from: from.given, startAt: from.at}
	if from.earliest {
		plan.startAt = oldest
	}
	switch {
	case plan.startAt.Before(oldest):
		return resumePlan{}, fmt.Errorf("%w: %s is before the oldest entry the source's oplog still holds, %s%s: the events of that time are gone; resume from a later time, or from earliest",
			ErrNotHeld, oplogstore.FormatTS(plan.startAt), oplogstore.FormatTS(oldest), where)
	case plan.startAt.After(newest):
		return resumePlan{}, fmt.Errorf("%w: %s is after the newest entry of the source's oplog, %s: give a time that has passed", ErrNotHeld, oplogstore.FormatTS(plan.startAt), oplogstore.FormatTS(newest))
	}
	if plan.identity, err = identify(ctx, client); err != nil {
		return resumePlan{}, err
	}
	return plan, nil
}

// Resumed tells what a resume did.
type Resumed struct {
	Source string `json:"source"`
	Action string `json:"action"`
	From   string `json:"from"` // as asked
	// StartAt is where capture starts again, with the events of that time.
	StartAt string `json:"start_at"`
	// SkippedAfter is the saved position the store had reached: the events after it
	// and before StartAt are not captured, recorded as a gap. Empty when none can be.
	SkippedAfter   string `json:"skipped_after,omitempty"`
	SkippedSeconds int64  `json:"skipped_seconds,omitempty"`
	// EventsKept is about how many events the store holds, kept.
	EventsKept int64 `json:"events_kept"`
}

// resumeSource records the resume in the store under the lease taken for it: the gap
// from the saved position to the start, both ends known, and the start in the token
// document, in one transaction fenced by the act's epoch. scope is the source's
// captured database, for the heartbeat.
func resumeSource(ctx context.Context, sh *shared, name, scope string, plan resumePlan, by Requester) (Resumed, error) {
	res := Resumed{Source: name, Action: "resume", From: plan.from, StartAt: oplogstore.FormatTS(plan.startAt)}
	store := newSourceStore(sh.storeDB, name)
	defer store.close(context.WithoutCancel(ctx))
	saved, err := store.loadToken(ctx)
	if err != nil {
		return res, err
	}
	if saved.Identity != nil && !saved.Identity.sameCluster(plan.identity) {
		return res, fmt.Errorf("%q: %w: the store's history was captured from %s, but the source's uri reaches %s; nothing was changed",
			name, errWrongCluster, saved.Identity, plan.identity)
	}
	a, err := beginAct(ctx, sh, name, scope, res.Action, by)
	if err != nil {
		return res, err
	}
	if saved, err = store.loadToken(ctx); err != nil { // again, under the lease
		return res, err
	}
	if res.EventsKept, err = store.count(ctx); err != nil {
		return res, err
	}
	after := saved.ClusterTime
	if after.IsZero() { // no position saved: the store holds nothing proven after its newest event
		if after, _, err = store.newest(ctx); err != nil {
			return res, err
		}
	}
	skipped := !after.IsZero() && following(after).Before(plan.startAt)
	if skipped {
		res.SkippedAfter = oplogstore.FormatTS(after)
		res.SkippedSeconds = int64(plan.startAt.T) - int64(after.T)
	}
	detail := fmt.Sprintf("resumed by %s from %s: capture started again at %s", by, plan.from, oplogstore.FormatTS(plan.startAt))
	if err := store.resumeAt(ctx, a.epoch, plan.startAt, after, skipped, detail); err != nil {
		return res, err
	}
	if err := sh.leases.finishAct(ctx, name, a.epoch, nil); err != nil {
		return res, err
	}
	a.report(ctx, stateStopped)
	return res, nil
}

// resumeAt records, fenced by epoch, that capture starts again at startAt: the open
// gaps (a lost resume token's) end there, a gap from after to startAt is recorded if
// skipped and no open gap covers it, and the token document holds startAt instead of
// a token, with the moment before it as its cluster time.
func (s *sourceStore) resumeAt(ctx context.Context, epoch int64, startAt, after bson.Timestamp, skipped bool, detail string) error {
	return s.fenced(ctx, epoch, nil, func(ctx context.Context) error {
		cursor, err := s.gaps.Find(ctx, bson.D{{Key: "before", Value: bson.D{{Key: "$exists", Value: false}}}})
		if err != nil {
			return fmt.Errorf("reading the open gaps: %w", err)
		}
		var open []oplogstore.Gap
		if err := cursor.All(ctx, &open); err != nil {
			return fmt.Errorf("reading the open gaps: %w", err)
		}
		covered := false
		for _, g := range open {
			before := startAt
			if !before.After(g.After) {
				before = following(g.After) // nothing was skipped after it
			}
			covered = covered || !after.Before(g.After)
			if _, err := s.gaps.UpdateOne(ctx, bson.D{{Key: oplogstore.FieldID, Value: g.ID}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "before", Value: before}, {Key: "detail", Value: joinDetail(g.Detail, detail)}}}}); err != nil {
				return fmt.Errorf("closing a gap at the resume: %w", err)
			}
		}
		if skipped && !covered {
			gap := oplogstore.Gap{ID: newUUID(), Reason: oplogstore.GapResumed, After: after, Before: startAt,
				DetectedAt: bson.NewDateTimeFromTime(time.Now()), Detail: detail}
			if _, err := s.gaps.InsertOne(ctx, gap); err != nil {
				return fmt.Errorf("recording the gap a resume skips: %w", err)
			}
		}
		_, err = s.tokens.UpdateOne(ctx, bson.D{{Key: oplogstore.FieldID, Value: oplogstore.TokenID(s.name)}}, bson.D{
			{Key: "$set", Value: bson.D{
				{Key: oplogstore.TokenFieldStartAt, Value: startAt},
				{Key: oplogstore.TokenFieldClusterTime, Value: preceding(startAt)},
				{Key: oplogstore.TokenFieldUpdatedAt, Value: bson.NewDateTimeFromTime(time.Now())},
			}},
			{Key: "$unset", Value: bson.D{{Key: oplogstore.TokenFieldToken, Value: ""}, {Key: oplogstore.TokenFieldStartAfter, Value: ""}}},
		}, options.UpdateOne().SetUpsert(true))
		if err != nil {
			return fmt.Errorf("saving where capture starts again: %w", err)
		}
		return nil
	})
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// resumePoint is where a resume asked capture to start, when the token document holds
// that instead of a token.
func (d tokenDocument) resumePoint() (position, bool) {
	if d.Token != nil || d.StartAt.IsZero() {
		return position{}, false
	}
	return position{ClusterTime: d.StartAt}, true
}

// takeResumeStart saves, as update says, the first position after a resume over the
// document that held its start: this holder read it, so it is no foreign write.
func (s *sourceStore) takeResumeStart(ctx context.Context, update bson.D) (bool, error) {
	res, err := s.tokens.UpdateOne(ctx, bson.D{
		{Key: oplogstore.FieldID, Value: oplogstore.TokenID(s.name)},
		{Key: oplogstore.TokenFieldToken, Value: bson.D{{Key: "$exists", Value: false}}},
		{Key: oplogstore.TokenFieldStartAt, Value: bson.D{{Key: "$exists", Value: true}}},
	}, append(update, bson.E{Key: "$unset", Value: bson.D{{Key: oplogstore.TokenFieldStartAt, Value: ""}}}))
	if err != nil {
		return false, fmt.Errorf("saving the resume token: %w", err)
	}
	return res.MatchedCount == 1, nil
}

// following is the cluster time right after ts; preceding, the one right before.
func following(ts bson.Timestamp) bson.Timestamp {
	if ts.I == math.MaxUint32 {
		return bson.Timestamp{T: ts.T + 1}
	}
	return bson.Timestamp{T: ts.T, I: ts.I + 1}
}

func preceding(ts bson.Timestamp) bson.Timestamp {
	if ts.I == 0 {
		return bson.Timestamp{T: ts.T - 1, I: math.MaxUint32}
	}
	return bson.Timestamp{T: ts.T, I: ts.I - 1}
}
