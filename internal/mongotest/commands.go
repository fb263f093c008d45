package mongotest

import (
	"fmt"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// command describes one server command.
type command struct {
	run func(cx *cmdCtx) (bson.D, error)
	// fields the command accepts besides its name and genericFields; any
	// other field is refused as the real server's IDL parser does.
	fields []string
	// freeForm commands take arbitrary field names (getParameter).
	freeForm bool
	// write marks retryable writes: their errors may carry RetryableWriteError
	// and their writeConcern is checked.
	write bool
}

// genericFields are accepted by every command (driver-added envelope fields).
var genericFields = []string{
	"$db", "lsid", "txnNumber", "$clusterTime", "$readPreference", "readConcern", "writeConcern",
	"apiVersion", "apiStrict", "apiDeprecationErrors", "comment", "maxTimeMS", "autocommit", "startTransaction",
}

var commands map[string]command

func init() {
	commands = map[string]command{}
	for _, group := range []map[string]command{
		handshakeCommands, crudCommands, cursorCommands, indexCommands, ddlCommands,
		aggregateCommands, failPointCommands, replSetCommands,
	} {
		for name, c := range group {
			commands[name] = c
		}
	}
}

// cmdCtx is one command being executed.
type cmdCtx struct {
	s    *Server
	c    *conn
	name string
	db   string
	body bsoncore.Document
	arg  bsoncore.Value // the value of the command's first field

	lsid      bsoncore.Document // nil without a session
	txnNumber *int64
}

// handle runs one request and returns the reply document; false means the
// connection must be closed without a reply (failCommand closeConnection).
func (s *Server) handle(c *conn, req *request) (bsoncore.Document, bool) {
	cx := &cmdCtx{s: s, c: c, db: req.db, body: req.body}
	out := cx.execute()
	if out.hangUp {
		return nil, false
	}
	return s.reply(out), true
}

// outcome is what a command produced.
type outcome struct {
	res               bson.D
	writeConcernError bson.D
	err               error
	hangUp            bool // close the connection without replying
}

func (cx *cmdCtx) execute() outcome {
	first, err := cx.body.IndexErr(0)
	if err != nil {
		return outcome{err: errorf(codeFailedToParse, "empty command document")}
	}
	cx.name, cx.arg = first.Key(), first.Value()
	cmd, ok := commands[cx.name]
	if !ok {
		return outcome{err: errorf(codeCommandNotFound, "no such command: '%s'", cx.name)}
	}
	if err := cx.parseEnvelope(cmd); err != nil {
		return outcome{err: err}
	}
	act := cx.s.fail.check(cx.name, cx.c.appName)
	if act.blockFor > 0 {
		select {
		case <-time.After(act.blockFor):
		case <-cx.c.done:
			return outcome{hangUp: true}
		}
	}
	if act.closeConn {
		return outcome{hangUp: true}
	}
	if act.err != nil {
		return outcome{err: cx.labelled(cmd, act.err)}
	}
	res, err := cx.runLocked(cmd)
	if err != nil {
		return outcome{err: cx.labelled(cmd, err)}
	}
	wce := act.writeConcernError
	if wce == nil && cmd.write {
		wce = writeConcernError(cx.body.Lookup("writeConcern"))
	}
	return outcome{res: res, writeConcernError: wce}
}

// runLocked runs the handler with the data lock held. A panic is a bug in
// the fake; it becomes an InternalError reply rather than a dead server.
func (cx *cmdCtx) runLocked(cmd command) (res bson.D, err error) {
	cx.s.mu.Lock()
	defer cx.s.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, errorf(1, "mongotest internal error in %s: %v", cx.name, p)
		}
	}()
	return cmd.run(cx)
}

// labelled adds RetryableWriteError to retryable failures of retryable
// writes, as 4.4+ servers do; drivers rely on the label to retry.
func (cx *cmdCtx) labelled(cmd command, err error) error {
	ce, ok := err.(*cmdError)
	if !ok || ce.labelsSet || !cmd.write || cx.txnNumber == nil || !retryableWriteCodes[ce.code] {
		return err
	}
	labelled := *ce
	labelled.labels = append(append([]string(nil), ce.labels...), "RetryableWriteError")
	return &labelled
}

