package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// A base backup restored without the source's collection UUIDs (a plain mongorestore)
// leaves replay one way to tell which source collection a target collection holds: its
// name. A name names different collections over time when the range between --from and
// --to renames a collection onto it or away from it, drops it and makes it again, or
// replaces it ($out renames a new collection over it): then the target's collection of
// that name holds whichever collection had the name at the base's time, b, which replay
// does not know. history is what the range's collection events say about which source
// collection held each name when; resolveBase uses it to find b's holders, or refuses.

// collID identifies a source collection within a replay's range: "u" and its UUID, or,
// for events without one (the old collector's, and views'), "n" and the name it held
// when the range began, or "c<step>:" and the name it was made at.
type collID string

func uuidID(uuid []byte) collID { return collID("u" + string(uuid)) }

func (id collID) uuid() []byte {
	if strings.HasPrefix(string(id), "u") {
		return []byte(id[1:])
	}
	return nil
}

// residence is a stretch of steps during which a collection held a name.
type residence struct {
	id collID
	// from is the step that brought it (0: it held the name when the range began); to
	// the one that took it away (-1: it still holds it at --to).
	from, to int
}

func (r residence) at(step int) bool { return r.from <= step && (r.to < 0 || step < r.to) }

// history is the names of the source's collections over a replay's range. Step k is the
// state after the range's k-th collection event (create, rename, drop, dropDatabase);
// step 0, the state at the range's start.
type history struct {
	events []oplogstore.Event // the collection events, step k's is events[k-1]
	held   map[string][]residence
	// current and where are the state after the events added so far.
	current map[string]collID
	where   map[collID]string
	created map[collID]bool
	// dropped are the collections dropped within the range (or replaced by a rename
	// with dropTarget): at that name, at that time.
	dropped   map[collID]string
	droppedAt map[collID]bson.Timestamp
	// indexDrops are the indexes dropped within the range, by collection.
	indexDrops map[collID][]indexDrop
	// uncertain names: the events do not say for sure what held them (a rename onto a
	// name by an event without dropTarget information, or events that disagree).
	uncertain map[string]bool
	// capped are the UUIDs of the capped collections the range makes.
	capped [][]byte
}

type indexDrop struct {
	spec bson.Raw
	at   bson.Timestamp
}

var collectionEventTypes = bson.A{"create", "rename", "drop", "dropDatabase", "dropIndexes"}

// readHistory reads the collection events of the range from the store.
func readHistory(ctx context.Context, store *mongo.Database, source string, after *bson.Timestamp, upTo bson.Timestamp) (*history, error) {
	h := newHistory()
	err := forEachEvent(ctx, store, source, after, upTo, bson.D{{Key: oplogstore.FieldOpType, Value: bson.D{{Key: "$in", Value: collectionEventTypes}}}},
		func(e *oplogstore.Event) {
			if e.OpType == "dropIndexes" {
				h.addIndexDrops(e)
				return
			}
			h.add(e)
		})
	if err != nil {
		return nil, fmt.Errorf("reading the range's collection events: %w", err)
	}
	return h, nil
}

// forEachEvent calls fn with each event of the range that matches where (conditions on
// the store's fields), in stream order.
func forEachEvent(ctx context.Context, store *mongo.Database, source string, after *bson.Timestamp, upTo bson.Timestamp, where bson.D, fn func(*oplogstore.Event)) error {
	reader, err := oplogstore.ReadEventsWhere(ctx, store, source, after, upTo, where)
	if err != nil {
		return err
	}
	defer reader.Close(context.WithoutCancel(ctx))
	for {
		e, err := reader.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		fn(&e)
	}
}

// addIndexDrops notes the indexes a dropIndexes event drops (of a collection with a
// UUID: the checks that use them go by UUID).
func (h *history) addIndexDrops(e *oplogstore.Event) {
	if e.CollectionUUID == nil {
		return
	}
	specs, _ := indexSpecs(e)
	for _, spec := range specs {
		id := uuidID(e.CollectionUUID)
		h.indexDrops[id] = append(h.indexDrops[id], indexDrop{spec: spec, at: e.TS})
	}
}

// droppedAfter tells whether the range drops collection id after ts.
func (h *history) droppedAfter(id collID, ts bson.Timestamp) bool {
	at, ok := h.droppedAt[id]
	return ok && !at.Before(ts)
}

// indexDroppedAfter tells whether the range drops index ix of collection id, or the
// collection, after ts.
func (h *history) indexDroppedAfter(id collID, ix indexRef, ts bson.Timestamp) bool {
	for _, d := range h.indexDrops[id] {
		if ix.names(d.spec) && !d.at.Before(ts) {
			return true
		}
	}
	return h.droppedAfter(id, ts)
}

