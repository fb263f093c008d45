package mongotest

import (
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
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

// isGenericField reports a field every command accepts.
func isGenericField(name string) bool { return slices.Contains(genericFields, name) }

var commands map[string]command

// Commands of mongod's not implemented here: refused with 115, naming them,
// rather than reported as unknown.
var unsupportedCommands = map[string]bool{
	"distinct": true, "getParameter": true, "setParameter": true, "explain": true, "collStats": true,
	"dbStats": true, "serverStatus": true, "mapReduce": true, "bulkWrite": true, "currentOp": true,
	"killOp": true, "validate": true, "compact": true, "reIndex": true, "convertToCapped": true,
	"createUser": true, "usersInfo": true, "authenticate": true,
}

func init() {
	commands = map[string]command{}
	for _, group := range []map[string]command{
		handshakeCommands, crudCommands, cursorCommands, indexCommands, ddlCommands,
		aggregateCommands, failPointCommands, sessionCommands, collModCommands, replSetCommands, countCommands, mongosCommands,
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

	lsid       bsoncore.Document // nil without a session
	txnNumber  *int64
	autocommit bool // autocommit:false: a statement of a multi-document transaction
	startTxn   bool
	// Bound under the data lock by bindSession:
	sess      *session
	txn       *transaction // the transaction the command runs in
	retryable bool         // a retryable write: its statements run once per txnNumber
	// deadline is when maxTimeMS runs out; zero without one.
	deadline time.Time
	// spent charges a getMore's time to its cursor's maxTimeMS budget.
	spent func()
	// onStream: an aggregate opening a change stream or a getMore on one.
	onStream bool
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
	labels            []string // of a successful command with a write concern error
	err               error
	hangUp            bool // close the connection without replying
}

func (cx *cmdCtx) execute() outcome {
	first, err := cx.body.IndexErr(0)
	if err != nil {
		return outcome{err: errorf(codeFailedToParse, "empty command document")}
	}
	cx.name, cx.arg = first.Key(), first.Value()
	if err := cx.asMongos(); err != nil {
		return outcome{err: err}
	}
	cmd, ok := commands[cx.name]
	switch {
	case !ok && unsupportedCommands[cx.name]:
		return outcome{err: unsupported("the %s command", cx.name)}
	case !ok:
		return outcome{err: errorf(codeCommandNotFound, "no such command: '%s'", cx.name)}
	}
	if err := cx.oplogCommand(); err != nil {
		return outcome{err: err}
	}
	if err := cx.parseEnvelope(cmd); err != nil {
		return outcome{err: err}
	}
	if cx.name == "aggregate" {
		pipeline, _ := cx.body.Lookup("pipeline").ArrayOK()
		first, err := pipeline.IndexErr(0)
		cx.onStream = err == nil && query.StageName(first) == "$changeStream"
	}
	if cx.name == "getMore" {
		cx.getMoreDeadline()
		defer func() {
			if cx.spent != nil {
				cx.s.mu.Lock()
				cx.spent()
				cx.s.mu.Unlock()
			}
		}()
	}
	act := cx.s.fail.check(cx.name, cx.c.appName)
	if act.blockFor > 0 {
		if out, blocked := cx.block(act.blockFor); blocked {
			return out
		}
	}
	if act.closeConn {
		return outcome{hangUp: true}
	}
	if act.err != nil {
		// failCommand fails a getMore before it checks out its cursor, so
		// mongod cannot tell it is a change stream's and adds no
		// ResumableChangeStreamError (error_labels.cpp; the Change Streams
		// specification's tests rely on it: such an error is not resumed).
		if cx.name == "getMore" {
			cx.onStream = false
		}
		cx.s.mu.Lock()
		if cx.bindSession(cmd) == nil {
			cx.abortOnFailure()
		}
		cx.s.mu.Unlock()
		return outcome{err: cx.labelled(cmd, act.err)}
	}
	res, err := cx.runLocked(cmd)
	if err != nil {
		return outcome{err: cx.labelled(cmd, err)}
	}
	out := outcome{res: res, writeConcernError: act.writeConcernError}
	if out.writeConcernError == nil && (cmd.write || commitOrAbort(cx.name)) {
		out.writeConcernError = writeConcernError(cx.body.Lookup("writeConcern"))
	}
	// A retryable write concern error of a retryable write or of a commit
	// is labelled for the driver to retry, as the command's own error would be.
	if code := errorCodeOf(out.writeConcernError); retryableWriteCodes[code] && (cx.retryable || cx.autocommit && commitOrAbort(cx.name)) {
		out.labels = []string{"RetryableWriteError"}
	}
	return out
}

// block holds the command for a failpoint's blockTimeMS; maxTimeMS running
// out first fails it, as it interrupts the sleep on mongod.
func (cx *cmdCtx) block(d time.Duration) (outcome, bool) {
	timeout := time.After(d)
	var expired <-chan time.Time
	if !cx.deadline.IsZero() {
		expired = time.After(time.Until(cx.deadline))
	}
	select {
	case <-timeout:
		return outcome{}, false
	case <-expired:
		return outcome{err: maxTimeExpired()}, true
	case <-cx.c.done:
		return outcome{hangUp: true}, true
	}
}

func maxTimeExpired() error {
	return errorf(codeMaxTimeMSExpired, "operation exceeded time limit")
}

// runLocked runs the handler with the data lock held, in the command's
// session. A panic is a bug in the fake; it becomes an InternalError reply
// rather than a dead server.
func (cx *cmdCtx) runLocked(cmd command) (res bson.D, err error) {
	cx.s.mu.Lock()
	defer cx.s.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, errorf(1, "mongotest internal error in %s: %v", cx.name, p)
		}
		if err != nil {
			cx.abortOnFailure()
		}
	}()
	if err := cx.bindSession(cmd); err != nil {
		return nil, err
	}
	// A handler that meets a transaction's hold before it changes anything
	// runs again once a transaction ends (batch writes wait statement by
	// statement, in runBatch).
	return untilUnblocked(cx, func() (bson.D, error) { return cmd.run(cx) })
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
	if v, ok := cx.field("autocommit"); ok {
		if b, ok := v.BooleanOK(); !ok || b {
			return errorf(codeInvalidOptions, "autocommit must be false, as a transaction's statements send it; got %s", v)
		}
		cx.autocommit = true
	}
	if v, ok := cx.field("startTransaction"); ok {
		if b, ok := v.BooleanOK(); !ok || !b {
			return errorf(codeInvalidOptions, "startTransaction must be true; got %s", v)
		}
		if !cx.autocommit {
			return errorf(codeInvalidOptions, "startTransaction requires autocommit: false")
		}
		cx.startTxn = true
	}
	if ms, ok, err := cx.intArg("maxTimeMS"); err != nil {
		return err
	} else if ok && ms > 0 {
		cx.deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	return checkReadConcern(cx.body.Lookup("readConcern"), cx.startTxn)
}

// checkReadConcern accepts the levels whose guarantees a single node
// meets at once; snapshot only starting a transaction, whose reads see what
// is committed when they run (see README.md).
func checkReadConcern(v bsoncore.Value, startTxn bool) error {
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
				if !startTxn {
					return unsupported("readConcern level snapshot outside transactions")
				}
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
