package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// view is a read-only view (https://www.mongodb.com/docs/manual/core/views/):
// the result of a pipeline over another collection or view of the same
// database, computed when read. Its definition is also a document of the
// database's system.views collection, as on mongod. It has no UUID, so its
// events carry no collectionUUID.
type view struct {
	db, name string
	viewOn   string
	pipeline bsoncore.Value // an array of stages
}

const (
	codeCommandNotSupportedOnView = 166
	codeViewDepthLimitExceeded    = 165
	systemViews                   = "system.views"
	// maxViewDepth is mongod's ViewGraph::kMaxViewDepth.
	maxViewDepth = 20
)

func (s *Server) viewLocked(db, name string) *view {
	if d := s.dbs[db]; d != nil {
		return d.views[name]
	}
	return nil
}

// notView refuses what only collections allow, as mongod does for a view.
func (s *Server) notView(db, name string) error {
	if s.viewLocked(db, name) != nil {
		return errorf(codeCommandNotSupportedOnView, "Namespace %s.%s is a view, not a collection", db, name)
	}
	return nil
}

// notSystemViews refuses a client's insert, update, findAndModify or delete in
// system.views with InvalidNamespace, as mongod does since 4.7 (mongodb/mongo
// jstests/core/views, the test that users are disallowed from writing to
// system.views): its documents change only with the views.
func notSystemViews(name string) error {
	if name == systemViews {
		return errorf(codeInvalidNamespace, "cannot write to %s: views change only through create, collMod and drop", systemViews)
	}
	return nil
}

// parseViewPipeline checks a view's pipeline: an array of stages this
// server runs (one it does not fails now, not when the view is read), none
// writing ($out, $merge) or opening a change stream.
func parseViewPipeline(v bsoncore.Value) (bsoncore.Value, error) {
	if v.Type == 0 {
		return query.ArrayValue(nil), nil
	}
	if v.Type != bsoncore.TypeArray {
		return bsoncore.Value{}, typeError("pipeline", v, "array")
	}
	for _, st := range query.ArrayValues(v) {
		switch name := query.StageName(st); name {
		case "$out", "$merge", "$changeStream":
			return bsoncore.Value{}, errorf(codeInvalidOptions, "%s cannot be used in a view definition", name)
		}
		if _, err := query.CompileStage(st); err != nil {
			return bsoncore.Value{}, err
		}
	}
	return v, nil
}

// createView creates db.name on viewOn, recording the create event mongod's
// oplog entry gives ({create, viewOn, pipeline}).
func (cx *cmdCtx) createView(name string, viewOn, pipeline bsoncore.Value) error {
	on, ok := viewOn.StringValueOK()
	if !ok || on == "" {
		return typeError("viewOn", viewOn, "string")
	}
	if err := validCollName(on); err != nil {
		return err
	}
	p, err := parseViewPipeline(pipeline)
	if err != nil {
		return err
	}
	if cx.txn != nil {
		return errorf(codeOperationNotSupportedInTransaction, "Cannot create a view in a multi-document transaction.")
	}
	v := &view{db: cx.db, name: name, viewOn: on, pipeline: p}
	if err := cx.s.checkViewGraph(v); err != nil {
		return err
	}
	cx.s.databaseLocked(cx.db).views[name] = v
	cx.s.syncSystemViews(cx.db)
	cx.s.recordLocked(cx, &event{op: "create", db: cx.db, coll: name, opDesc: query.BuildDoc(v.options())})
	return nil
}

// options are the view's as listCollections and its events show them.
func (v *view) options() []query.Field {
	return []query.Field{{Key: "viewOn", Val: query.StringValue(v.viewOn)}, {Key: "pipeline", Val: v.pipeline}}
}

// checkViewGraph refuses a view that would lead back to itself or nest
// views too deeply, with v in place of any view of its name.
func (s *Server) checkViewGraph(v *view) error {
	on := v.viewOn
	for depth := 1; ; depth++ {
		if on == v.name {
			return errorf(codeGraphContainsCycle, "View cycle detected: %s.%s", v.db, v.name)
		}
		next := s.viewLocked(v.db, on)
		if next == nil {
			return nil
		}
		if depth >= maxViewDepth {
			return errorf(codeViewDepthLimitExceeded, "View depth too deep or view cycle detected. Maximum depth is %d", maxViewDepth)
		}
		on = next.viewOn
	}
}

// dropView removes a view, recording a drop event (without
// collectionUUID: a view has none).
func (cx *cmdCtx) dropView(v *view) {
	delete(cx.s.dbs[v.db].views, v.name)
	cx.s.syncSystemViews(v.db)
	cx.s.recordLocked(cx, &event{op: "drop", db: v.db, coll: v.name})
}

