package mongotest_test

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// Raw wire-protocol checks, independent of the Go driver's habits
// (https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/).

func dial(t *testing.T) net.Conn {
	srv := mongotest.New(t, "raw wire-protocol messages", mongotest.Options{})
	nc, err := net.Dial("tcp", srv.Addr())
	must(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(deadline))
	return nc
}

func frame(opcode int32, body []byte) []byte {
	msg := make([]byte, 16, 16+len(body))
	binary.LittleEndian.PutUint32(msg[0:], uint32(16+len(body)))
	binary.LittleEndian.PutUint32(msg[4:], 7)
	binary.LittleEndian.PutUint32(msg[12:], uint32(opcode))
	return append(msg, body...)
}

func readReply(t *testing.T, nc net.Conn) (int32, []byte) {
	t.Helper()
	var hdr [16]byte
	_, err := io.ReadFull(nc, hdr[:])
	must(t, err)
	rest := make([]byte, binary.LittleEndian.Uint32(hdr[:])-16)
	_, err = io.ReadFull(nc, rest)
	must(t, err)
	if got := int32(binary.LittleEndian.Uint32(hdr[8:])); got != 7 {
		t.Fatalf("responseTo = %d, want 7", got)
	}
	return int32(binary.LittleEndian.Uint32(hdr[12:])), rest
}

func TestLegacyOpQueryHandshake(t *testing.T) {
	nc := dial(t)
	q, _ := bson.Marshal(bson.D{{Key: "isMaster", Value: 1}})
	body := binary.LittleEndian.AppendUint32(nil, 0)
	body = append(body, "admin.$cmd\x00"...)
	body = binary.LittleEndian.AppendUint32(body, 0)
	body = binary.LittleEndian.AppendUint32(body, 0xFFFFFFFF)
	body = append(body, q...)
	_, err := nc.Write(frame(2004, body))
	must(t, err)
	op, rest := readReply(t, nc)
	if op != 1 { // OP_REPLY
		t.Fatalf("opcode %d, want OP_REPLY", op)
	}
	reply := bson.Raw(rest[20:])
	if !reply.Lookup("ismaster").Boolean() || reply.Lookup("setName").StringValue() == "" {
		t.Fatalf("isMaster reply %v", reply)
	}
}

// TestOpMsgSequenceAndChecksum sends an insert whose documents travel in a
// kind-1 section, with a CRC-32C checksum.
func TestOpMsgSequenceAndChecksum(t *testing.T) {
	nc := dial(t)
	cmd, _ := bson.Marshal(bson.D{{Key: "insert", Value: "c"}, {Key: "$db", Value: "w"}})
	d1, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}})
	d2, _ := bson.Marshal(bson.D{{Key: "_id", Value: 2}})
	seq := append([]byte("documents\x00"), append(d1, d2...)...)
	body := binary.LittleEndian.AppendUint32(nil, 1) // checksumPresent
	body = append(body, 0)
	body = append(body, cmd...)
	body = append(body, 1)
	body = binary.LittleEndian.AppendUint32(body, uint32(4+len(seq)))
	body = append(body, seq...)
	msg := frame(2013, body)
	binary.LittleEndian.PutUint32(msg[0:], uint32(len(msg)+4))
	msg = binary.LittleEndian.AppendUint32(msg, crc32.Checksum(msg, crc32.MakeTable(crc32.Castagnoli)))
	_, err := nc.Write(msg)
	must(t, err)
	op, rest := readReply(t, nc)
	reply := bson.Raw(rest[5:])
	if op != 2013 || reply.Lookup("n").Int32() != 2 || reply.Lookup("ok").Double() != 1 {
		t.Fatalf("insert reply (op %d) %v", op, reply)
	}
}

func TestMalformedMessageClosesConnection(t *testing.T) {
	for name, msg := range map[string][]byte{
		"bad length":       {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 7, 0, 0},
		"unknown opcode":   frame(2010, make([]byte, 16)),
		"truncated bson":   frame(2013, []byte{0, 0, 0, 0, 0, 200, 0, 0, 0, 3, 0}),
		"required flag":    frame(2013, append([]byte{4, 0, 0, 0, 0}, mustBSON(bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "a"}})...)),
		"bad section kind": frame(2013, append([]byte{0, 0, 0, 0, 9}, mustBSON(bson.D{{Key: "ping", Value: 1}})...)),
	} {
		t.Run(name, func(t *testing.T) {
			nc := dial(t)
			_, err := nc.Write(msg)
			must(t, err)
			var b [1]byte
			if _, err := nc.Read(b[:]); err == nil {
				t.Fatal("server answered a malformed message")
			}
		})
	}
}

func mustBSON(d bson.D) []byte {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// rawCommand sends cmd in an OP_MSG and returns the reply's body.
func rawCommand(t *testing.T, nc net.Conn, cmd bson.D) bson.Raw {
	t.Helper()
	_, err := nc.Write(frame(2013, append([]byte{0, 0, 0, 0, 0}, mustBSON(cmd)...)))
	must(t, err)
	op, rest := readReply(t, nc)
	if op != 2013 {
		t.Fatalf("reply opcode %d", op)
	}
	return bson.Raw(rest[5:])
}