func (cx *cmdCtx) parseEnvelope(cmd command) error {
	elems, err := cx.body.Elements()
	if err != nil {
		return errorf(codeFailedToParse, "malformed command document")
	}
	for _, e := range elems[1:] {
		if !cmd.freeForm && !slices.Contains(cmd.fields, e.Key()) && !slices.Contains(genericFields, e.Key()) {
			return errorf(codeIDLUnknownField, "BSON field '%s.%s' is an unknown field.", cx.name, e.Key())
		}
	}
	if v, err := cx.body.LookupErr("lsid"); err == nil {
		d, ok := v.DocumentOK()
		if !ok {
			return typeError(cx.name+".lsid", v, "object")
		}
		cx.lsid = d
	}
	if v, err := cx.body.LookupErr("txnNumber"); err == nil {
		n, ok := v.Int64OK()
		if !ok {
			return typeError(cx.name+".txnNumber", v, "long")
		}
		cx.txnNumber = &n
	}
	if v, err := cx.body.LookupErr("autocommit"); err == nil && !v.Boolean() {
		return unsupported("multi-document transactions")
	}
	if _, err := cx.body.LookupErr("startTransaction"); err == nil {
		return unsupported("multi-document transactions")
	}
	return checkReadConcern(cx.body.Lookup("readConcern"))
}

func checkReadConcern(v bsoncore.Value) error {
	if v.Type == 0 {
		return nil
	}
	d, ok := v.DocumentOK()
	if !ok {
		return typeError("readConcern", v, "object")
	}
	elems, _ := d.Elements()
	for _, e := range elems {
		switch e.Key() {
		case "level":
			switch e.Value().StringValue() {
			case "local", "majority", "available", "linearizable":
			case "snapshot":
				return unsupported("readConcern level snapshot")
			default:
				return errorf(codeFailedToParse, "unknown readConcern level: %s", e.Value())
			}
		case "afterClusterTime":
			// Every write is visible at once on this single node.
		default:
			return unsupported("readConcern field %q", e.Key())
		}
	}
	return nil
}

// writeConcernError reports write concerns a single-node replica set cannot
// satisfy; the write itself has happened, as on a real server.
func writeConcernError(v bsoncore.Value) bson.D {
	d, ok := v.DocumentOK()
	if !ok {
		return nil
	}
	w := d.Lookup("w")
	switch {
	case w.Type == bsoncore.TypeString && w.StringValue() != "majority":
		return bson.D{{Key: "code", Value: int32(79)}, {Key: "codeName", Value: "UnknownReplWriteConcern"},
			{Key: "errmsg", Value: fmt.Sprintf("No write concern mode named '%s' found in replica set configuration", w.StringValue())}}
	case w.IsNumber() && w.AsInt64() > 1:
		return bson.D{{Key: "code", Value: int32(codeUnsatisfiableWriteConcern)}, {Key: "codeName", Value: "UnsatisfiableWriteConcern"},
			{Key: "errmsg", Value: "Not enough data-bearing nodes"}}
	}
	return nil
}

// reply builds the final document: the handler's fields, ok, the error, and
// the cluster time gossip every replica set member adds.
func (s *Server) reply(o outcome) bsoncore.Document {
	s.mu.Lock()
	now := s.clock.now()
	s.mu.Unlock()
	out := make(bson.D, 0, len(o.res)+6)
	if o.err != nil {
		ce, ok := o.err.(*cmdError)
		if !ok {
			ce = errorf(1, "%v", o.err)
		}
		out = append(out, bson.E{Key: "ok", Value: 0.0}, bson.E{Key: "errmsg", Value: ce.msg},
			bson.E{Key: "code", Value: ce.code}, bson.E{Key: "codeName", Value: codeName(ce.code)})
		if len(ce.labels) > 0 {
			out = append(out, bson.E{Key: "errorLabels", Value: ce.labels})
		}
	} else {
		out = append(out, o.res...)
		if o.writeConcernError != nil {
			out = append(out, bson.E{Key: "writeConcernError", Value: o.writeConcernError})
		}
		out = append(out, bson.E{Key: "ok", Value: 1.0})
	}
	out = append(out, bson.E{Key: "$clusterTime", Value: clusterTimeDoc(now)}, bson.E{Key: "operationTime", Value: now})
	b, merr := bson.Marshal(out)
	if merr != nil {
		b, _ = bson.Marshal(bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: "mongotest: cannot encode reply: " + merr.Error()},
			{Key: "code", Value: int32(1)}, {Key: "codeName", Value: "InternalError"}})
	}
	return b
}

