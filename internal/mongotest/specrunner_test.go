package mongotest_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// A runner for the Change Streams specification's unified tests
// (https://github.com/mongodb/specifications, source/change-streams/tests/unified/,
// run by the unified test format's rules: source/unified-test-format/unified-test-format.md),
// a second oracle for this server: the real Go driver runs each test's
// operations against the server and its answers must meet the test's
// expectations, commands the driver sends (its resumes) included.
//
// The tests are restated here (specchangestreams_test.go), not copied: the
// specifications repository is licensed CC BY-NC-SA 3.0, which this
// Apache-2.0 repository cannot take in. Each restated test names the file
// and test it comes from; the runner skips, naming why, those whose
// requirements (server version, topology) this server does not meet.

// specTest is one restated test.
type specTest struct {
	file string // under source/change-streams/tests/unified/, without .json
	name string // the test's description
	// fileReq and req are the file's and the test's run-on requirements:
	// for each, one alternative met (or none given).
	fileReq, req []specReq
	// setup is the file's initial data: the collection created with these
	// documents; nil: none.
	setup *specColl
	// ignore are the commands client0's monitoring leaves out.
	ignore []string
	ops    []specOp
	// events are client0's expected command started events; extra allows
	// others after them (ignoreExtraEvents).
	events []specCommand
	extra  bool
}

type specReq struct {
	min, max   string // server versions, "" for no bound
	topologies []string
}

type specColl struct {
	db, coll string
	docs     []any
}

// specOp is one operation: name on object with args; result and err are
// its expectations (an expected result is matched as a root document).
type specOp struct {
	name   string
	object string
	args   bson.D
	result bson.D
	err    *specErr
}

type specErr struct {
	code      int32
	codeName  string
	labels    []string
	serverErr bool // only "it is a server error" (isClientError: false)
}

type specCommand struct {
	command bson.D
	name    string // "" when not expected
	db      string
}

// The server's version, as buildInfo gives it, decides which tests run.
func TestChangeStreamSpec(t *testing.T) {
	var ran, skipped int
	reasons := map[string]int{}
	for _, st := range changeStreamSpecTests() {
		t.Run(st.file+"/"+st.name, func(t *testing.T) {
			r := newSpecRun(t, st)
			if why := r.unmet(); why != "" {
				skipped++
				reasons[why]++
				t.Skip(why)
			}
			ran++
			r.run()
		})
	}
	t.Logf("change stream specification tests: %d run, %d skipped %v", ran, skipped, reasons)
}

// specRun is one test's run: its server, clients and entities.
type specRun struct {
	t       *testing.T
	st      specTest
	version []int
	client0 *mongo.Client
	global  *mongo.Client
	mu      sync.Mutex
	started []*event.CommandStartedEvent
	stream  *mongo.ChangeStream
	fps     []string // failpoints to turn off
}

func newSpecRun(t *testing.T, st specTest) *specRun {
	r := &specRun{t: t, st: st}
	uri := mongotest.URI(t)
	r.global = connect(t, uri)
	var info struct{ Version string }
	must(t, r.global.Database("admin").RunCommand(ctx(t), d("buildInfo", 1)).Decode(&info))
	r.version = parseVersion(info.Version)
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if !slices.Contains(st.ignore, e.CommandName) {
			r.mu.Lock()
			r.started = append(r.started, e)
			r.mu.Unlock()
		}
	}}
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetHeartbeatInterval(500 * time.Millisecond).SetMonitor(monitor))
	must(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	r.client0 = c
	return r
}

func parseVersion(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ".") {
		n, _ := strconv.Atoi(strings.TrimFunc(p, func(r rune) bool { return r < '0' || r > '9' }))
		out = append(out, n)
	}
	return out
}

