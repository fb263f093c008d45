package pitr

import (
	"cmp"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An update whose paths update operators address exactly (operatorsExpress) goes to the
// target as update operators (operatorUpdates): the target's server then changes the
// document as the source's did. Others go read-modify-replace (update_document.go).

// operatorsExpress tells whether update operators address exactly this path: not when
// a field name holds a dot (operators would split it), starts with $ or is empty (they
// refuse it). A numeric component is an index to operators in an array and a field name
// in a document, as the source's document had it when the target's is the same.
func (p fieldPath) operatorsExpress() bool {
	for _, part := range p {
		if part.kind == fieldName && (part.name == "" || strings.Contains(part.name, ".") || strings.HasPrefix(part.name, "$")) {
			return false
		}
	}
	return true
}

// operatorsExpress tells whether the whole update can go as update operators.
func (ud *updateDescription) operatorsExpress() bool {
	for _, u := range ud.updated {
		// $set takes updatedFields as the event has them: with no dot inside a
		// component, each key is its path's components joined by dots.
		if !u.path.operatorsExpress() {
			return false
		}
	}
	for _, p := range ud.removed {
		if !p.operatorsExpress() {
			return false
		}
	}
	for _, t := range ud.truncated {
		if !t.path.operatorsExpress() {
			return false
		}
	}
	return true
}

// operatorUpdates are the update operator documents that apply the event, in order:
// each truncation first (a $push of nothing with $slice: the array's first newSize
// elements; one per array, as two could nest), then $set of updatedFields (as the
// event has them, in as many steps as their order needs, see setSteps) and $unset of
// removedFields.
func (ud *updateDescription) operatorUpdates() []bson.D {
	var updates []bson.D
	for _, t := range ud.truncated {
		updates = append(updates, bson.D{{Key: "$push", Value: bson.D{{Key: t.path.dotted(), Value: bson.D{
			{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: t.newSize},
		}}}}})
	}
	var set bson.D
	if steps := ud.setSteps(); len(steps) == 1 {
		set = append(set, bson.E{Key: "$set", Value: ud.updatedFields})
	} else {
		for _, step := range steps {
			fields := make(bson.D, len(step))
			for i, u := range step {
				fields[i] = bson.E{Key: u.path.dotted(), Value: u.value}
			}
			updates = append(updates, bson.D{{Key: "$set", Value: fields}})
		}
	}
	if len(ud.removed) > 0 {
		unset := make(bson.D, len(ud.removed))
		for i, p := range ud.removed {
			unset[i] = bson.E{Key: p.dotted(), Value: ""}
		}
		set = append(set, bson.E{Key: "$unset", Value: unset})
	}
	if set != nil {
		updates = append(updates, set)
	}
	return updates
}

// setSteps splits updatedFields into $set steps that create new fields in the event's
// order. A server appends the fields an update creates to their document, and creates
// those of one $set in the order of their names (by number for numeric names: "Update
// Operators", https://www.mongodb.com/docs/manual/reference/operator/update/#behavior),
// while the event lists them in the order the source's update made them (a pipeline
// makes them in its own order). Only siblings can be new together: a path with a dot
// comes from a sub-diff of a document or array that existed (mongod's
// change_stream_document_diff_parser.cpp), so fields under different parents never
// change each other's places. A step ends where a field would come, among its siblings
// of the step, before one the event lists earlier.
func (ud *updateDescription) setSteps() [][]pathValue {
	var steps [][]pathValue
	last := map[string]pathPart{} // by parent: the last sibling in the current step
	for _, u := range ud.updated {
		parent, leaf := u.path[:len(u.path)-1].dotted(), u.path[len(u.path)-1]
		if before, ok := last[parent]; len(steps) == 0 || ok && comparePathParts(leaf, before) <= 0 {
			steps = append(steps, nil)
			clear(last)
		}
		steps[len(steps)-1] = append(steps[len(steps)-1], u)
		last[parent] = leaf
	}
	return steps
}

// comparePathParts orders two field names as a server's update applies them: by name,
// two numbers by number.
func comparePathParts(a, b pathPart) int {
	x, xErr := strconv.Atoi(a.name)
	y, yErr := strconv.Atoi(b.name)
	if xErr == nil && yErr == nil && x >= 0 && y >= 0 {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a.name, b.name)
}
