package query

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func doc(t *testing.T, d bson.D) bsoncore.Document {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WithID stores _id first, whatever the document it is given; a document that
// already has it first (most inserts) comes back as a copy of its own bytes.
func TestWithID(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       bson.D
		id       any // nil: the document's own
		want     bson.D
		sameAsIn bool
	}{
		{name: "first already", in: bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: 1}},
			want: bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: 1}}, sameAsIn: true},
		{name: "moved first", in: bson.D{{Key: "x", Value: 1}, {Key: "_id", Value: "a"}},
			want: bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: 1}}},
		{name: "given id added", in: bson.D{{Key: "x", Value: 1}}, id: "b",
			want: bson.D{{Key: "_id", Value: "b"}, {Key: "x", Value: 1}}},
		{name: "a second _id is not kept", in: bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: 1}, {Key: "_id", Value: "a"}},
			want: bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: 1}}},
		{name: "an equal id of another type is the document's own", in: bson.D{{Key: "_id", Value: int64(1)}, {Key: "x", Value: 1}}, id: int32(1),
			want: bson.D{{Key: "_id", Value: int64(1)}, {Key: "x", Value: 1}}},
		{name: "another id is the document's own, for the immutable-field check", in: bson.D{{Key: "_id", Value: "a"}}, id: "b",
			want: bson.D{{Key: "_id", Value: "a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := doc(t, tc.in)
			var id Value
			if tc.id != nil {
				id = MarshalValue(tc.id)
			}
			got := WithID(in, id)
			if want := doc(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("got %v, want %v", bson.Raw(got), bson.Raw(want))
			}
			if tc.sameAsIn {
				got[len(got)-2] ^= 0xff // its own copy: changing it leaves the request's bytes alone
				if bytes.Equal(got, in) {
					t.Fatal("WithID returned the input's bytes, not a copy")
				}
			}
		})
	}
}
