package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// errInvalidated ends a stream after its invalidate event: it is reopened at once with
// startAfter, the only option that can pass an invalidate.
var errInvalidated = errors.New("change stream invalidated")

// reader reads a source's change stream into a capture's buffer, reopening it after
// failures, for as long as the capture lasts.
type reader struct {
	// What it reads: the source cluster, as the settings say.
	client   *mongo.Client
	settings readSettings
	features serverFeatures // the source's, once read
	// fragments finds, in the store, the first fragment of a split event when a stream
	// opens inside it.
	fragments fragmentFinder
	// What it reports.
	report readerReports
}

// readSettings say what a reader reads and how it paces itself.
type readSettings struct {
	name         string // the source's
	database     string // empty: the whole cluster
	fullDocument string
	// ownDatabases are the store's and the metadata's databases, never captured.
	ownDatabases       []string
	batch              config.Batch
	checkpointInterval time.Duration // how often a quiet source's post-batch token is saved
	maxBackoff         time.Duration
}

// fragmentFinder is the store as a reader sees it.
type fragmentFinder interface {
	firstFragmentType(ctx context.Context, ts bson.Timestamp, laterData string) (string, error)
}

// readerReports are where a reader tells how reading goes.
type readerReports struct {
	opened    func()             // a stream is open: the source answers
	source    *health            // the source's side of the capture: failures to read
	tokenLost prometheus.Counter // oplog_capture_errors_total{kind="resume_token_lost"}
	logger    log.Logger
}

// loop keeps a change stream open from pos, reopening it after failures with capped
// exponential backoff and jitter, for ever. It returns the error when the resume token
// is lost: the source cannot go on without a reset.
func (r *reader) loop(ctx context.Context, pos position, buf *buffer) (lost error) {
	attempt := 0
	for {
		opened, err := r.readStream(ctx, &pos, buf)
		if ctx.Err() != nil {
			return nil
		}
		if opened {
			attempt = 0
		}
		switch {
		case errors.Is(err, errInvalidated):
			level.Info(r.report.logger).Log("msg", "Change stream invalidated; reopening after it with startAfter")
			continue
		case mongoerr.ResumeTokenLost(err):
			r.report.tokenLost.Inc()
			return err
		}
		r.report.source.failed(err)
		if !sleep(ctx, backoff(attempt, r.settings.maxBackoff)) {
			return nil
		}
		attempt++
	}
}

// readStream opens the change stream at pos and reads it into buf until it fails; pos
// follows what was read, so a reopen continues where reading stopped. It only ever
// moves to the end of an event that was not split (or to a post-batch token): never to
// a fragment's token, from which the server renders the event again (item.fragment).
func (r *reader) readStream(ctx context.Context, pos *position, buf *buffer) (opened bool, err error) {
	cs, err := r.open(ctx, *pos)
	if err != nil {
		return false, err
	}
	defer closeStream(ctx, cs)
	r.report.opened()
	if err := r.begin(ctx, cs, pos, buf); err != nil {
		return true, err
	}
	defer buf.publish() // what was read goes to the writer, however reading ends
	buf.publish()
	st := &streamReading{cs: cs, buf: buf, pos: pos, saved: pos.Token, lastCheckpoint: time.Now(), lastRead: time.Now()}
	for {
		if cs.TryNext(ctx) {
			err = r.takeEvent(ctx, st)
		} else {
			err = r.takeQuiet(ctx, st)
		}
		if err != nil {
			return true, st.failure(err)
		}
	}
}

// failure is the error a stream failed with, as the reader acts on it. Inside a split
// event, or just after one, the driver resumes a stream that failed from a fragment's
// token, where the server renders the event again: one that no longer splits that far
// fails the stream (280). That says nothing of the reader's own position, before the
// event: the stream is opened there again. Were that position gone, opening it would
// tell.
func (st *streamReading) failure(err error) error {
	if (st.midEvent || st.lastFragment != nil) && mongoerr.ResumeTokenLost(err) {
		return fmt.Errorf("%w (%s)", errSplitBroken, describe(err))
	}
	return err
}

