package oplogstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TokenTime reads the cluster time a resume token stands for. A server's _data is the
// upper-case hex of a KeyString whose first value is the event's cluster time: the
// byte 0x82 (KeyString's type byte for a Timestamp), then the timestamp's 8 bytes, big
// endian. That is how a post-batch resume token, which comes with no event, tells how
// far the stream has read. ok is false for a token of another shape.
func TokenTime(token bson.Raw) (ts bson.Timestamp, ok bool) {
	data, isString := token.Lookup("_data").StringValueOK()
	if !isString || len(data) < 18 || data[:2] != "82" {
		return bson.Timestamp{}, false
	}
	raw, err := hex.DecodeString(data[2:18])
	if err != nil {
		return bson.Timestamp{}, false
	}
	be := func(b []byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	return bson.Timestamp{T: be(raw[:4]), I: be(raw[4:8])}, true
}

// Checkpoint is the position a source's capture has saved: every event up to it is in
// the store (the collector saves a position only once the events before it are written
// with a majority acknowledgement). Known is false when no position is saved.
type Checkpoint struct {
	Known bool
	TS    bson.Timestamp
	// FromToken is true when the time was read from the token itself, as it always is
	// when the token tells one.
	FromToken bool
}

// ReadCheckpoint reads the saved position of source from db: the time the saved token
// stands for. The cluster_time beside it is used only for a token that tells no time:
// another tool saving the token (the old collector) leaves that field as it was.
func ReadCheckpoint(ctx context.Context, db *mongo.Database, source string) (Checkpoint, error) {
	var doc struct {
		Token       bson.Raw        `bson:"token"`
		ClusterTime *bson.Timestamp `bson:"cluster_time"`
	}
	err := db.Collection(TokensCollection(source)).FindOne(ctx, bson.D{{Key: FieldID, Value: TokenID(source)}}).Decode(&doc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return Checkpoint{}, nil
	case err != nil:
		return Checkpoint{}, fmt.Errorf("reading %s: %w", TokensCollection(source), err)
	}
	if ts, ok := TokenTime(doc.Token); ok {
		return Checkpoint{Known: true, TS: ts, FromToken: true}, nil
	}
	if doc.ClusterTime != nil && !doc.ClusterTime.IsZero() {
		return Checkpoint{Known: true, TS: *doc.ClusterTime}, nil
	}
	return Checkpoint{}, fmt.Errorf("%s: the saved token %s tells no time, and the document has no %s", TokensCollection(source), doc.Token, TokenFieldClusterTime)
}