// viewMadeAfter tells whether the range makes a view in database db after ts: a server
// makes db's system.views with the first view and keeps it when the last one goes.
func (h *history) viewMadeAfter(db string, ts bson.Timestamp) bool {
	for i := range h.events {
		e := &h.events[i]
		if _, isView := e.OperationDescription.Lookup("viewOn").StringValueOK(); isView && e.OpType == "create" && e.DB == db && e.TS.After(ts) {
			return true
		}
	}
	return false
}

func newHistory() *history {
	return &history{held: map[string][]residence{}, current: map[string]collID{}, where: map[collID]string{},
		created: map[collID]bool{}, dropped: map[collID]string{}, droppedAt: map[collID]bson.Timestamp{},
		indexDrops: map[collID][]indexDrop{}, uncertain: map[string]bool{}}
}

// add takes the next collection event, in stream order.
func (h *history) add(e *oplogstore.Event) {
	h.events = append(h.events, *e)
	step := len(h.events)
	ns := e.Namespace()
	switch e.OpType {
	case "create":
		id := collID("c" + strconv.Itoa(step) + ":" + ns)
		if e.CollectionUUID != nil {
			id = uuidID(e.CollectionUUID)
			if capped, _ := e.OperationDescription.Lookup("capped").BooleanOK(); capped {
				h.capped = append(h.capped, e.CollectionUUID)
			}
		}
		if h.current[ns] != "" {
			h.uncertain[ns] = true // made where another still was
			h.leave(ns, step)
		}
		h.arrive(ns, id, step)
		h.created[id] = true
	case "drop":
		id := h.holder(e, ns, step)
		h.leave(ns, step)
		h.drop(id, ns, e.TS)
	case "rename":
		to := renameTarget(e)
		if to == "" {
			return // refused when applied
		}
		id := h.holder(e, ns, step)
		_, replaced, hasDropTarget := e.OperationDescription.Lookup("dropTarget").BinaryOK()
		switch occupant := h.current[to]; {
		case occupant != "":
			if hasDropTarget && uuidID(replaced) != occupant && occupant.uuid() != nil {
				h.uncertain[to] = true
			}
			h.leave(to, step)
			h.drop(occupant, to, e.TS)
		case hasDropTarget:
			replacedID := uuidID(replaced)
			if len(h.held[to]) > 0 || h.where[replacedID] != "" {
				h.uncertain[to] = true
			}
			h.held[to] = append(h.held[to], residence{id: replacedID, from: 0, to: step})
			h.drop(replacedID, to, e.TS)
		case e.OperationDescription == nil && len(h.held[to]) == 0:
			// A rename without operationDescription (the old collector's): whether a
			// collection held the new name before is unknown.
			h.uncertain[to] = true
		}
		h.leave(ns, step)
		h.arrive(to, id, step)
	case "dropDatabase":
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for name := range h.current {
				if !yield(name) {
					return
				}
			}
		}) {
			if db, _, _ := strings.Cut(name, "."); db == e.DB {
				h.drop(h.current[name], name, e.TS)
				h.leave(name, step)
			}
		}
	}
}

// holder is the collection e is about, at ns: by its UUID, or, without one, whatever
// holds ns. One not seen before has held ns since the range began.
func (h *history) holder(e *oplogstore.Event, ns string, step int) collID {
	current := h.current[ns]
	id := current
	if e.CollectionUUID != nil {
		id = uuidID(e.CollectionUUID)
	} else if id == "" {
		id = collID("n" + ns)
	}
	switch {
	case current == id:
	case current == "" && len(h.held[ns]) == 0 && h.where[id] == "":
		h.held[ns] = []residence{{id: id, from: 0, to: -1}}
		h.current[ns], h.where[id] = id, ns
	case current != "" && current.uuid() == nil && id.uuid() != nil && strings.HasPrefix(string(current), "n"):
		// Events without a UUID named it before: the same collection.
		h.rename(current, id)
	default:
		h.uncertain[ns] = true
		if current != "" {
			h.leave(ns, step)
		}
		if old := h.where[id]; old != "" {
			h.leave(old, step)
		}
		h.arrive(ns, id, step)
	}
	return id
}

func (h *history) drop(id collID, ns string, at bson.Timestamp) {
	h.dropped[id], h.droppedAt[id] = ns, at
}

func (h *history) arrive(ns string, id collID, step int) {
	h.held[ns] = append(h.held[ns], residence{id: id, from: step, to: -1})
	h.current[ns], h.where[id] = id, ns
}

func (h *history) leave(ns string, step int) {
	id := h.current[ns]
	if id == "" {
		return
	}
	stays := h.held[ns]
	stays[len(stays)-1].to = step
	delete(h.current, ns)
	delete(h.where, id)
}