// streamReading is what reading one open stream keeps from one answer to the next.
type streamReading struct {
	cs    *mongo.ChangeStream
	buf   *buffer
	pos   *position // the end of the last whole event read
	split splitState
	// midEvent is set while a split event is read: no position in it is resumable.
	// lastFragment is the token of a split event's last fragment when it is the last
	// thing read: not resumable either (item.fragment), as a post-batch token.
	midEvent     bool
	lastFragment bson.Raw
	// saved is the newest token the writer saves or has saved: an event's is saved with
	// its batch, a post-batch token every checkpoint_interval, lastCheckpoint being when.
	saved          bson.Raw
	lastCheckpoint time.Time
	// read counts the events of the read in progress; lastRead is when the last one ended.
	read     int
	lastRead time.Time
}

// begin tells the writer where the stream starts: at a first start, where "now" is,
// saved at once so that a restart resumes there; else that what the store holds after
// pos is to be dropped, since it is read again now.
func (r *reader) begin(ctx context.Context, cs *mongo.ChangeStream, pos *position, buf *buffer) error {
	if pos.Token != nil {
		return buf.push(ctx, item{pos: *pos, restart: true})
	}
	if tok := cs.ResumeToken(); tok != nil {
		return pushPosition(ctx, pos, buf, tok, time.Now(), false)
	}
	return nil
}

// takeEvent pushes the event the stream holds. At the end of a read it hands the
// read's events to the writer together, and waits before reading again as pause says.
func (r *reader) takeEvent(ctx context.Context, st *streamReading) error {
	it, err := toItem(r.settings.name, st.cs.Current, time.Now(), &st.split)
	if orphan, ok := errors.AsType[*orphanFragment](err); ok {
		st.split = r.recoverSplit(ctx, orphan)
		it, err = toItem(r.settings.name, st.cs.Current, time.Now(), &st.split)
	}
	if err != nil {
		return err
	}
	if err := st.buf.push(ctx, it); err != nil {
		return err
	}
	st.midEvent, st.lastFragment = it.partial, nil
	switch {
	case it.checkpoint():
		*st.pos, st.saved = it.pos, it.pos.Token
	case it.fragment && !it.partial:
		st.lastFragment = it.pos.Token
	}
	if it.pos.StartAfter {
		return errInvalidated
	}
	if st.read++; st.cs.RemainingBatchLength() > 0 {
		return nil
	}
	st.buf.publish()
	now := time.Now()
	wait := pause(st.read, now.Sub(st.lastRead), r.settings.batch)
	st.read, st.lastRead = 0, now
	if wait > 0 && !sleep(ctx, wait) {
		return ctx.Err()
	}
	return nil
}

