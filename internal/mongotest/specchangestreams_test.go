package mongotest_test

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The Change Streams specification's unified tests, restated for the
// runner in specrunner_test.go: each names the file (under
// source/change-streams/tests/unified/ of https://github.com/mongodb/specifications)
// and the test it restates, with its run-on requirements, operations and
// expectations. All 89 tests of the nine files are here; those needing
// another topology or server version are skipped by the runner, naming
// the requirement.

func exists(b bool) bson.D        { return d("$$exists", b) }
func unsetOrMatches(v any) bson.D { return d("$$unsetOrMatches", v) }
func typeOf(names ...any) bson.D {
	if len(names) == 1 {
		return d("$$type", names[0])
	}
	return d("$$type", bson.A(names))
}

func createStream(object string, pipeline bson.A, opts ...any) specOp {
	return specOp{name: "createChangeStream", object: object, args: append(d("pipeline", pipeline), d(opts...)...)}
}

func iterate(result bson.D) specOp {
	return specOp{name: "iterateUntilDocumentOrError", object: "changeStream0", result: result}
}

func iterateFails(e specErr) specOp {
	return specOp{name: "iterateUntilDocumentOrError", object: "changeStream0", err: &e}
}

func insertOne(object string, doc bson.D) specOp {
	return specOp{name: "insertOne", object: object, args: d("document", doc)}
}

func failPointOp(name string, mode bson.D, data bson.D) specOp {
	return specOp{name: "failPoint", object: "testRunner", args: d("failPoint", d("configureFailPoint", name, "mode", mode, "data", data))}
}

func nsOf(db, coll string) bson.D { return d("db", db, "coll", coll) }

// insertedX is the insert event of {x: 1} into database0.collection0.
func insertedX() bson.D {
	return d("_id", exists(true), "documentKey", exists(true), "operationType", "insert",
		"ns", nsOf("database0", "collection0"), "fullDocument", d("x", 1, "_id", exists(true)))
}

func aggregateOn(coll any, changeStream bson.D, rest ...bson.D) specCommand {
	pipeline := bson.A{d("$changeStream", changeStream)}
	for _, st := range rest {
		pipeline = append(pipeline, st)
	}
	return specCommand{command: d("aggregate", coll, "cursor", d(), "pipeline", pipeline), name: "aggregate", db: "database0"}
}

// resumed are the commands of a stream that fails a getMore and resumes.
func resumed() []specCommand {
	return []specCommand{
		aggregateOn("collection0", d()),
		{command: d("getMore", exists(true), "collection", "collection0"), name: "getMore", db: "database0"},
		aggregateOn("collection0", d("resumeAfter", unsetOrMatches(exists(true)))),
	}
}

var (
	replicaSetLBSharded = []string{"replicaset", "load-balanced", "sharded"}
	replicaSetShardedLB = []string{"replicaset", "sharded", "load-balanced"}
	monitorNoKill       = []string{"killCursors"}
	collection0         = &specColl{db: "database0", coll: "collection0"}
)

// resumeCodes are the errors the resume tests inject, by name.
var resumeCodes = []struct {
	name string
	code int
}{
	{"HostUnreachable", 6}, {"HostNotFound", 7}, {"NetworkTimeout", 89}, {"ShutdownInProgress", 91},
	{"PrimarySteppedDown", 189}, {"ExceededTimeLimit", 262}, {"SocketException", 9001},
	{"NotWritablePrimary", 10107}, {"InterruptedAtShutdown", 11600}, {"InterruptedDueToReplStateChange", 11602},
	{"NotPrimaryNoSecondaryOk", 13435}, {"NotPrimaryOrSecondary", 13436}, {"StaleShardVersion", 63},
	{"StaleEpoch", 150}, {"RetryChangeStream", 234}, {"FailedToSatisfyReadPreference", 133},
}

// resumeTest is a test where a getMore fails, the stream resumes and the
// insert made meanwhile is read.
func resumeTest(file, name string, fileReq, req []specReq, fp specOp) specTest {
	return specTest{file: file, name: name, fileReq: fileReq, req: req, ignore: monitorNoKill,
		ops:    []specOp{fp, createStream("collection0", bson.A{}), insertOne("globalCollection0", d("x", 1)), iterate(insertedX())},
		events: resumed(), extra: true}
}

