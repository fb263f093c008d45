package mongoerr

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Server error codes the product tells apart, with the names the server gives them
// (https://github.com/mongodb/mongo/blob/master/src/mongo/base/error_codes.yml). Every
// comparison with a code goes through these names.
const (
	Unauthorized            = 13
	AuthenticationFailed    = 18
	NamespaceNotFound       = 26
	IndexNotFound           = 27
	NamespaceExists         = 48
	MaxTimeMSExpired        = 50
	IndexOptionsConflict    = 85
	IndexKeySpecsConflict   = 86
	ChangeStreamFatalError  = 280
	ChangeStreamHistoryLost = 286
	DuplicateKey            = 11000
	// ResumeTokenNotFound is MongoDB 4.0's "resume token was not found" (later servers
	// answer ChangeStreamFatalError or ChangeStreamHistoryLost).
	ResumeTokenNotFound = 40576
)

// NonResumableChangeStreamError is the label a server puts on a change-stream error
// that no resume can get past.
const NonResumableChangeStreamError = "NonResumableChangeStreamError"

// HasCode tells whether err is a server error with one of codes.
func HasCode(err error, codes ...int) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.HasErrorCode(c) {
			return true
		}
	}
	return false
}

// ResumeTokenLost tells whether a change stream failed because the position it resumes
// from is gone from the source's oplog (the codes of MongoDB 4.0 to 8.0, or the label
// that says no resume can pass the error), as opposed to one that only needs reopening.
func ResumeTokenLost(err error) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	return se.HasErrorLabel(NonResumableChangeStreamError) ||
		HasCode(err, ChangeStreamHistoryLost, ChangeStreamFatalError, ResumeTokenNotFound)
}

// OnlyDuplicateKeys tells whether every failure of a write is a duplicate key and its
// write concern was met: each document the write was refused is already there.
func OnlyDuplicateKeys(err error) bool {
	var we mongo.WriteException
	if !errors.As(err, &we) || we.WriteConcernError != nil || len(we.WriteErrors) == 0 {
		return false
	}
	for _, e := range we.WriteErrors {
		if e.Code != DuplicateKey {
			return false
		}
	}
	return true
}
