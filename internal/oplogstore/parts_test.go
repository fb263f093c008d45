package oplogstore

import (
	"bytes"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// storeDocument is an event document of about size bytes, as the collector builds one.
func storeDocument(t *testing.T, size int) bson.Raw {
	t.Helper()
	doc, err := bson.Marshal(bson.D{
		{Key: FieldID, Value: "8263F0A1B2000000012B"},
		{Key: FieldResumeToken, Value: bson.D{{Key: "_data", Value: "8263F0A1B2000000012B"}}},
		{Key: FieldClusterName, Value: "prod"},
		{Key: FieldTS, Value: bson.Timestamp{T: 1700000000, I: 3}},
		{Key: FieldWall, Value: bson.DateTime(1700000000123)},
		{Key: FieldOpType, Value: "insert"},
		{Key: FieldNamespace, Value: "shop.orders"},
		{Key: FieldFullDocument, Value: bson.D{{Key: "_id", Value: 1}, {Key: "blob", Value: strings.Repeat("x", size)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestSplitKeepsADocumentThatFits(t *testing.T) {
	doc := storeDocument(t, 1000)
	parts, err := Split(doc)
	if err != nil || len(parts) != 1 || !bytes.Equal(parts[0], doc) {
		t.Fatalf("Split of a small document = %d parts, %v; want the document itself", len(parts), err)
	}
	if _, _, ok := PartOf(doc); ok {
		t.Error("PartOf says a whole document is a part")
	}
}

func TestSplitAndJoinAnOversizedDocument(t *testing.T) {
	doc := storeDocument(t, MaxDocumentSize) // just over the limit once the store's fields are added
	if len(doc) <= MaxDocumentSize {
		t.Fatalf("test document of %d bytes fits; it must not", len(doc))
	}
	parts, err := Split(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3 for %d bytes in parts of %d", len(parts), len(doc), PartDataSize)
	}
	for i, p := range parts {
		if len(p) > MaxDocumentSize {
			t.Errorf("part %d is %d bytes, over the server's limit", i+1, len(p))
		}
		k, n, ok := PartOf(p)
		if !ok || k != i+1 || n != 3 {
			t.Errorf("part %d: PartOf = %d, %d, %v", i+1, k, n, ok)
		}
		for _, key := range []string{FieldResumeToken, FieldClusterName, FieldTS, FieldWall, FieldOpType, FieldNamespace} {
			if !p.Lookup(key).Equal(doc.Lookup(key)) {
				t.Errorf("part %d: %s = %v, want the event's %v", i+1, key, p.Lookup(key), doc.Lookup(key))
			}
		}
	}
	if id := parts[0].Lookup(FieldID).StringValue(); id != "8263F0A1B2000000012B" {
		t.Errorf("first part's _id %q: want the event's, so a second write is a duplicate", id)
	}
	if id := parts[2].Lookup(FieldID).StringValue(); id != "8263F0A1B2000000012B:3" {
		t.Errorf("third part's _id %q", id)
	}

	shuffled := []bson.Raw{parts[2], parts[0], parts[1]}
	joined, err := Join(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(joined, doc) {
		t.Error("joined parts differ from the document")
	}

	for name, set := range map[string][]bson.Raw{
		"missing":  {parts[0], parts[2]},
		"repeated": {parts[0], parts[1], parts[1]},
		"whole":    {doc},
	} {
		if _, err := Join(set); err == nil {
			t.Errorf("Join of a set with a part %s: no error", name)
		}
	}
	other := storeDocument(t, MaxDocumentSize)
	other = bytes.Replace(other, []byte("8263F0A1B2000000012B"), []byte("8263F0A1B2000000099B"), -1)
	otherParts, err := Split(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join([]bson.Raw{parts[0], otherParts[1], parts[2]}); err == nil {
		t.Error("Join accepted a part of another event")
	}
}