func compareVersions(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// unmet says why no run-on requirement holds here: this server is a
// replica set of one version.
func (r *specRun) unmet() string {
	if why := r.unmetOf(r.st.fileReq); why != "" {
		return why
	}
	return r.unmetOf(r.st.req)
}

func (r *specRun) unmetOf(reqs []specReq) string {
	var why string
	for _, q := range reqs {
		switch {
		case q.min != "" && compareVersions(r.version, parseVersion(q.min)) < 0:
			why = "needs MongoDB " + q.min + " or later"
		case q.max != "" && compareVersions(r.version, parseVersion(q.max)) > 0:
			why = "needs MongoDB " + q.max + " or earlier"
		case q.topologies != nil && !slices.Contains(q.topologies, "replicaset"):
			why = "needs a " + strings.Join(q.topologies, " or ") + " topology, not a replica set"
		default:
			return ""
		}
	}
	return why
}

func (r *specRun) run() {
	t, cx := r.t, ctx(r.t)
	if s := r.st.setup; s != nil {
		coll := r.global.Database(s.db).Collection(s.coll)
		must(t, coll.Drop(cx))
		must(t, r.global.Database(s.db).CreateCollection(cx, s.coll))
		if len(s.docs) > 0 {
			_, err := coll.InsertMany(cx, s.docs)
			must(t, err)
		}
	}
	t.Cleanup(func() {
		for _, fp := range r.fps {
			_ = r.global.Database("admin").RunCommand(context.Background(), d("configureFailPoint", fp, "mode", "off")).Err()
		}
		if r.stream != nil {
			_ = r.stream.Close(context.Background())
		}
	})
	r.mu.Lock()
	r.started = nil
	r.mu.Unlock()
	for i, op := range r.st.ops {
		res, err := r.do(cx, op)
		if err := r.check(op, res, err); err != nil {
			t.Fatalf("operation %d (%s on %s): %v", i, op.name, op.object, err)
		}
	}
	r.checkEvents()
}

// Entities: client0 and its database0, database1, collection0 and
// collection1 are monitored; the global ones are not.
func (r *specRun) database(name string) *mongo.Database {
	client := r.client0
	if strings.HasPrefix(name, "global") {
		client, name = r.global, strings.TrimPrefix(name, "global")
	}
	switch name {
	case "Database0", "database0":
		return client.Database(r.dbName(0))
	case "Database1", "database1":
		return client.Database("database1")
	}
	r.t.Fatalf("no database entity %s", name)
	return nil
}

func (r *specRun) dbName(int) string {
	if r.st.setup != nil {
		return r.st.setup.db
	}
	return "database0"
}

func (r *specRun) collection(name string) *mongo.Collection {
	db := "database0"
	switch {
	case strings.HasPrefix(name, "globalDb1"):
		db = "globalDatabase1"
	case strings.HasPrefix(name, "global"):
		db = "globalDatabase0"
	}
	coll := "collection0"
	if strings.HasSuffix(name, "ollection1") {
		coll = "collection1"
	}
	if r.st.setup != nil && coll == "collection0" {
		coll = r.st.setup.coll
	}
	return r.database(db).Collection(coll)
}

// do runs one operation; a result document is returned for iteration.
func (r *specRun) do(cx context.Context, op specOp) (bson.Raw, error) {
	a := op.args
	arg := func(k string) any {
		for _, e := range a {
			if e.Key == k {
				return e.Value
			}
		}
		return nil
	}
	switch op.name {
	case "failPoint":
		fp := arg("failPoint").(bson.D)
		r.fps = append(r.fps, fp[0].Value.(string))
		return nil, r.global.Database("admin").RunCommand(cx, fp).Err()
	case "createChangeStream":
		opts := options.ChangeStream()
		for _, e := range a {
			switch e.Key {
			case "pipeline":
			case "fullDocument":
				opts.SetFullDocument(options.FullDocument(e.Value.(string)))
			case "fullDocumentBeforeChange":
				opts.SetFullDocumentBeforeChange(options.FullDocument(e.Value.(string)))
			case "showExpandedEvents":
				opts.SetShowExpandedEvents(e.Value.(bool))
			case "batchSize":
				opts.SetBatchSize(int32(e.Value.(int)))
			case "comment":
				opts.SetComment(e.Value)
			default:
				r.t.Fatalf("createChangeStream argument %s", e.Key)
			}
		}
		pipeline := arg("pipeline").(bson.A)
		var err error
		switch {
		case op.object == "client0":
			r.stream, err = r.client0.Watch(cx, pipeline, opts)
		case strings.HasPrefix(op.object, "database"):
			r.stream, err = r.database(op.object).Watch(cx, pipeline, opts)
		default:
			r.stream, err = r.collection(op.object).Watch(cx, pipeline, opts)
		}
		return nil, err
	case "iterateUntilDocumentOrError":
		iter, cancel := context.WithTimeout(cx, 10*time.Second)
		defer cancel()
		if r.stream.Next(iter) {
			return r.stream.Current, nil
		}
		if err := r.stream.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("no document and no error in 10 s")
	case "insertOne":
		_, err := r.collection(op.object).InsertOne(cx, arg("document"))
		return nil, err
	case "updateOne":
		_, err := r.collection(op.object).UpdateOne(cx, arg("filter"), arg("update"))
		return nil, err
	case "replaceOne":
		_, err := r.collection(op.object).ReplaceOne(cx, arg("filter"), arg("replacement"))
		return nil, err
	case "deleteOne":
		_, err := r.collection(op.object).DeleteOne(cx, arg("filter"))
		return nil, err
	case "createIndex":
		_, err := r.collection(op.object).Indexes().CreateOne(cx, mongo.IndexModel{Keys: arg("keys"), Options: options.Index().SetName(arg("name").(string))})
		return nil, err
	case "dropIndex":
		return nil, r.collection(op.object).Indexes().DropOne(cx, arg("name").(string))
	case "rename":
		coll := r.collection(op.object)
		cmd := d("renameCollection", coll.Database().Name()+"."+coll.Name(), "to", coll.Database().Name()+"."+arg("to").(string))
		if dt, ok := arg("dropTarget").(bool); ok {
			cmd = append(cmd, bson.E{Key: "dropTarget", Value: dt})
		}
		return nil, coll.Database().Client().Database("admin").RunCommand(cx, cmd).Err()
	case "dropCollection":
		return nil, r.database(op.object).Collection(arg("collection").(string)).Drop(cx)
	case "createCollection":
		cmd := d("create", arg("collection"))
		if on := arg("viewOn"); on != nil {
			cmd = append(cmd, bson.E{Key: "viewOn", Value: on})
		}
		return nil, r.database(op.object).RunCommand(cx, cmd).Err()
	case "runCommand":
		return nil, r.database(op.object).RunCommand(cx, arg("command")).Err()
	}
	r.t.Fatalf("operation %s not in this runner", op.name)
	return nil, nil
}

func (r *specRun) check(op specOp, res bson.Raw, err error) error {
	if op.err == nil {
		if err != nil {
			return fmt.Errorf("unexpected error: %w", err)
		}
		if op.result != nil {
			return specMatch(rawOf(op.result), bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: res}, true, true, "result")
		}
		return nil
	}
	if err == nil {
		return fmt.Errorf("no error, want %+v (result %v)", *op.err, res)
	}
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return fmt.Errorf("%v is not a server error", err)
	}
	if op.err.code != 0 && !se.HasErrorCode(int(op.err.code)) {
		return fmt.Errorf("error %v, want code %d", err, op.err.code)
	}
	if op.err.codeName != "" {
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Name != op.err.codeName {
			return fmt.Errorf("error %v, want code name %s", err, op.err.codeName)
		}
	}
	for _, l := range op.err.labels {
		if !se.HasErrorLabel(l) {
			return fmt.Errorf("error %v, want label %s", err, l)
		}
	}
	return nil
}

