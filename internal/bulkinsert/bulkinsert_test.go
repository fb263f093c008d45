package bulkinsert

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The command is the one the driver would encode from the same values.
func TestAppendCommand(t *testing.T) {
	docs := []bson.Raw{mustMarshal(t, bson.D{{Key: "_id", Value: 1}}), mustMarshal(t, bson.D{{Key: "_id", Value: "two"}, {Key: "x", Value: bson.A{1}}})}
	fields := mustMarshal(t, bson.D{{Key: "ordered", Value: false}, {Key: "bypassDocumentValidation", Value: true}})
	got := AppendCommand([]byte("prefix"), "c", docs, fields)
	want := mustMarshal(t, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{docs[0], docs[1]}},
		{Key: "ordered", Value: false}, {Key: "bypassDocumentValidation", Value: true}})
	if !bytes.Equal(got[len("prefix"):], want) || string(got[:len("prefix")]) != "prefix" {
		t.Fatalf("got  %v\nwant %v", bson.Raw(got[len("prefix"):]), want)
	}
	if cmd := AppendCommand(nil, "c", docs[:1], nil); !bytes.Equal(cmd, mustMarshal(t, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{docs[0]}}})) {
		t.Fatalf("without fields: %v", bson.Raw(cmd))
	}
}

func TestChunk(t *testing.T) {
	small := make(bson.Raw, 1<<20)
	large := make(bson.Raw, 16<<20)
	for _, c := range []struct {
		name string
		docs []bson.Raw
		want int
	}{
		{"all that fit", []bson.Raw{small, small, small}, 3},
		{"up to 15 MiB", []bson.Raw{small, small, small, small, small, small, small, small, small, small, small, small, small, small, small, small}, 15},
		{"a large one alone", []bson.Raw{large, small}, 1},
		{"the large one next time", []bson.Raw{small, large}, 1},
	} {
		if got := Chunk(c.docs); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func mustMarshal(t *testing.T, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
