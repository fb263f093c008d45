package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// documentFields are an event's fullDocument and fullDocumentBeforeChange,
// as the stream's options ask for them
// (https://www.mongodb.com/docs/manual/changeStreams/#change-streams-with-document-pre--and-post-images):
// the document of an insert or replace; for an update, the document now
// (updateLookup) or the post-image; for updates, replaces and deletes, the
// pre-image. Images exist for writes made while the collection had
// changeStreamPreAndPostImages; without one, whenAvailable gives null and
// required fails with 47 NoMatchingDocument, as mongod.
func (cs *changeStream) documentFields(s *Server, e *event) ([]query.Field, error) {
	var f []query.Field
	switch {
	case e.fullDoc != nil:
		f = append(f, query.Field{Key: "fullDocument", Val: query.DocValue(e.fullDoc)})
	case e.op == "update" && cs.lookup:
		// updateLookup returns the document as it is now, or null once deleted.
		v := query.NullValue
		if c := s.collLocked(e.db, e.coll); c != nil {
			if doc := c.committedByID(e.docKey.Lookup("_id")); doc != nil {
				v = query.DocValue(doc)
			}
		}
		f = append(f, query.Field{Key: "fullDocument", Val: v})
	case e.op == "update" && cs.postImage != "":
		v, err := image(e.postImage, cs.postImage, e, "post-image", "all update events")
		if err != nil {
			return nil, err
		}
		f = append(f, query.Field{Key: "fullDocument", Val: v})
	}
	if cs.preImage != "" && (e.op == "update" || e.op == "replace" || e.op == "delete") {
		v, err := image(e.preImage, cs.preImage, e, "pre-image", "all update, delete and replace events")
		if err != nil {
			return nil, err
		}
		f = append(f, query.Field{Key: "fullDocumentBeforeChange", Val: v})
	}
	return f, nil
}

func image(doc bsoncore.Document, mode string, e *event, kind, scope string) (bsoncore.Value, error) {
	switch {
	case doc != nil:
		return query.DocValue(doc), nil
	case mode == "required":
		return bsoncore.Value{}, errorf(codeNoMatchingDocument, "Change stream was configured to require a %s for %s, but the %s was not found for event: {operationType: %q, ns: {db: %q, coll: %q}, documentKey: %s}",
			kind, scope, kind, e.op, e.db, e.coll, e.docKey)
	}
	return query.NullValue, nil
}