func (r *specRun) checkEvents() {
	if r.st.events == nil {
		return
	}
	r.mu.Lock()
	got := slices.Clone(r.started)
	r.mu.Unlock()
	if len(got) < len(r.st.events) || (!r.st.extra && len(got) != len(r.st.events)) {
		r.t.Fatalf("client0 sent %d commands (%s), want %d", len(got), commandNames(got), len(r.st.events))
	}
	for i, want := range r.st.events {
		e := got[i]
		if want.name != "" && e.CommandName != want.name || want.db != "" && e.DatabaseName != want.db {
			r.t.Fatalf("command %d: %s on %s, want %s on %s", i, e.CommandName, e.DatabaseName, want.name, want.db)
		}
		if err := specMatch(rawOf(want.command), bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: e.Command}, true, true, "command"); err != nil {
			r.t.Fatalf("command %d (%s): %v\n%s", i, e.CommandName, err, e.Command)
		}
	}
}

func commandNames(es []*event.CommandStartedEvent) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.CommandName
	}
	return strings.Join(names, ", ")
}

func rawOf(doc bson.D) bson.RawValue {
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: mustBSON(doc)}
}

// specMatch matches as the unified test format's "Evaluating Matches":
// expected fields must be in the actual document (extra ones allowed at
// the root only), arrays match element by element, numbers by value, and
// the operators $$exists, $$unsetOrMatches and $$type apply.
func specMatch(want, got bson.RawValue, present, root bool, path string) error {
	if op, arg, ok := specOperator(want); ok {
		switch op {
		case "$$exists":
			if arg.Boolean() != present {
				return fmt.Errorf("%s: present %v, want %v", path, present, arg.Boolean())
			}
			return nil
		case "$$unsetOrMatches":
			if !present {
				return nil
			}
			return specMatch(arg, got, present, false, path)
		case "$$type":
			if !present {
				return fmt.Errorf("%s: missing, want a %s", path, arg)
			}
			names := []bson.RawValue{arg}
			if arg.Type == bson.TypeArray {
				names, _ = arg.Array().Values()
			}
			for _, n := range names {
				if specTypeName(got.Type) == n.StringValue() {
					return nil
				}
			}
			return fmt.Errorf("%s: %s is a %s, want %s", path, got, specTypeName(got.Type), arg)
		}
		return fmt.Errorf("%s: operator %s not in this runner", path, op)
	}
	if !present {
		return fmt.Errorf("%s: missing, want %s", path, want)
	}
	switch want.Type {
	case bson.TypeEmbeddedDocument:
		if got.Type != bson.TypeEmbeddedDocument {
			return fmt.Errorf("%s: %s, want a document %s", path, got, want)
		}
		wantElems, _ := want.Document().Elements()
		for _, e := range wantElems {
			v, err := got.Document().LookupErr(e.Key())
			if err := specMatch(e.Value(), v, err == nil, false, path+"."+e.Key()); err != nil {
				return err
			}
		}
		if !root {
			gotElems, _ := got.Document().Elements()
			for _, e := range gotElems {
				if _, err := want.Document().LookupErr(e.Key()); err != nil {
					return fmt.Errorf("%s: field %s not expected in a nested document %s", path, e.Key(), got)
				}
			}
		}
		return nil
	case bson.TypeArray:
		wv, _ := want.Array().Values()
		gv, err := got.Array().Values()
		if got.Type != bson.TypeArray || err != nil || len(wv) != len(gv) {
			return fmt.Errorf("%s: %s, want %s", path, got, want)
		}
		for i := range wv {
			if err := specMatch(wv[i], gv[i], true, false, path+"."+strconv.Itoa(i)); err != nil {
				return err
			}
		}
		return nil
	}
	if wn, ok := want.AsFloat64OK(); ok {
		if gn, ok := got.AsFloat64OK(); ok && (gn == wn || math.IsNaN(gn) && math.IsNaN(wn)) {
			return nil
		}
	} else if want.Equal(got) {
		return nil
	}
	return fmt.Errorf("%s: %s, want %s", path, got, want)
}

func specOperator(v bson.RawValue) (string, bson.RawValue, bool) {
	if v.Type != bson.TypeEmbeddedDocument {
		return "", bson.RawValue{}, false
	}
	elems, _ := v.Document().Elements()
	if len(elems) != 1 || !strings.HasPrefix(elems[0].Key(), "$$") {
		return "", bson.RawValue{}, false
	}
	return elems[0].Key(), elems[0].Value(), true
}

func specTypeName(t bson.Type) string {
	switch t {
	case bson.TypeInt32:
		return "int"
	case bson.TypeInt64:
		return "long"
	case bson.TypeDouble:
		return "double"
	case bson.TypeString:
		return "string"
	case bson.TypeEmbeddedDocument:
		return "object"
	case bson.TypeArray:
		return "array"
	case bson.TypeBoolean:
		return "bool"
	case bson.TypeNull:
		return "null"
	case bson.TypeBinary:
		return "binData"
	case bson.TypeTimestamp:
		return "timestamp"
	case bson.TypeDateTime:
		return "date"
	}
	return t.String()
}