// takeQuiet handles an answer without an event: the source had nothing more when it
// answered, or the stream failed. The answer's token is saved every
// checkpoint_interval; in between, it only moves the checkpoint once what was read
// before it is written.
func (r *reader) takeQuiet(ctx context.Context, st *streamReading) error {
	st.lastRead = time.Now()
	if err := st.cs.Err(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if st.cs.ID() == 0 {
		return errors.New("the server closed the change stream")
	}
	tok := st.cs.ResumeToken()
	if tok == nil || st.midEvent || bytes.Equal(tok, st.lastFragment) {
		return nil
	}
	answered := time.Now()
	save := !bytes.Equal(tok, st.saved) && answered.Sub(st.lastCheckpoint) >= r.settings.checkpointInterval
	if err := pushPosition(ctx, st.pos, st.buf, tok, answered, !save); err != nil {
		return err
	}
	if save {
		st.saved, st.lastCheckpoint = st.pos.Token, answered
	}
	return nil
}

// recoverSplit finds what the first fragment of a split event carried (its type), when
// the stream was opened inside the event: that fragment is in the store, written before
// the position that led here was saved. Unknown, the type stays empty; the time is in
// the fragment's token either way.
func (r *reader) recoverSplit(ctx context.Context, orphan *orphanFragment) splitState {
	opType, err := r.fragments.firstFragmentType(ctx, orphan.clusterTime, orphan.data)
	if err != nil {
		level.Warn(r.report.logger).Log("msg", "The first fragment of a split event read from the middle was not found in the store; its later fragments are stored without the event's type",
			"cluster_time", tsTime(orphan.clusterTime), "err", describe(err))
	}
	return splitState{opType: opType, clusterTime: orphan.clusterTime}
}

// pushPosition hands a post-batch token, which the source answered at answered, to the
// writer, for once everything before it is written: to save, or (progressOnly) to show
// how far the store holds every event. The answer's own times ($clusterTime,
// operationTime) tell only the second: this host's clock says it to the millisecond.
func pushPosition(ctx context.Context, pos *position, buf *buffer, token bson.Raw, answered time.Time, progressOnly bool) error {
	p := *pos
	if !bytes.Equal(token, pos.Token) {
		ts, _ := oplogstore.TokenTime(token)
		p = position{Token: bytes.Clone(token), ClusterTime: ts}
	}
	p.Wall = answered
	if err := buf.push(ctx, item{pos: p, progressOnly: progressOnly}); err != nil {
		return err
	}
	buf.publish()
	*pos = p
	return nil
}

// pause is how long to wait before reading again after a read that brought n events,
// gathered over the time given. Each read that brings events is one store write, a
// transaction of four round trips, and each read a round trip of its own: read at every
// write of a source that writes slowly, they would cost more than its events. So reading
// waits about as long as batch.min_events take to come at the pace the read saw, at most
// batch.max_wait, and then brings them in one read. A full read (a backlog) and an empty
// one (the read waited on the source already) do not wait; and an event after a quiet
// spell is read, and written, at once: the read waiting on the source returns with it.
func pause(n int, over time.Duration, b config.Batch) time.Duration {
	if n == 0 || n >= b.MaxEvents {
		return 0
	}
	if d := float64(over) * float64(b.MinEvents) / float64(n); d < float64(b.MaxWait) {
		return time.Duration(d)
	}
	return b.MaxWait
}

// open starts the change stream on the cluster, or on the configured database, once
// it knows what the server supports.
func (r *reader) open(ctx context.Context, pos position) (*mongo.ChangeStream, error) {
	if !r.features.known {
		features, err := detectFeatures(ctx, r.client)
		if err != nil {
			return nil, err
		}
		r.features = features
	}
	pipeline := mongo.Pipeline{{{Key: "$match", Value: bson.D{
		{Key: "operationType", Value: bson.D{{Key: "$in", Value: capturedOperations}}},
		// The collector's own writes, when the store or the metadata database is on a
		// captured cluster: capturing them would feed back for ever.
		{Key: "ns.db", Value: bson.D{{Key: "$nin", Value: r.settings.ownDatabases}}},
	}}}}
	if r.features.splitLargeEvents {
		pipeline = append(pipeline, bson.D{{Key: "$changeStreamSplitLargeEvent", Value: bson.D{}}}) // must be last
	}
	opts := options.ChangeStream().
		SetFullDocument(options.FullDocument(r.settings.fullDocument)).
		SetMaxAwaitTime(maxAwait).
		SetBatchSize(int32(r.settings.batch.MaxEvents)) // a getMore fills about one store batch
	if r.features.showExpandedEvents {
		opts.SetShowExpandedEvents(true)
	}
	switch {
	case pos.Token != nil && pos.StartAfter:
		opts.SetStartAfter(pos.Token)
	case pos.Token != nil:
		opts.SetResumeAfter(pos.Token)
	case !pos.ClusterTime.IsZero():
		opts.SetStartAtOperationTime(&pos.ClusterTime) // a position carried as a time only
	}
	if r.settings.database == "" {
		return r.client.Watch(ctx, pipeline, opts)
	}
	return r.client.Database(r.settings.database).Watch(ctx, pipeline, opts)
}

// closeStream closes a change stream, even once ctx has ended.
func closeStream(ctx context.Context, cs *mongo.ChangeStream) {
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = cs.Close(closeCtx)
}
