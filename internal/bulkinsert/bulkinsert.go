package bulkinsert

import (
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// MaxDocumentBytes bounds the documents of one command: with the command's own fields
// it stays under the 16 MiB a command may hold. One document of up to 16 MiB still fits
// alone (the server takes a command of 16 MiB and 16 KiB).
const MaxDocumentBytes = 15 << 20

// AppendCommand appends to dst the insert command that inserts docs, which must each
// have an _id, into collection, followed by the elements of fields (ordered,
// writeConcern, bypassDocumentValidation...).
func AppendCommand(dst []byte, collection string, docs []bson.Raw, fields bson.Raw) []byte {
	start, cmd := bsoncore.AppendDocumentStart(dst)
	cmd = bsoncore.AppendStringElement(cmd, "insert", collection)
	array, cmd := bsoncore.AppendArrayElementStart(cmd, "documents")
	for i, doc := range docs {
		// The array's keys are the indexes, written in place rather than as strings.
		cmd = strconv.AppendInt(bsoncore.AppendType(cmd, bsoncore.TypeEmbeddedDocument), int64(i), 10)
		cmd = append(append(cmd, 0), doc...)
	}
	cmd, _ = bsoncore.AppendArrayEnd(cmd, array)
	if len(fields) > 5 {
		cmd = append(cmd, fields[4:len(fields)-1]...)
	}
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, start)
	return cmd
}

// Chunk is the number of docs, from the first, that one command takes: as many as
// MaxDocumentBytes holds, at least one.
func Chunk(docs []bson.Raw) int {
	n, size := 1, len(docs[0])
	for n < len(docs) && size+len(docs[n]) <= MaxDocumentBytes {
		size += len(docs[n])
		n++
	}
	return n
}