func changeStreamSpecTests() []specTest {
	var tests []specTest
	add := func(t ...specTest) { tests = append(tests, t...) }

	// change-streams-clusterTime
	add(specTest{file: "change-streams-clusterTime", name: "clusterTime is present",
		fileReq: []specReq{{min: "4.0.0", topologies: replicaSetLBSharded}}, setup: collection0,
		ops: []specOp{createStream("collection0", bson.A{}), insertOne("collection0", d("_id", 1)),
			iterate(d("ns", nsOf("database0", "collection0"), "clusterTime", exists(true)))}})

	// change-streams-disambiguatedPaths
	disambiguated := func(name string, req []specReq, doc bson.D, set bson.D, expanded bool, want any) specTest {
		stream := createStream("collection0", bson.A{})
		if expanded {
			stream = createStream("collection0", bson.A{}, "showExpandedEvents", true)
		}
		return specTest{file: "change-streams-disambiguatedPaths", name: name, fileReq: []specReq{{min: "6.1.0", topologies: replicaSetLBSharded}},
			req: req, setup: collection0,
			ops: []specOp{insertOne("collection0", doc), stream,
				{name: "updateOne", object: "collection0", args: d("filter", d("_id", 1), "update", d("$set", set))},
				iterate(d("operationType", "update", "ns", nsOf("database0", "collection0"), "updateDescription", d(
					"updatedFields", exists(true), "removedFields", exists(true), "truncatedArrays", exists(true), "disambiguatedPaths", want)))}}
	}
	add(disambiguated("disambiguatedPaths is not present when showExpandedEvents is false/unset",
		[]specReq{{min: "6.1.0", max: "8.1.99", topologies: replicaSetLBSharded}, {min: "8.2.1", topologies: replicaSetLBSharded}},
		d("_id", 1, "a", d("1", 1)), d("a.1", 2), false, exists(false)),
		disambiguated("disambiguatedPaths is present on updateDescription when an ambiguous path is present", nil,
			d("_id", 1, "a", d("1", 1)), d("a.1", 2), true, d("a.1", a("a", "1"))),
		disambiguated("disambiguatedPaths returns array indices as integers", nil,
			d("_id", 1, "a", a(d("1", 1))), d("a.0.1", 2), true, d("a.0.1", a("a", typeOf("int"), "1"))))

	// change-streams-errors
	errorsTest := func(name string, req []specReq, ops []specOp, events []specCommand) specTest {
		return specTest{file: "change-streams-errors", name: name, req: req, setup: collection0, ignore: monitorNoKill, ops: ops, events: events, extra: true}
	}
	add(errorsTest("The watch helper must not throw a custom exception when executed against a single server topology, but instead depend on a server error",
		[]specReq{{min: "3.6.0", topologies: []string{"single"}}},
		[]specOp{{name: "createChangeStream", object: "collection0", args: d("pipeline", bson.A{}), err: &specErr{code: 40573}}}, nil),
		errorsTest("Change Stream should error when an invalid aggregation stage is passed in", []specReq{{min: "3.6.0", topologies: []string{"replicaset"}}},
			[]specOp{{name: "createChangeStream", object: "collection0", args: d("pipeline", a(d("$unsupported", "foo"))), err: &specErr{code: 40324}}},
			[]specCommand{aggregateOn("collection0", d(), d("$unsupported", "foo"))}),
		errorsTest("Change Stream should error when _id is projected out", []specReq{{min: "4.1.11", topologies: replicaSetShardedLB}},
			[]specOp{createStream("collection0", a(d("$project", d("_id", 0)))), insertOne("globalCollection0", d("z", 3)), iterateFails(specErr{code: 280})}, nil),
		errorsTest("change stream errors on ElectionInProgress", []specReq{{min: "4.2", topologies: replicaSetShardedLB}},
			[]specOp{failPointOp("failCommand", d("times", 1), d("failCommands", a("getMore"), "errorCode", 216, "closeConnection", false)),
				createStream("collection0", bson.A{}), insertOne("globalCollection0", d("z", 3)), iterateFails(specErr{code: 216})}, nil))

	// change-streams-nsType
	nsType := func(name string, create bson.D, want string) specTest {
		return specTest{file: "change-streams-nsType", name: name, fileReq: []specReq{{min: "8.1.0", topologies: []string{"replicaset", "sharded"}}},
			ops: []specOp{{name: "dropCollection", object: "database0", args: d("collection", "foo")},
				createStream("database0", bson.A{}, "showExpandedEvents", true),
				{name: "createCollection", object: "database0", args: create},
				iterate(d("operationType", "create", "nsType", want))}}
	}
	add(nsType("nsType is present when creating collections", d("collection", "foo"), "collection"),
		nsType("nsType is present when creating views", d("collection", "foo", "viewOn", "testName"), "view"))

	// change-streams-pre_and_post_images: each option and mode, with
	// changeStreamPreAndPostImages on and off.
	for _, c := range []struct {
		option, mode string
		image        bson.D // the image when there is one
	}{
		{"fullDocument", "whenAvailable", d("_id", 1, "x", 1)}, {"fullDocument", "required", d("_id", 1, "x", 1)},
		{"fullDocumentBeforeChange", "whenAvailable", d("_id", 1)}, {"fullDocumentBeforeChange", "required", d("_id", 1)},
		{"fullDocumentBeforeChange", "off", nil},
	} {
		for _, enabled := range []bool{true, false} {
			state := map[bool]string{true: "enabled", false: "disabled"}[enabled]
			var got any = c.image
			iter := iterate(nil)
			switch {
			case c.mode == "off":
				got = exists(false)
			case !enabled && c.mode == "whenAvailable":
				got = nil
			case !enabled:
				iter = iterateFails(specErr{serverErr: true})
			}
			if iter.err == nil {
				iter.result = d("operationType", "update", "ns", nsOf("change-stream-tests", "test"), "updateDescription", typeOf("object"), c.option, got)
			}
			add(specTest{file: "change-streams-pre_and_post_images", name: fmt.Sprintf("%s:%s with changeStreamPreAndPostImages %s", c.option, c.mode, state),
				fileReq: []specReq{{min: "6.0.0", topologies: replicaSetShardedLB}},
				setup:   &specColl{db: "change-stream-tests", coll: "test", docs: []any{d("_id", 1)}},
				ignore:  []string{"collMod", "insert", "update", "getMore", "killCursors"},
				ops: []specOp{
					{name: "runCommand", object: "database0", args: d("command", d("collMod", "test", "changeStreamPreAndPostImages", d("enabled", enabled)))},
					createStream("collection0", bson.A{}, c.option, c.mode),
					{name: "updateOne", object: "collection0", args: d("filter", d("_id", 1), "update", d("$set", d("x", 1)))},
					iter,
				},
				events: []specCommand{{command: d("aggregate", "test", "pipeline", a(d("$changeStream", d(c.option, c.mode))))}}})
		}
	}

	// change-streams-resume-allowlist: resumes by error code (servers
	// before 4.4 label nothing).
	allowReq := []specReq{{min: "3.6", topologies: replicaSetShardedLB}}
	add(resumeTest("change-streams-resume-allowlist", "change stream resumes after a network error", allowReq, []specReq{{min: "4.2"}},
		failPointOp("failCommand", d("times", 1), d("failCommands", a("getMore"), "closeConnection", true))))
	for _, c := range resumeCodes {
		add(resumeTest("change-streams-resume-allowlist", "change stream resumes after "+c.name, allowReq, []specReq{{min: "4.2", max: "4.2.99"}},
			failPointOp("failCommand", d("times", 1), d("failCommands", a("getMore"), "errorCode", c.code, "closeConnection", false))))
	}
	add(resumeTest("change-streams-resume-allowlist", "change stream resumes after CursorNotFound", allowReq, []specReq{{min: "4.2"}},
		failPointOp("failCommand", d("times", 1), d("failCommands", a("getMore"), "errorCode", 43, "closeConnection", false))))

	// change-streams-resume-errorLabels: 4.4+ servers label resumable
	// errors of a getMore that holds its cursor; an error without the label
	// is not resumed.
	labelReq := []specReq{{min: "4.3.1", topologies: replicaSetShardedLB}}
	for _, c := range resumeCodes {
		var req []specReq
		if c.name == "StaleShardVersion" {
			req = []specReq{{max: "6.0.99"}}
		}
		add(resumeTest("change-streams-resume-errorLabels", "change stream resumes after "+c.name, labelReq, req,
			failPointOp("failGetMoreAfterCursorCheckout", d("times", 1), d("errorCode", c.code, "closeConnection", false))))
	}
	add(resumeTest("change-streams-resume-errorLabels", "change stream resumes if error contains ResumableChangeStreamError", labelReq, nil,
		failPointOp("failCommand", d("times", 1), d("failCommands", a("getMore"), "errorCode", 50, "closeConnection", false, "errorLabels", a("ResumableChangeStreamError")))),
		specTest{file: "change-streams-resume-errorLabels", name: "change stream does not resume if error does not contain ResumableChangeStreamError",
			fileReq: labelReq, ignore: monitorNoKill,
			ops: []specOp{failPointOp("failCommand", d("times", 1), d("failCommands", a("getMore"), "errorCode", 6, "closeConnection", false)),
				createStream("collection0", bson.A{}), insertOne("globalCollection0", d("x", 1)), iterateFails(specErr{code: 6})}})

	// change-streams-showExpandedEvents
	expandedReq := []specReq{{min: "6.0.0", topologies: []string{"replicaset", "sharded"}}}
	expanded := func(name string, req []specReq, ops []specOp, events []specCommand) specTest {
		return specTest{file: "change-streams-showExpandedEvents", name: name, fileReq: expandedReq, req: req, setup: collection0,
			ignore: monitorNoKill, ops: ops, events: events, extra: true}
	}
	createX1 := func(name string) specOp {
		return specOp{name: "createIndex", object: "collection0", args: d("keys", d("x", 1), "name", name)}
	}
	drop := func(coll string) specOp {
		return specOp{name: "dropCollection", object: "database0", args: d("collection", coll)}
	}
	add(expanded("when provided, showExpandedEvents is sent as a part of the aggregate command", nil,
		[]specOp{createStream("collection0", bson.A{}, "showExpandedEvents", true)},
		[]specCommand{aggregateOn("collection0", d("showExpandedEvents", true))}),
		expanded("when omitted, showExpandedEvents is not sent as a part of the aggregate command", nil,
			[]specOp{createStream("collection0", bson.A{})},
			[]specCommand{aggregateOn("collection0", d("showExpandedEvents", exists(false)))}),
		expanded("when showExpandedEvents is true, new fields on change stream events are handled appropriately", nil,
			[]specOp{drop("foo"), {name: "createCollection", object: "database0", args: d("collection", "foo")},
				createStream("collection0", bson.A{}, "showExpandedEvents", true),
				insertOne("collection0", d("a", 1)), createX1("x_1"),
				{name: "rename", object: "collection0", args: d("to", "foo", "dropTarget", true)},
				iterate(d("operationType", "insert", "ns", nsOf("database0", "collection0"), "collectionUUID", exists(true))),
				iterate(d("operationType", "createIndexes", "ns", nsOf("database0", "collection0"), "operationDescription", exists(true))),
				iterate(d("operationType", "rename", "ns", nsOf("database0", "collection0"), "to", nsOf("database0", "foo"),
					"operationDescription", d("dropTarget", exists(true), "to", nsOf("database0", "foo"))))}, nil),
		expanded("when showExpandedEvents is true, createIndex events are reported", nil,
			[]specOp{createStream("collection0", a(d("$match", d("operationType", d("$ne", "create")))), "showExpandedEvents", true),
				createX1("x_1"), iterate(d("operationType", "createIndexes"))}, nil),
		expanded("when showExpandedEvents is true, dropIndexes events are reported", nil,
			[]specOp{createX1("x_1"), createStream("collection0", bson.A{}, "showExpandedEvents", true),
				{name: "dropIndex", object: "collection0", args: d("name", "x_1")}, iterate(d("operationType", "dropIndexes"))}, nil),
		expanded("when showExpandedEvents is true, create events are reported", nil,
			[]specOp{drop("foo"), createStream("database0", bson.A{}, "showExpandedEvents", true),
				{name: "createCollection", object: "database0", args: d("collection", "foo")}, iterate(d("operationType", "create"))}, nil),
		expanded("when showExpandedEvents is true, create events on views are reported", nil,
			[]specOp{drop("foo"), createStream("database0", bson.A{}, "showExpandedEvents", true),
				{name: "createCollection", object: "database0", args: d("collection", "foo", "viewOn", "testName")}, iterate(d("operationType", "create"))}, nil),
		expanded("when showExpandedEvents is true, modify events are reported", nil,
			[]specOp{createX1("x_2"), createStream("collection0", bson.A{}, "showExpandedEvents", true),
				{name: "runCommand", object: "database0", args: d("command", d("collMod", "collection0"))}, iterate(d("operationType", "modify"))}, nil),
		expanded("when showExpandedEvents is true, shardCollection events are reported", []specReq{{topologies: []string{"sharded"}}},
			[]specOp{drop("shardedCollection")}, nil))

	// change-streams
	mainReq := []specReq{{min: "3.6", topologies: []string{"replicaset"}}}
	main := func(name string, req []specReq, ops []specOp, events []specCommand, extra bool) specTest {
		return specTest{file: "change-streams", name: name, fileReq: mainReq, req: req, setup: collection0,
			ignore: monitorNoKill, ops: ops, events: events, extra: extra}
	}
	since := func(v string) []specReq { return []specReq{{min: v}} }
	until := func(v string) []specReq { return []specReq{{max: v}} }
	inserted := func(coll string, doc bson.D) bson.D {
		return d("operationType", "insert", "ns", nsOf("database0", coll), "fullDocument", append(doc, bson.E{Key: "_id", Value: exists(true)}))
	}
	commented := func(comment any) []specCommand {
		return []specCommand{{command: d("aggregate", "collection0", "pipeline", a(d("$changeStream", d())), "comment", comment)}}
	}
	plain := createStream("collection0", bson.A{})
	insert1 := insertOne("collection0", d("_id", 1, "a", 1))
	add(main("Test array truncation", since("4.7"),
		[]specOp{insertOne("collection0", d("_id", 1, "a", 1, "array", a("foo", d("a", "bar"), 1, 2, 3))), plain,
			{name: "updateOne", object: "collection0", args: d("filter", d("_id", 1), "update", a(d("$set", d("array", a("foo", d("a", "bar"))))))},
			iterate(d("operationType", "update", "ns", nsOf("database0", "collection0"), "updateDescription", d(
				"updatedFields", d(), "removedFields", a(), "truncatedArrays", a(d("field", "array", "newSize", 2)),
				"disambiguatedPaths", unsetOrMatches(exists(true)))))}, nil, false),
		main("Test with document comment", since("4.4"), []specOp{createStream("collection0", bson.A{}, "comment", d("name", "test1"))},
			commented(d("name", "test1")), false),
		main("Test with document comment - pre 4.4", until("4.2.99"), []specOp{{name: "createChangeStream", object: "collection0",
			args: d("pipeline", bson.A{}, "comment", d("name", "test1")), err: &specErr{serverErr: true}}}, commented(d("name", "test1")), false),
		main("Test with string comment", nil, []specOp{createStream("collection0", bson.A{}, "comment", "comment")}, commented("comment"), false),
		main("Test that comment is set on getMore", since("4.4.0"),
			[]specOp{createStream("collection0", bson.A{}, "comment", d("key", "value")), insert1, iterate(nil)},
			append(commented(d("key", "value")), specCommand{command: d("insert", "collection0", "documents", a(d("_id", 1, "a", 1)))},
				specCommand{command: d("getMore", typeOf("int", "long"), "collection", "collection0", "comment", d("key", "value")), name: "getMore", db: "database0"}), false),
		main("Test that comment is not set on getMore - pre 4.4", until("4.3.99"),
			[]specOp{createStream("collection0", bson.A{}, "comment", "comment"), insert1, iterate(nil)},
			append(commented("comment"), specCommand{command: d("insert", "collection0", "documents", a(d("_id", 1, "a", 1)))},
				specCommand{command: d("getMore", typeOf("int", "long"), "collection", "collection0", "comment", exists(false)), name: "getMore", db: "database0"}), false),
		main("to field is set in a rename change event", since("4.0.1"),
			[]specOp{plain, drop("collection1"), {name: "rename", object: "collection0", args: d("to", "collection1")},
				iterate(d("operationType", "rename", "ns", nsOf("database0", "collection0"), "to", nsOf("database0", "collection1")))}, nil, false),
		main("Test unknown operationType MUST NOT err", nil,
			[]specOp{createStream("collection0", a(d("$project", d("operationType", "addedInFutureMongoDBVersion", "ns", 1)))), insert1,
				iterate(d("operationType", "addedInFutureMongoDBVersion", "ns", nsOf("database0", "collection0")))}, nil, false),
		main("Test newField added in response MUST NOT err", nil,
			[]specOp{createStream("collection0", a(d("$project", d("operationType", 1, "ns", 1, "newField", "newFieldValue")))), insert1,
				iterate(d("operationType", "insert", "ns", nsOf("database0", "collection0"), "newField", "newFieldValue"))}, nil, false),
		main("Test new structure in ns document MUST NOT err", []specReq{{min: "3.6", max: "5.2.99"}, {min: "6.0"}},
			[]specOp{createStream("collection0", a(d("$project", d("operationType", "insert", "ns.viewOn", "db.coll")))), insert1,
				iterate(d("operationType", "insert", "ns", d("viewOn", "db.coll")))}, nil, false),
		main("Test modified structure in ns document MUST NOT err", nil,
			[]specOp{createStream("collection0", a(d("$project", d("operationType", "insert", "ns", d("db", "$ns.db", "coll", "$ns.coll", "viewOn", "db.coll"))))), insert1,
				iterate(d("operationType", "insert", "ns", d("db", "database0", "coll", "collection0", "viewOn", "db.coll")))}, nil, false),
		main("Test server error on projecting out _id", since("4.2"),
			[]specOp{createStream("collection0", a(d("$project", d("_id", 0)))), insert1,
				iterateFails(specErr{code: 280, codeName: "ChangeStreamFatalError", labels: []string{"NonResumableChangeStreamError"}})}, nil, false),
		main("Test projection in change stream returns expected fields", nil,
			[]specOp{createStream("collection0", a(d("$project", d("optype", "$operationType", "ns", 1, "newField", "value")))), insert1,
				iterate(d("optype", "insert", "ns", nsOf("database0", "collection0"), "newField", "value"))}, nil, false),
		main("$changeStream must be the first stage in a change stream pipeline sent to the server", since("3.6.0"),
			[]specOp{plain, insertOne("globalCollection0", d("x", 1)), iterate(insertedX())},
			[]specCommand{aggregateOn("collection0", d())}, true),
		main("The server returns change stream responses in the specified server response format", since("3.6.0"),
			[]specOp{plain, insertOne("globalCollection0", d("x", 1)), iterate(insertedX())}, nil, false),
		main("Executing a watch helper on a Collection results in notifications for changes to the specified collection", since("3.6.0"),
			[]specOp{plain, insertOne("globalDb0Collection1", d("x", 1)), insertOne("globalDb1Collection0", d("y", 2)),
				insertOne("globalCollection0", d("z", 3)), iterate(inserted("collection0", d("z", 3)))},
			[]specCommand{aggregateOn("collection0", d())}, true),
		main("Change Stream should allow valid aggregate pipeline stages", since("3.6.0"),
			[]specOp{createStream("collection0", a(d("$match", d("fullDocument.z", 3)))), insertOne("globalCollection0", d("y", 2)),
				insertOne("globalCollection0", d("z", 3)), iterate(inserted("collection0", d("z", 3)))},
			[]specCommand{aggregateOn("collection0", d(), d("$match", d("fullDocument.z", 3)))}, true),
		main("Executing a watch helper on a Database results in notifications for changes to all collections in the specified database.", since("3.8.0"),
			[]specOp{createStream("database0", bson.A{}), insertOne("globalDb0Collection1", d("x", 1)), insertOne("globalDb1Collection0", d("y", 2)),
				insertOne("globalCollection0", d("z", 3)), iterate(inserted("collection1", d("x", 1))), iterate(inserted("collection0", d("z", 3)))},
			[]specCommand{aggregateOn(1, d())}, true),
		main("Executing a watch helper on a MongoClient results in notifications for changes to all collections in all databases in the cluster.", since("3.8.0"),
			[]specOp{createStream("client0", bson.A{}), insertOne("globalDb0Collection1", d("x", 1)), insertOne("globalDb1Collection0", d("y", 2)),
				insertOne("globalCollection0", d("z", 3)), iterate(inserted("collection1", d("x", 1))),
				iterate(d("operationType", "insert", "ns", nsOf("database1", "collection0"), "fullDocument", d("y", 2, "_id", exists(true)))),
				iterate(inserted("collection0", d("z", 3)))},
			[]specCommand{{command: d("aggregate", 1, "cursor", d(), "pipeline", a(d("$changeStream", d("allChangesForCluster", true)))), name: "aggregate", db: "admin"}}, true),
		main("Test insert, update, replace, and delete event types", since("3.6.0"),
			[]specOp{plain, insertOne("globalCollection0", d("x", 1)),
				{name: "updateOne", object: "globalCollection0", args: d("filter", d("x", 1), "update", d("$set", d("x", 2)))},
				{name: "replaceOne", object: "globalCollection0", args: d("filter", d("x", 2), "replacement", d("x", 3))},
				{name: "deleteOne", object: "globalCollection0", args: d("filter", d("x", 3))},
				iterate(inserted("collection0", d("x", 1))),
				iterate(d("operationType", "update", "ns", nsOf("database0", "collection0"), "updateDescription", d("updatedFields", d("x", 2),
					"removedFields", a(), "truncatedArrays", unsetOrMatches(exists(true)), "disambiguatedPaths", unsetOrMatches(exists(true))))),
				iterate(d("operationType", "replace", "ns", nsOf("database0", "collection0"), "fullDocument", d("x", 3, "_id", exists(true)))),
				iterate(d("operationType", "delete", "ns", nsOf("database0", "collection0")))},
			[]specCommand{aggregateOn("collection0", d())}, true),
		main("Test rename and invalidate event types", since("4.0.1"),
			[]specOp{plain, drop("collection1"), {name: "rename", object: "globalCollection0", args: d("to", "collection1")},
				iterate(d("operationType", "rename", "ns", nsOf("database0", "collection0"), "to", nsOf("database0", "collection1"))),
				iterate(d("operationType", "invalidate"))},
			[]specCommand{aggregateOn("collection0", d())}, true),
		main("Test drop and invalidate event types", since("4.0.1"),
			[]specOp{plain, drop("collection0"), iterate(d("operationType", "drop", "ns", nsOf("database0", "collection0"))), iterate(d("operationType", "invalidate"))},
			[]specCommand{aggregateOn("collection0", d())}, true),
		main("Test consecutive resume", since("4.1.7"),
			[]specOp{failPointOp("failCommand", d("times", 2), d("failCommands", a("getMore"), "closeConnection", true)),
				createStream("collection0", bson.A{}, "batchSize", 1),
				insertOne("globalCollection0", d("x", 1)), insertOne("globalCollection0", d("x", 2)), insertOne("globalCollection0", d("x", 3)),
				iterate(inserted("collection0", d("x", 1))), iterate(inserted("collection0", d("x", 2))), iterate(inserted("collection0", d("x", 3)))},
			[]specCommand{{command: d("aggregate", "collection0", "cursor", d("batchSize", 1), "pipeline", a(d("$changeStream", d()))), name: "aggregate", db: "database0"}}, true),
		main("Test wallTime field is set in a change event", since("6.0.0"),
			[]specOp{plain, insert1, iterate(d("operationType", "insert", "ns", nsOf("database0", "collection0"), "wallTime", exists(true)))}, nil, false))
	return tests
}
