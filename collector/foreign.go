package collector

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/go-kit/log/level"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Writes into a source's store by a process that holds no lease: a collector of the
// old layout (package oplogstore) restarted by its manager, or a second deployment of
// an earlier version. Fencing cannot stop them, since they do not check the lease;
// they are found and shown instead: documents with an ObjectId _id (this collector's
// are strings) inserted since the lease was taken, and token saves this holder did not
// make (found when it saves its own, store.go).

// Kinds of oplog_capture_foreign_writes_total.
const (
	foreignDocument = "document"
	foreignPosition = "position"
)

// foreignWriterHold is how long a source stays in state foreign_writer after the last
// foreign write found: the old tool writes only when the source has events, so a quiet
// while does not mean it stopped.
const foreignWriterHold = 10 * time.Minute

// foreignWrites records n writes of kind found, and puts the source in state
// foreign_writer.
func (s *source) foreignWrites(kind string, n int64) {
	s.metrics.foreign.WithLabelValues(s.cfg.Name, kind).Add(float64(n))
	if s.state.foreignFound(time.Now()) {
		level.Warn(s.logger).Log("msg", "A process that holds no lease writes into this source's store: another collector, or the old tool restarted by its manager; stop it (docs/runbook.md, OplogCaptureForeignWriter)",
			"kind", kind, "writes", n)
	}
	s.state.derive(nil)
}

// checkForeignDocuments looks, while the source holds its lease, for documents with an
// ObjectId _id inserted since the last look (since the lease was taken, at the first:
// the greatest ObjectId then stored, or one of now).
func (s *source) checkForeignDocuments(ctx context.Context) {
	epoch, holds, after := s.tenure.foreignChecked()
	if !holds {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storeAttemptTimeout)
	defer cancel()
	if after.IsZero() {
		stored, err := s.store.greatestObjectID(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: bson.ObjectID{}}}}})
		if err != nil {
			return
		}
		after = objectIDAt(time.Now())
		if bytes.Compare(stored[:], after[:]) > 0 {
			after = stored
		}
	} else {
		n, newest, err := s.store.foreignDocuments(ctx, after)
		if err != nil || n == 0 {
			return
		}
		after = newest
		if err := s.store.recordForeign(ctx, epoch, n, 0); err != nil {
			level.Debug(s.logger).Log("msg", "Writes of a process that holds no lease not recorded in the lease", "err", describe(err))
		}
		s.foreignWrites(foreignDocument, n)
	}
	s.tenure.checkedForeign(epoch, after)
}

// objectIDAt is the least ObjectId of the second of t.
func objectIDAt(t time.Time) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[:4], uint32(t.Unix()))
	return id
}
