package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// clock hands out cluster times: BSON Timestamps of (unix seconds, counter),
// strictly increasing, like oplog optimes. Guarded by Server.mu.
type clock struct {
	last bson.Timestamp
	wall time.Time // when last was handed out: the wall time of its oplog entry
}

func (c *clock) next() bson.Timestamp {
	c.wall = time.Now()
	now := uint32(c.wall.Unix())
	if now > c.last.T {
		c.last = bson.Timestamp{T: now, I: 1}
	} else {
		c.last.I++
	}
	return c.last
}

func (c *clock) now() bson.Timestamp { return c.last }

// tickLocked advances the cluster time and wakes change-stream waiters.
// Every write calls it through the change log; the no-op writer calls it
// when idle. Requires s.mu.
func (s *Server) tickLocked() bson.Timestamp {
	ts := s.clock.next()
	s.notifyLocked()
	return ts
}

// notifyLocked wakes the commands waiting for a change: change-stream
// getMores, and writes waiting for a transaction to end. Requires s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// noop is the periodic no-op write of an idle primary (the real server writes
// one every 10 s, see periodicNoopIntervalSecs): it moves the cluster time so
// that change streams' postBatchResumeToken advances on a quiet cluster.
func (s *Server) noop() {
	s.mu.Lock()
	s.tickLocked()
	s.mu.Unlock()
}

func tsLess(a, b bson.Timestamp) bool { return a.T < b.T || (a.T == b.T && a.I < b.I) }

// clusterTimeDoc is the gossiped $clusterTime. Signatures are zero: the fake
// has no keys, and drivers only echo them back.
func clusterTimeDoc(ts bson.Timestamp) bson.D {
	return bson.D{
		{Key: "clusterTime", Value: ts},
		{Key: "signature", Value: bson.D{
			{Key: "hash", Value: bson.Binary{Subtype: 0, Data: make([]byte, 20)}},
			{Key: "keyId", Value: int64(0)},
		}},
	}
}
