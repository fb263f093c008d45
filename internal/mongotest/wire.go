//lint:file-ignore SA1019 wiremessage deprecates OP_QUERY (OpQuery, ReadQuery*), but drivers still open connections with the legacy OP_QUERY handshake, which must still be answered.

package mongotest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// Wire protocol limits and flags, from https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/.
const (
	maxMessageSize    = 48_000_000
	maxBSONObjectSize = 16 * 1024 * 1024
	headerSize        = 16

	msgChecksumPresent = 1 << 0
	msgMoreToCome      = 1 << 1
	msgExhaustAllowed  = 1 << 16
	// The low 16 bits are "required" flags: a receiver must reject unknown ones.
	msgRequiredBits = 0xFFFF
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// request is one decoded client message. Document sequences (OP_MSG kind 1)
// are folded into the body as arrays, so handlers see one command document.
type request struct {
	requestID  int32
	legacy     bool // OP_QUERY: the reply must be an OP_REPLY
	moreToCome bool // the client expects no reply
	body       bsoncore.Document
	db         string
}

// readRequest reads and decodes one message. Any error means the stream can
// no longer be trusted and the connection must be closed.
func readRequest(r io.Reader) (*request, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	length := int32(binary.LittleEndian.Uint32(hdr[:]))
	if length < headerSize+5 || length > maxMessageSize {
		return nil, fmt.Errorf("invalid message length %d", length)
	}
	msg := make([]byte, length)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[headerSize:]); err != nil {
		return nil, err
	}
	_, reqID, _, opcode, rem, ok := wiremessage.ReadHeader(msg)
	if !ok {
		return nil, errors.New("malformed message header")
	}
	switch opcode {
	case wiremessage.OpMsg:
		return decodeMsg(reqID, msg, rem)
	case wiremessage.OpQuery:
		return decodeQuery(reqID, rem)
	default:
		return nil, fmt.Errorf("unsupported opcode %d (OP_MSG and the OP_QUERY handshake only)", opcode)
	}
}

func decodeMsg(reqID int32, whole, rem []byte) (*request, error) {
	flags, rem, ok := wiremessage.ReadMsgFlags(rem)
	if !ok {
		return nil, errors.New("malformed OP_MSG flags")
	}
	if unknown := uint32(flags) & msgRequiredBits &^ (msgChecksumPresent | msgMoreToCome); unknown != 0 {
		return nil, fmt.Errorf("OP_MSG has unknown required flag bits %#x", unknown)
	}
	if flags&msgChecksumPresent != 0 {
		if len(rem) < 4 {
			return nil, errors.New("OP_MSG checksum missing")
		}
		body := whole[:len(whole)-4]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(whole[len(whole)-4:]) {
			return nil, errors.New("OP_MSG checksum mismatch")
		}
		rem = rem[:len(rem)-4]
	}
	var body bsoncore.Document
	type sequence struct {
		id   string
		docs []bsoncore.Document
	}
	var seqs []sequence
	for len(rem) > 0 {
		stype, r, ok := wiremessage.ReadMsgSectionType(rem)
		if !ok {
			return nil, errors.New("malformed OP_MSG section")
		}
		switch stype {
		case wiremessage.SingleDocument:
			if body != nil {
				return nil, errors.New("OP_MSG has more than one body section")
			}
			body, rem, ok = wiremessage.ReadMsgSectionSingleDocument(r)
			if !ok || body.Validate() != nil {
				return nil, errors.New("malformed OP_MSG body document")
			}
		case wiremessage.DocumentSequence:
			var s sequence
			s.id, s.docs, rem, ok = wiremessage.ReadMsgSectionDocumentSequence(r)
			if !ok {
				return nil, errors.New("malformed OP_MSG document sequence")
			}
			for _, d := range s.docs {
				if d.Validate() != nil {
					return nil, errors.New("malformed document in OP_MSG document sequence")
				}
			}
			seqs = append(seqs, s)
		default:
			return nil, fmt.Errorf("unknown OP_MSG section kind %d", stype)
		}
	}
	if body == nil {
		return nil, errors.New("OP_MSG has no body section")
	}
	if len(seqs) > 0 {
		idx, doc := bsoncore.AppendDocumentStart(nil)
		doc = append(doc, body[4:len(body)-1]...)
		for _, s := range seqs {
			if _, err := body.LookupErr(s.id); err == nil {
				return nil, fmt.Errorf("OP_MSG field %q is both in the body and a document sequence", s.id)
			}
			aidx, d := bsoncore.AppendArrayElementStart(doc, s.id)
			for i, sd := range s.docs {
				d = bsoncore.AppendDocumentElement(d, query.ArrayKey(i), sd)
			}
			doc, _ = bsoncore.AppendArrayEnd(d, aidx)
		}
		body, _ = bsoncore.AppendDocumentEnd(doc, idx)
	}
	db, ok := body.Lookup("$db").StringValueOK()
	if !ok {
		return nil, errors.New("OP_MSG body has no $db string")
	}
	return &request{requestID: reqID, moreToCome: flags&msgMoreToCome != 0, body: body, db: db}, nil
}

