package pitr

import (
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// writePlan is how a document event is applied: its write models, or, for an update
// that update operators cannot express, a read-modify-replace.
type writePlan struct {
	models     []mongo.WriteModel
	ud         *updateDescription
	clientSide bool
	// lookedUp: an update applied as its event's full document (dotsUncertain).
	lookedUp bool
}

// errAmbiguousPath is an update whose paths replay cannot read for certain.
var errAmbiguousPath = errors.New("ambiguous update path")

// planWrite turns a document event into writes. Inserts and replaces are upserts of the
// full document (so that applying one again, or onto a later state, yields that
// document), except that an insert can go as an insert (asInsert), cheaper for the
// server, when a duplicate _id is then applied as an upsert; deletes go by document
// key; updates go by their updateDescription, never by full_document, which
// updateLookup reads later than the event.
func planWrite(e *oplogstore.Event, asInsert bool) (writePlan, error) {
	filter := e.DocKey
	switch e.OpType {
	case "insert", "replace":
		if e.FullDocument == nil {
			return writePlan{}, fmt.Errorf("%s event at %s on %s has no full_document", e.OpType, oplogstore.FormatTS(e.TS), e.Namespace())
		}
		if filter == nil {
			id, err := e.FullDocument.LookupErr("_id")
			if err != nil {
				return writePlan{}, fmt.Errorf("%s event at %s on %s has neither doc_key nor an _id in full_document", e.OpType, oplogstore.FormatTS(e.TS), e.Namespace())
			}
			filter, _ = bson.Marshal(bson.D{{Key: "_id", Value: id}})
		}
		if asInsert && e.OpType == "insert" {
			return writePlan{models: []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(e.FullDocument)}}, nil
		}
		return writePlan{models: []mongo.WriteModel{replaceModel(filter, e.FullDocument, true)}}, nil
	case "delete":
		if filter == nil {
			return writePlan{}, fmt.Errorf("delete event at %s on %s has no doc_key", oplogstore.FormatTS(e.TS), e.Namespace())
		}
		return writePlan{models: []mongo.WriteModel{mongo.NewDeleteOneModel().SetFilter(filter)}}, nil
	case "update":
		if filter == nil {
			return writePlan{}, fmt.Errorf("update event at %s on %s has no doc_key", oplogstore.FormatTS(e.TS), e.Namespace())
		}
		ud, err := parseUpdateDescription(e.UpdateDescription)
		if err != nil {
			return writePlan{}, fmt.Errorf("update event at %s on %s: %w", oplogstore.FormatTS(e.TS), e.Namespace(), err)
		}
		if ud.dotsUncertain() {
			// The event cannot say which of its dots are inside field names. Where the
			// document has none, they all separate names; else the document updateLookup
			// read (a little after the event) replaces it, or, without one, the target's
			// document is read to tell (docs/pitr.md).
			switch {
			case e.FullDocument == nil:
				return writePlan{ud: ud, clientSide: true}, nil
			case hasFieldNameWithDot(e.FullDocument):
				return writePlan{models: []mongo.WriteModel{replaceModel(filter, e.FullDocument, false)}, lookedUp: true}, nil
			}
		}
		if !ud.operatorsExpress() {
			return writePlan{ud: ud, clientSide: true}, nil
		}
		p := writePlan{ud: ud}
		for _, u := range ud.operatorUpdates() {
			p.models = append(p.models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(u))
		}
		return p, nil
	}
	return writePlan{}, fmt.Errorf("not a document event: %q", e.OpType)
}

// writeOptions are those of every document write of a replay: in order, and past the
// target's validator. The source's server validated each write against the validator it
// had then; a replay started before the base's time writes earlier documents under
// later validators, which need not accept them.
func writeOptions() *options.BulkWriteOptionsBuilder {
	return options.BulkWrite().SetOrdered(true).SetBypassDocumentValidation(true)
}

// replaceModel makes the document that filter selects be doc (upsert: or inserts it). A
// replacement document cannot hold a top-level field whose name starts with $, which
// MongoDB 5.0 and later store (inserts and pipeline updates write them); the server's
// answer for those is a pipeline update that replaces the document by the literal one
// ($replaceWith of $literal: nothing in it is read as an expression), as
// https://www.mongodb.com/docs/manual/core/dot-dollar-considerations/dollar-prefix/
// describes. Other documents go as a plain replacement, which servers take faster.
func replaceModel(filter any, doc bson.Raw, upsert bool) mongo.WriteModel {
	if !hasTopLevelDollarField(doc) {
		return mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(doc).SetUpsert(upsert)
	}
	literal := mongo.Pipeline{{{Key: "$replaceWith", Value: bson.D{{Key: "$literal", Value: doc}}}}}
	return mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(literal).SetUpsert(upsert)
}

func hasTopLevelDollarField(doc bson.Raw) bool {
	elements, _ := doc.Elements()
	for _, el := range elements {
		if strings.HasPrefix(el.Key(), "$") {
			return true
		}
	}
	return false
}

// startsWithID tells whether doc's first field is its _id, as in every document a
// server stores.
func startsWithID(doc bson.Raw) bool {
	first, err := bsoncore.Document(doc).IndexErr(0)
	return err == nil && string(first.KeyBytes()) == "_id"
}

func docID(e *oplogstore.Event) bson.RawValue {
	if e.DocKey != nil {
		return e.DocKey.Lookup("_id")
	}
	return e.FullDocument.Lookup("_id")
}
