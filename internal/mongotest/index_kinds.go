package mongotest

import (
	"fmt"
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// What the index kinds and options change at write time, as mongod
// enforces it: partial and sparse indexes hold some documents only (and a
// unique one constrains only those), a hashed key refuses an array, a
// 2dsphere key refuses what is no geometry. Text, wildcard and hashed keys
// keep no entries here: no query uses an index (queries scan), so only
// these write-time rules matter.

// collationDefaults are the documented defaults mongod fills into a
// collation it stores (https://www.mongodb.com/docs/manual/reference/collation/),
// with the ICU version of MongoDB 7.0 and 8.0; locales whose own defaults
// differ (backwards for fr_CA, caseFirst for some) are not modelled.
var collationDefaults = []query.Field{
	{Key: "caseLevel", Val: query.BoolValue(false)},
	{Key: "caseFirst", Val: query.StringValue("off")},
	{Key: "strength", Val: query.Int32Value(3)},
	{Key: "numericOrdering", Val: query.BoolValue(false)},
	{Key: "alternate", Val: query.StringValue("non-ignorable")},
	{Key: "maxVariable", Val: query.StringValue("punct")},
	{Key: "normalization", Val: query.BoolValue(false)},
	{Key: "backwards", Val: query.BoolValue(false)},
	{Key: "version", Val: query.StringValue("57.1")},
}

// normalizeCollation checks a collation and returns it as mongod stores
// it, or nil for the simple collation (which mongod does not store).
func normalizeCollation(v bsoncore.Value) (bsoncore.Document, error) {
	d, ok := v.DocumentOK()
	if !ok {
		return nil, typeError("collation", v, "object")
	}
	locale, ok := d.Lookup("locale").StringValueOK()
	if !ok {
		return nil, errorf(codeFailedToParse, "Required field locale is missing or not a string in collation %s", d)
	}
	if locale == "simple" {
		if len(query.Fields(d)) > 1 {
			return nil, errorf(codeFailedToParse, "Collation locale 'simple' takes no other field: %s", d)
		}
		return nil, nil
	}
	out := []query.Field{{Key: "locale", Val: query.StringValue(locale)}}
	for _, def := range collationDefaults {
		val := def.Val
		if given, err := d.LookupErr(def.Key); err == nil {
			if given.Type != def.Val.Type && !(given.IsNumber() && def.Val.IsNumber()) {
				return nil, errorf(codeTypeMismatch, "Collation field %s must be of type %s, found %s", def.Key, query.TypeName(def.Val.Type), query.TypeName(given.Type))
			}
			val = given
		}
		out = append(out, query.Field{Key: def.Key, Val: val})
	}
	for _, f := range query.Fields(d) {
		if f.Key != "locale" && !hasField(collationDefaults, f.Key) {
			return nil, errorf(codeFailedToParse, "Unknown collation field %s in %s", f.Key, d)
		}
	}
	return query.BuildDoc(out), nil
}

func hasField(fields []query.Field, key string) bool {
	for _, f := range fields {
		if f.Key == key {
			return true
		}
	}
	return false
}

// checkPartialFilter allows what a partialFilterExpression may hold
// (https://www.mongodb.com/docs/manual/core/index-partial/): equality,
// $exists: true, $gt $gte $lt $lte, $type, $in, and $and and $or of those.
func checkPartialFilter(d bsoncore.Document, depth int) error {
	for _, f := range query.Fields(d) {
		switch {
		case f.Key == "$and" || f.Key == "$or":
			if depth > 2 {
				return errorf(codeCannotCreateIndex, "Error in specification %s :: caused by :: %s nested too deeply in a partial index", d, f.Key)
			}
			for _, sub := range query.ArrayValues(f.Val) {
				sd, ok := sub.DocumentOK()
				if !ok {
					return errorf(codeBadValue, "%s entries need to be full objects", f.Key)
				}
				if err := checkPartialFilter(sd, depth+1); err != nil {
					return err
				}
			}
		case strings.HasPrefix(f.Key, "$"):
			return errorf(codeCannotCreateIndex, "Error in specification %s :: caused by :: Expression not supported in partial index: %s", d, f.Key)
		case f.Val.Type == bsoncore.TypeEmbeddedDocument && isOperatorDoc(f.Val.Document()):
			for _, o := range query.Fields(f.Val.Document()) {
				switch {
				case o.Key == "$exists" && query.Truthy(o.Val):
				case o.Key == "$eq" || o.Key == "$gt" || o.Key == "$gte" || o.Key == "$lt" || o.Key == "$lte" || o.Key == "$type" || o.Key == "$in":
				default:
					return errorf(codeCannotCreateIndex, "Error in specification %s :: caused by :: Expression not supported in partial index: %s: %s", d, f.Key, f.Val)
				}
			}
		case f.Val.Type == bsoncore.TypeRegex:
			return errorf(codeCannotCreateIndex, "Error in specification %s :: caused by :: Expression not supported in partial index: %s: %s", d, f.Key, f.Val)
		}
	}
	return nil
}

func isOperatorDoc(d bsoncore.Document) bool {
	e, err := d.IndexErr(0)
	return err == nil && strings.HasPrefix(e.Key(), "$")
}

// covers reports whether the index holds doc: it matches the partial
// filter, and for a sparse index (2dsphere ones always are) has one of the
// fields, null counting as present.
func (ix *index) covers(doc bsoncore.Document) bool {
	if ix.partial != nil && !ix.partial.Matches(doc) {
		return false
	}
	switch {
	case ix.kind == "2dsphere":
		_, ok := query.LookupPath(doc, query.SplitPath(ix.special))
		return ok || hasAnyField(doc, ix.special)
	case ix.sparse:
		for _, f := range ix.fields {
			if hasAnyField(doc, f) {
				return true
			}
		}
		return false
	}
	return true
}

// hasAnyField reports whether a dotted path reaches a value in doc, through
// arrays of documents too.
func hasAnyField(doc bsoncore.Document, path string) bool {
	found := false
	query.WalkPath(query.DocValue(doc), query.SplitPath(path), func(_ bsoncore.Value, ok bool) { found = found || ok })
	return found
}

// checkSpecialKey applies a hashed or 2dsphere key's rule to doc.
func (ix *index) checkSpecialKey(doc bsoncore.Document) error {
	switch ix.kind {
	case "hashed":
		if at := arrayOnPath(doc, ix.special); at != "" {
			return &writeError{code: 16766, msg: "Error: hashed indexes do not currently support array values. Found array at path: " + at}
		}
	case "2dsphere":
		var problem geoProblem
		query.WalkPath(query.DocValue(doc), query.SplitPath(ix.special), func(v bsoncore.Value, ok bool) {
			if ok && problem == "" && v.Type != bsoncore.TypeNull {
				problem = checkGeometry(v)
			}
		})
		if problem != "" {
			return &writeError{code: 16755, msg: fmt.Sprintf("Can't extract geo keys: %s  %s", doc, problem)}
		}
	}
	return nil
}

// arrayOnPath is the prefix of path where doc holds an array, "" if none.
func arrayOnPath(doc bsoncore.Document, path string) string {
	v := query.DocValue(doc)
	parts := query.SplitPath(path)
	for i, p := range parts {
		d, ok := v.DocumentOK()
		if !ok {
			return ""
		}
		child, err := d.LookupErr(p)
		if err != nil {
			return ""
		}
		if child.Type == bsoncore.TypeArray {
			return strings.Join(parts[:i+1], ".")
		}
		v = child
	}
	return ""
}

// geoProblem is why a value is no geometry, "" when it is one; the texts
// are mongod's (S2 and GeoJSON parsing).
type geoProblem string

func invalid(format string, args ...any) geoProblem { return geoProblem(fmt.Sprintf(format, args...)) }

// checkGeometry accepts what a 2dsphere index can hold
// (https://www.mongodb.com/docs/manual/reference/geojson/): a GeoJSON
// object with valid coordinates, a legacy coordinate pair ([x, y] or
// {x, y}), or an array of those. Polygon rings must close and have four
// positions; self-intersections are not looked for (mongod's S2 check).
func checkGeometry(v bsoncore.Value) geoProblem {
	switch v.Type {
	case bsoncore.TypeArray:
		elems := query.ArrayValues(v)
		if len(elems) > 0 && elems[0].IsNumber() {
			return checkPosition(v, true)
		}
		for _, e := range elems {
			if p := checkGeometry(e); p != "" {
				return p
			}
		}
		return ""
	case bsoncore.TypeEmbeddedDocument:
		d := v.Document()
		t, isGeoJSON := d.Lookup("type").StringValueOK()
		if !isGeoJSON {
			return checkPosition(v, true)
		}
		if t == "GeometryCollection" {
			geoms, ok := d.Lookup("geometries").ArrayOK()
			if !ok {
				return invalid("GeometryCollection geometries must be an array")
			}
			vals, _ := geoms.Values()
			for _, g := range vals {
				if p := checkGeometry(g); p != "" {
					return p
				}
			}
			return ""
		}
		coords := d.Lookup("coordinates")
		if coords.Type != bsoncore.TypeArray {
			return invalid("GeoJSON coordinates must be an array, found %s", query.TypeName(coords.Type))
		}
		return checkCoordinates(t, coords)
	}
	return invalid("Point must be an array or object, instead got type %s", query.TypeName(v.Type))
}

func checkCoordinates(t string, coords bsoncore.Value) geoProblem {
	elems := query.ArrayValues(coords)
	each := func(check func(bsoncore.Value) geoProblem) geoProblem {
		for _, e := range elems {
			if e.Type != bsoncore.TypeArray {
				return invalid("%s coordinates must be nested arrays", t)
			}
			if p := check(e); p != "" {
				return p
			}
		}
		return ""
	}
	line := func(v bsoncore.Value) geoProblem {
		pts := query.ArrayValues(v)
		if len(pts) < 2 {
			return invalid("GeoJSON LineString must have at least 2 vertices")
		}
		for _, p := range pts {
			if p := checkPosition(p, false); p != "" {
				return p
			}
		}
		return ""
	}
	polygon := func(v bsoncore.Value) geoProblem {
		for _, ring := range query.ArrayValues(v) {
			pts := query.ArrayValues(ring)
			if ring.Type != bsoncore.TypeArray || len(pts) < 4 {
				return invalid("Loop must have at least 3 different vertices")
			}
			if !query.Equal(pts[0], pts[len(pts)-1]) {
				return invalid("Loop is not closed, first vertex does not equal last vertex")
			}
			if p := line(ring); p != "" {
				return p
			}
		}
		return ""
	}
	switch t {
	case "Point":
		return checkPosition(coords, false)
	case "LineString":
		return line(coords)
	case "Polygon":
		return polygon(coords)
	case "MultiPoint":
		return each(func(p bsoncore.Value) geoProblem { return checkPosition(p, false) })
	case "MultiLineString":
		return each(line)
	case "MultiPolygon":
		return each(polygon)
	}
	return invalid("unknown GeoJSON type: %s", t)
}

// checkPosition accepts a position: two numbers, a longitude in [-180, 180]
// and a latitude in [-90, 90] (a legacy pair may be a document).
func checkPosition(v bsoncore.Value, legacy bool) geoProblem {
	var nums []bsoncore.Value
	switch {
	case v.Type == bsoncore.TypeArray:
		nums = query.ArrayValues(v)
	case legacy && v.Type == bsoncore.TypeEmbeddedDocument:
		for _, f := range query.Fields(v.Document()) {
			nums = append(nums, f.Val)
		}
	default:
		return invalid("Point must be an array or object")
	}
	if len(nums) < 2 || (!legacy && len(nums) > 3) {
		return invalid("Point must only contain numeric elements")
	}
	for _, n := range nums[:2] {
		if !n.IsNumber() || math.IsNaN(n.AsFloat64()) {
			return invalid("Point must only contain numeric elements")
		}
	}
	if lng, lat := nums[0].AsFloat64(), nums[1].AsFloat64(); math.Abs(lng) > 180 || math.Abs(lat) > 90 {
		return invalid("longitude/latitude is out of bounds, lng: %v lat: %v", lng, lat)
	}
	return ""
}