// waitForChange releases the data lock until the cluster time moves, the
// deadline passes or the connection closes. It reports whether to go on.
func (cx *cmdCtx) waitForChange(deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	ch := cx.s.changed
	cx.s.mu.Unlock()
	defer cx.s.mu.Lock()
	defer cx.c.watchHangUp()()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	case <-cx.c.done:
		return false
	}
}

// Argument helpers. They return the real server's TypeMismatch wording.

func typeError(field string, v bsoncore.Value, want string) error {
	return errorf(codeTypeMismatch, "BSON field '%s' is the wrong type '%s', expected type '%s'", field, typeName(v.Type), want)
}

func (cx *cmdCtx) field(name string) (bsoncore.Value, bool) {
	v, err := cx.body.LookupErr(name)
	return v, err == nil
}

func (cx *cmdCtx) docArg(name string) (bsoncore.Document, error) {
	v, ok := cx.field(name)
	if !ok || v.Type == bsoncore.TypeNull {
		return nil, nil
	}
	d, ok := v.DocumentOK()
	if !ok {
		return nil, typeError(cx.name+"."+name, v, "object")
	}
	return d, nil
}

func (cx *cmdCtx) arrayArg(name string) ([]bsoncore.Value, error) {
	v, ok := cx.field(name)
	if !ok {
		return nil, nil
	}
	a, ok := v.ArrayOK()
	if !ok {
		return nil, typeError(cx.name+"."+name, v, "array")
	}
	vals, err := a.Values()
	if err != nil {
		return nil, errorf(codeFailedToParse, "malformed array %s", name)
	}
	return vals, nil
}

func (cx *cmdCtx) boolArg(name string) (bool, error) {
	v, ok := cx.field(name)
	if !ok {
		return false, nil
	}
	return asBool(cx.name+"."+name, v)
}

func asBool(field string, v bsoncore.Value) (bool, error) {
	switch {
	case v.Type == bsoncore.TypeBoolean:
		return v.Boolean(), nil
	case v.IsNumber():
		return v.AsFloat64() != 0, nil
	case v.Type == bsoncore.TypeNull:
		return false, nil
	}
	return false, typeError(field, v, "bool")
}

func (cx *cmdCtx) intArg(name string) (int64, bool, error) {
	v, ok := cx.field(name)
	if !ok || v.Type == bsoncore.TypeNull {
		return 0, false, nil
	}
	n, err := asInt(cx.name+"."+name, v)
	return n, err == nil, err
}

// asInt accepts any number holding an integral value, as the server's IDL
// "safeInt64" fields do.
func asInt(field string, v bsoncore.Value) (int64, error) {
	switch v.Type {
	case bsoncore.TypeInt32, bsoncore.TypeInt64:
		return v.AsInt64(), nil
	case bsoncore.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f), nil
		}
		return 0, errorf(codeBadValue, "BSON field '%s' must be an integer, got %v", field, f)
	}
	return 0, typeError(field, v, "long")
}

// collName is the collection named by the command's first field.
func (cx *cmdCtx) collName() (string, error) {
	name, ok := cx.arg.StringValueOK()
	if !ok {
		if cx.arg.Type == bsoncore.TypeBinary {
			return "", unsupported("collection UUIDs as %s targets", cx.name)
		}
		return "", typeError(cx.name, cx.arg, "string")
	}
	if err := validCollName(name); err != nil {
		return "", err
	}
	return name, nil
}
