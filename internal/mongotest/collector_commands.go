package mongotest

import "go.mongodb.org/mongo-driver/v2/bson"

// countCommands answer the driver's EstimatedDocumentCount ({count: <coll>}), which the
// collector uses to say how many events a reset deletes. A count with a query is
// refused: the driver's CountDocuments uses aggregate instead.
var countCommands = map[string]command{
	"count": {run: countCmd, fields: []string{"query", "limit", "skip", "hint", "collation"}},
	// The server has no users: a client that logs in fails as it would against a
	// mongod that does not know the user, with 18 and mongod's words.
	"saslStart": {run: func(*cmdCtx) (bson.D, error) {
		return nil, errorf(codeAuthenticationFailed, "Authentication failed.")
	}, freeForm: true},
}

func countCmd(cx *cmdCtx) (bson.D, error) {
	name, err := cx.collName()
	if err != nil {
		return nil, err
	}
	for _, option := range []string{"query", "limit", "skip", "hint", "collation"} {
		if _, given := cx.field(option); given {
			return nil, unsupported("count with %s (only the estimate of a whole collection)", option)
		}
	}
	docs, _, err := cx.readDocs(name)
	if err != nil {
		return nil, err
	}
	return bson.D{{Key: "n", Value: int32(len(docs))}}, nil
}
