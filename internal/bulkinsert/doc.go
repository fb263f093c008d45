// Package bulkinsert builds insert commands from documents already in BSON, for replay to
// send documents read from the oplog store to a target unchanged. The driver's
// InsertMany and BulkWrite decode every document again to find or make its _id, and
// encode a command given as Go values field by field: work that a document already
// whole, with its _id, does not need. A command built here is one document the
// driver sends as it is (RunCommand), and whose write errors it reports as a
// mongo.WriteException.
package bulkinsert