// rename gives the collection known as old the identity id, in every residence.
func (h *history) rename(old, id collID) {
	for ns, stays := range h.held {
		for i := range stays {
			if stays[i].id == old {
				h.held[ns][i].id = id
			}
		}
	}
	if ns, ok := h.where[old]; ok {
		delete(h.where, old)
		h.where[id], h.current[ns] = ns, id
	}
	if h.created[old] {
		delete(h.created, old)
		h.created[id] = true
	}
	if ns, ok := h.dropped[old]; ok {
		h.drop(id, ns, h.droppedAt[old])
		delete(h.dropped, old)
		delete(h.droppedAt, old)
	}
}

// holdersAt are the collections that held ns at some of steps (in order), in the order
// of the first step each held it at; "" where it held nothing.
func (h *history) holdersAt(ns string, steps []int) []collID {
	var out []collID
	for _, step := range steps {
		if id := h.holderAt(ns, step); !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// holderAt is what held ns at step, "" for nothing.
func (h *history) holderAt(ns string, step int) collID {
	for _, r := range h.held[ns] {
		if r.at(step) {
			return r.id
		}
	}
	return ""
}

// renameTarget is a rename event's new namespace, "" when it has none.
func renameTarget(e *oplogstore.Event) string {
	to := e.To
	if to == nil {
		to, _ = e.OperationDescription.Lookup("to").DocumentOK()
	}
	db, ok1 := to.Lookup("db").StringValueOK()
	coll, ok2 := to.Lookup("coll").StringValueOK()
	if !ok1 || !ok2 {
		return ""
	}
	return db + "." + coll
}

// describe says what the range's events did to ns, for a refusal.
func (h *history) describe(ns string) string {
	var parts []string
	for i := range h.events {
		e := &h.events[i]
		switch {
		case e.OpType == "rename" && renameTarget(e) == ns:
			parts = append(parts, fmt.Sprintf("%s renamed onto it at %s", e.Namespace(), oplogstore.FormatTS(e.TS)))
		case e.OpType == "rename" && e.Namespace() == ns:
			parts = append(parts, fmt.Sprintf("renamed to %s at %s", renameTarget(e), oplogstore.FormatTS(e.TS)))
		case e.Namespace() == ns || (e.OpType == "dropDatabase" && strings.HasPrefix(ns, e.DB+".")):
			parts = append(parts, fmt.Sprintf("%s at %s", e.OpType, oplogstore.FormatTS(e.TS)))
		}
	}
	if len(parts) > 4 {
		parts = append(parts[:4], fmt.Sprintf("and %d more", len(parts)-4))
	}
	return strings.Join(parts, ", ")
}

// lastChange is the time of the last event of the range that changed what holds ns.
func (h *history) lastChange(ns string) bson.Timestamp {
	var last bson.Timestamp
	for _, r := range h.held[ns] {
		for _, step := range []int{r.from, r.to} {
			if step > 0 && h.events[step-1].TS.After(last) {
				last = h.events[step-1].TS
			}
		}
	}
	return last
}

// stagingName is the collection a rename across databases copies into before it
// renames it onto the new name: tmp, five letters or digits, .renameCollection
// (mongodb/mongo jstests/change_streams/ddl_rename_cross_db.js).
var stagingName = regexp.MustCompile(`^tmp[a-zA-Z0-9]{5}\.renameCollection$`)

// unbuildable refuses a range with a rename across databases whose copy the store does
// not hold, when the target can be before it (from step earliest on): MongoDB copies
// the collection into a staging collection of the new database and renames that, and
// servers with SERVER-107688 leave the copy's events out of change streams, so the
// store has no event that made the staging collection, and replay nothing to rebuild
// the new collection from.
func (h *history) unbuildable(earliest int, selected selection) error {
	for i := range h.events {
		e := &h.events[i]
		step := i + 1
		if e.OpType != "rename" || step <= earliest || !stagingName.MatchString(e.Coll) {
			continue
		}
		to := renameTarget(e)
		db, coll, _ := strings.Cut(to, ".")
		if id := h.holderAt(e.Namespace(), step-1); h.created[id] || !selected.has(db, coll) {
			continue
		}
		return &Refusal{fmt.Sprintf("the range holds a rename across databases onto %s at %s, and the store has none of the copy it is made of: MongoDB copies the collection into %s and renames that, and the change streams of servers with SERVER-107688 leave the copy out. Replay cannot rebuild %s from the events: use a base backup taken after %s, or replay to a --to before it.",
			to, oplogstore.FormatTS(e.TS), e.Namespace(), to, oplogstore.FormatTS(e.TS))}
	}
	return nil
}