// syncSystemViews rewrites db's system.views from its views: documents
// {_id: "<db>.<view>", viewOn, pipeline}, in name order. Its writes record
// no events: change streams never show system collections.
func (s *Server) syncSystemViews(db string) {
	d := s.dbs[db]
	sv := d.colls[systemViews]
	if sv == nil {
		sv = &collection{db: db, name: systemViews, uuid: newUUID(), indexes: []*index{newIDIndex(collOptions{})}, ids: map[string]*record{}}
		d.colls[systemViews] = sv
	}
	for _, r := range sv.live() {
		sv.remove(r)
	}
	for _, v := range sortedViews(d) {
		doc := query.BuildDoc(append([]query.Field{{Key: "_id", Val: query.StringValue(db + "." + v.name)}}, v.options()...))
		_, _ = sv.insert(doc, nil) // distinct names: no conflict
	}
}

// viewDocs computes a view: its source's documents (a collection's as the
// transaction sees them, or another view's), through its pipeline.
func (cx *cmdCtx) viewDocs(v *view, depth int) ([]bsoncore.Document, error) {
	if depth > maxViewDepth {
		return nil, errorf(codeViewDepthLimitExceeded, "View depth too deep or view cycle detected. Maximum depth is %d", maxViewDepth)
	}
	var docs []bsoncore.Document
	if src := cx.s.viewLocked(v.db, v.viewOn); src != nil {
		var err error
		if docs, err = cx.viewDocs(src, depth+1); err != nil {
			return nil, err
		}
	} else if c := cx.s.collLocked(v.db, v.viewOn); c != nil {
		for _, r := range c.visible(cx.txn) {
			docs = append(docs, r.doc)
		}
	}
	for _, st := range query.ArrayValues(v.pipeline) {
		stage, err := query.CompileStage(st)
		if err == nil {
			docs, err = stage.Apply(docs)
		}
		if err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// readDocs are the documents a read of name sees: a collection's (with
// their records, for writes that follow the read) or a view's.
func (cx *cmdCtx) readDocs(name string) (docs []bsoncore.Document, isView bool, err error) {
	if v := cx.s.viewLocked(cx.db, name); v != nil {
		docs, err = cx.viewDocs(v, 1)
		return docs, true, err
	}
	if c := cx.s.collLocked(cx.db, name); c != nil {
		for _, r := range c.visible(cx.txn) {
			docs = append(docs, r.doc)
		}
	}
	return docs, false, nil
}

// viewInfo is a view's listCollections entry.
func viewInfo(v *view) bsoncore.Document {
	return mustMarshal(bson.D{
		{Key: "name", Value: v.name},
		{Key: "type", Value: "view"},
		{Key: "options", Value: bson.Raw(query.BuildDoc(v.options()))},
		{Key: "info", Value: bson.D{{Key: "readOnly", Value: true}}},
	})
}

// collModView changes a view's viewOn and pipeline, recording the modify
// event with the change and the view's options before it.
func (cx *cmdCtx) collModView(v *view) (bson.D, error) {
	next := *v
	var change []query.Field
	for _, f := range query.Fields(cx.body)[1:] {
		switch f.Key {
		case "viewOn":
			on, ok := f.Val.StringValueOK()
			if !ok || on == "" {
				return nil, typeError("viewOn", f.Val, "string")
			}
			next.viewOn = on
		case "pipeline":
			p, err := parseViewPipeline(f.Val)
			if err != nil {
				return nil, err
			}
			next.pipeline = p
		default:
			if isGenericField(f.Key) {
				continue
			}
			return nil, errorf(codeInvalidOptions, "option not supported on a view: %s", f.Key)
		}
		change = append(change, f)
	}
	if err := cx.s.checkViewGraph(&next); err != nil {
		return nil, err
	}
	before := query.BuildDoc([]query.Field{{Key: "collectionOptions", Val: query.DocValue(query.BuildDoc(v.options()))}})
	*v = next
	cx.s.syncSystemViews(v.db)
	cx.s.recordLocked(cx, &event{op: "modify", db: v.db, coll: v.name, opDesc: query.BuildDoc(change), stateBefore: before})
	return nil, nil
}

func sortedViews(d *database) []*view {
	vs := make([]*view, 0, len(d.views))
	for _, v := range d.views {
		vs = append(vs, v)
	}
	sortByName(vs, func(v *view) string { return v.name })
	return vs
}