// decodeQuery accepts the legacy OP_QUERY only for commands on "<db>.$cmd":
// drivers still open connections with it (hello/isMaster) before they know
// the server speaks OP_MSG.
func decodeQuery(reqID int32, rem []byte) (*request, error) {
	_, rem, ok := wiremessage.ReadQueryFlags(rem)
	if !ok {
		return nil, errors.New("malformed OP_QUERY flags")
	}
	ns, rem, ok := wiremessage.ReadQueryFullCollectionName(rem)
	if !ok {
		return nil, errors.New("malformed OP_QUERY namespace")
	}
	if _, rem, ok = wiremessage.ReadQueryNumberToSkip(rem); !ok {
		return nil, errors.New("malformed OP_QUERY numberToSkip")
	}
	if _, rem, ok = wiremessage.ReadQueryNumberToReturn(rem); !ok {
		return nil, errors.New("malformed OP_QUERY numberToReturn")
	}
	query, _, ok := wiremessage.ReadQueryQuery(rem)
	if !ok || query.Validate() != nil {
		return nil, errors.New("malformed OP_QUERY query document")
	}
	db, found := cutSuffix(ns, ".$cmd")
	if !found {
		return nil, fmt.Errorf("OP_QUERY on %q: only commands on <db>.$cmd are supported (OP_QUERY was removed in MongoDB 5.1)", ns)
	}
	// A read preference wraps the command as {$query: {...}, $readPreference: ...}.
	if inner, ok := query.Lookup("$query").DocumentOK(); ok {
		query = inner
	}
	return &request{requestID: reqID, legacy: true, body: query, db: db}, nil
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return "", false
}

// msgHeader frames a reply document of n bytes as OP_MSG with a single body
// section: what goes on the wire before it (written together, so that a
// reply of megabytes is not copied to be framed).
func msgHeader(responseTo int32, n int) []byte {
	idx, b := wiremessage.AppendHeaderStart(nil, wiremessage.NextRequestID(), responseTo, wiremessage.OpMsg)
	b = wiremessage.AppendMsgFlags(b, 0)
	b = wiremessage.AppendMsgSectionType(b, wiremessage.SingleDocument)
	return bsoncore.UpdateLength(b, idx, int32(len(b)-int(idx)+n))
}

// replyHeader frames a reply document of n bytes as a legacy OP_REPLY (answer
// to OP_QUERY), as msgHeader does.
func replyHeader(responseTo int32, n int) []byte {
	idx, b := wiremessage.AppendHeaderStart(nil, wiremessage.NextRequestID(), responseTo, wiremessage.OpReply)
	b = wiremessage.AppendReplyFlags(b, wiremessage.AwaitCapable)
	b = wiremessage.AppendReplyCursorID(b, 0)
	b = wiremessage.AppendReplyStartingFrom(b, 0)
	b = wiremessage.AppendReplyNumberReturned(b, 1)
	return bsoncore.UpdateLength(b, idx, int32(len(b)-int(idx)+n))
}
