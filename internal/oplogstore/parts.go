package oplogstore

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// MaxDocumentSize is the largest document a MongoDB server stores (BSONObjMaxUserSize,
// 16 MiB). A change event can be larger than that once the store's own fields are
// added: a source document of 16 MiB less a few hundred bytes already is.
const MaxDocumentSize = 16 << 20

// PartSeparator joins an oversized event's _id and a part's number in the part's _id.
// It is no hex digit, so the _ids from "<_id>:" up to PartsEnd(_id) are that event's
// parts and no other event's.
const PartSeparator = ":"

// PartsEnd is the least _id above every part of the event whose _id is id: id followed
// by the character after PartSeparator.
func PartsEnd(id string) string { return id + string(rune(PartSeparator[0]+1)) }

// PartDataSize is how many bytes of an oversized document each part carries: far
// enough below MaxDocumentSize for the part's own fields and the insert command.
const PartDataSize = 8 << 20

// partHeaderFields are copied into every part, so that window queries (cluster_name,
// ts), retention (wall) and a reader's filters (op_type, ns) see the parts as they
// would see the whole document.
var partHeaderFields = []string{FieldResumeToken, FieldClusterName, FieldTS, FieldWall, FieldOpType, FieldNamespace}

// Split stores doc, a store document, in as many documents as the server accepts: doc
// itself when it fits, else parts of at most PartDataSize bytes of it each. The first
// part keeps doc's _id, so writing it twice is still a no-op; part k > 1 has
// "<_id>:<k>" (PartSeparator), which sorts after the _id and before the next event's.
// The parts' data, joined in order, is doc byte for byte (Join).
func Split(doc bson.Raw) ([]bson.Raw, error) {
	if len(doc) <= MaxDocumentSize {
		return []bson.Raw{doc}, nil
	}
	id, ok := doc.Lookup(FieldID).StringValueOK()
	if !ok {
		return nil, errors.New("an oversized store document needs a string _id to be stored in parts")
	}
	of := (len(doc) + PartDataSize - 1) / PartDataSize
	parts := make([]bson.Raw, 0, of)
	for k := 1; k <= of; k++ {
		partID := id
		if k > 1 {
			partID = id + PartSeparator + strconv.Itoa(k)
		}
		start, part := bsoncore.AppendDocumentStart(nil)
		part = bsoncore.AppendStringElement(part, FieldID, partID)
		for _, key := range partHeaderFields {
			if v, err := doc.LookupErr(key); err == nil {
				part = bsoncore.AppendValueElement(part, key, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
			}
		}
		header, part := bsoncore.AppendDocumentElementStart(part, FieldPart)
		part = bsoncore.AppendInt32Element(part, "part", int32(k))
		part = bsoncore.AppendInt32Element(part, "of", int32(of))
		part, _ = bsoncore.AppendDocumentEnd(part, header)
		data := doc[(k-1)*PartDataSize : min(k*PartDataSize, len(doc))]
		part = bsoncore.AppendBinaryElement(part, FieldPartData, bson.TypeBinaryGeneric, data)
		part, err := bsoncore.AppendDocumentEnd(part, start)
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
	}
	return parts, nil
}

// PartOf tells whether doc is a part of an oversized document, and which: part k of n.
func PartOf(doc bson.Raw) (k, n int, ok bool) {
	header, isDoc := doc.Lookup(FieldPart).DocumentOK()
	if !isDoc {
		return 0, 0, false
	}
	part, ok1 := header.Lookup("part").AsInt64OK()
	of, ok2 := header.Lookup("of").AsInt64OK()
	if !ok1 || !ok2 || part < 1 || of < 1 || part > of {
		return 0, 0, false
	}
	return int(part), int(of), true
}

// Join rebuilds the store document that Split cut into parts, given every part in any
// order. It refuses a set with a part missing, repeated or of another document.
func Join(parts []bson.Raw) (bson.Raw, error) {
	type numbered struct {
		k    int
		data []byte
	}
	var (
		pieces []numbered
		of     int
		token  bson.RawValue
	)
	for _, p := range parts {
		k, n, ok := PartOf(p)
		if !ok {
			return nil, errors.New("not a part of an oversized event: no valid store_part {part, of}")
		}
		subtype, data, ok := p.Lookup(FieldPartData).BinaryOK()
		if !ok || subtype != bson.TypeBinaryGeneric {
			return nil, fmt.Errorf("part %d of %d has no binary %s", k, n, FieldPartData)
		}
		if of == 0 {
			of, token = n, p.Lookup(FieldResumeToken)
		} else if n != of || !token.Equal(p.Lookup(FieldResumeToken)) {
			return nil, fmt.Errorf("part %d of %d belongs to another event than the first part given", k, n)
		}
		pieces = append(pieces, numbered{k, data})
	}
	slices.SortFunc(pieces, func(a, b numbered) int { return a.k - b.k })
	if len(pieces) != of {
		return nil, fmt.Errorf("have %d parts of an event stored in %d", len(pieces), of)
	}
	var doc []byte
	for i, p := range pieces {
		if p.k != i+1 {
			return nil, fmt.Errorf("part %d of %d is missing or given twice", i+1, of)
		}
		doc = append(doc, p.data...)
	}
	if err := bson.Raw(doc).Validate(); err != nil {
		return nil, fmt.Errorf("the joined parts are not a valid document: %w", err)
	}
	return doc, nil
}
