package mongotest

import (
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// Error codes used here, with the real server's names
// (https://www.mongodb.com/docs/manual/reference/error-codes/).
const (
	codeBadValue                           = query.CodeBadValue
	codeFailedToParse                      = query.CodeFailedToParse
	codeUnauthorized                       = 13
	codeAuthenticationFailed               = 18
	codeTypeMismatch                       = query.CodeTypeMismatch
	codeNamespaceNotFound                  = 26
	codeIndexNotFound                      = 27
	codeCannotCreateIndex                  = 67
	codeGraphContainsCycle                 = 5
	codePathNotViable                      = query.CodePathNotViable
	codeConflictingUpdateOperators         = query.CodeConflictingUpdateOperators
	codeCursorNotFound                     = 43
	codeNamespaceExists                    = 48
	codeInvalidIDField                     = 53
	codeCommandNotFound                    = 59
	codeImmutableField                     = query.CodeImmutableField
	codeInvalidOptions                     = 72
	codeInvalidNamespace                   = 73
	codeIndexOptionsConflict               = 85
	codeIndexKeySpecsConflict              = 86
	codeCannotIndexParallelArrays          = 171
	codeUnsatisfiableWriteConcern          = 100
	codeCommandNotSupported                = query.CodeCommandNotSupported
	codeInvalidResumeToken                 = 260
	codeChangeStreamFatalError             = 280
	codeChangeStreamHistoryLost            = 286
	codeDuplicateKey                       = 11000
	codeBSONObjectTooLarge                 = 10334
	codeIDLUnknownField                    = 40415
	codeIDLFailedToParse                   = 40414
	codeCannotConvertIndexToUnique         = 359
	codeUnrecognizedPipelineStage          = query.CodeUnrecognizedPipelineStage
	codeChangeStreamNotFirstStage          = 40602
	codeChangeStreamStageNotAllowed        = 40600
	codeMultipleResumeOptions              = 40674
	codeLockTimeout                        = 24
	codeMaxTimeMSExpired                   = 50
	codeNoMatchingDocument                 = 47
	codeInterrupted                        = 11601
	codeWriteConflict                      = 112
	codeConflictingOperationInProgress     = 117
	codeTransactionTooOld                  = 225
	codeNoSuchTransaction                  = 251
	codeTransactionCommitted               = 256
	codeOperationNotSupportedInTransaction = 263
	codeIllegalOperation                   = 20
	codeShardNotFound                      = 70
)

var codeNames = map[int32]string{
	codeBadValue:                   "BadValue",
	codeFailedToParse:              "FailedToParse",
	codeUnauthorized:               "Unauthorized",
	codeAuthenticationFailed:       "AuthenticationFailed",
	codeTypeMismatch:               "TypeMismatch",
	codeNamespaceNotFound:          "NamespaceNotFound",
	codeIndexNotFound:              "IndexNotFound",
	codeCannotCreateIndex:          "CannotCreateIndex",
	codeGraphContainsCycle:         "GraphContainsCycle",
	codeViewDepthLimitExceeded:     "ViewDepthLimitExceeded",
	codeCommandNotSupportedOnView:  "CommandNotSupportedOnView",
	codeDocumentValidationFailure:  "DocumentValidationFailure",
	codePathNotViable:              "PathNotViable",
	codeConflictingUpdateOperators: "ConflictingUpdateOperators",
	codeCursorNotFound:             "CursorNotFound",
	codeNamespaceExists:            "NamespaceExists",
	codeInvalidIDField:             "InvalidIdField",
	codeCommandNotFound:            "CommandNotFound",
	codeImmutableField:             "ImmutableField",
	codeInvalidOptions:             "InvalidOptions",
	codeInvalidNamespace:           "InvalidNamespace",
	codeIndexOptionsConflict:       "IndexOptionsConflict",
	codeIndexKeySpecsConflict:      "IndexKeySpecsConflict",
	codeCannotIndexParallelArrays:  "CannotIndexParallelArrays",
	codeUnsatisfiableWriteConcern:  "UnsatisfiableWriteConcern",
	codeCommandNotSupported:        "CommandNotSupported",
	codeInvalidResumeToken:         "InvalidResumeToken",
	codeChangeStreamFatalError:     "ChangeStreamFatalError",
	codeChangeStreamHistoryLost:    "ChangeStreamHistoryLost",
	codeDuplicateKey:               "DuplicateKey",
	codeBSONObjectTooLarge:         "BSONObjectTooLarge",
	codeIDLUnknownField:            "Location40415",
	codeIDLFailedToParse:           "Location40414",
	codeCannotConvertIndexToUnique: "CannotConvertIndexToUnique",
	// Codes thrown by the real server as plain assertions carry the name "Location<code>".
	codeUnrecognizedPipelineStage:          "Location40324",
	codeChangeStreamNotFirstStage:          "Location40602",
	codeChangeStreamStageNotAllowed:        "Location40600",
	codeMultipleResumeOptions:              "Location40674",
	codeLockTimeout:                        "LockTimeout",
	codeMaxTimeMSExpired:                   "MaxTimeMSExpired",
	codeNoMatchingDocument:                 "NoMatchingDocument",
	codeInterrupted:                        "Interrupted",
	codeWriteConflict:                      "WriteConflict",
	codeConflictingOperationInProgress:     "ConflictingOperationInProgress",
	codeTransactionTooOld:                  "TransactionTooOld",
	codeNoSuchTransaction:                  "NoSuchTransaction",
	codeTransactionCommitted:               "TransactionCommitted",
	codeOperationNotSupportedInTransaction: "OperationNotSupportedInTransaction",
	codeIllegalOperation:                   "IllegalOperation",
	codeShardNotFound:                      "ShardNotFound",
	// Codes the real server commonly returns for retryable conditions, so
	// failpoints can inject them with their proper names.
	6:     "HostUnreachable",
	133:   "FailedToSatisfyReadPreference",
	134:   "ReadConcernMajorityNotAvailableYet",
	150:   "StaleEpoch",
	216:   "ElectionInProgress",
	234:   "RetryChangeStream",
	13388: "StaleConfig",
	7:     "HostNotFound",
	89:    "NetworkTimeout",
	91:    "ShutdownInProgress",
	189:   "PrimarySteppedDown",
	262:   "ExceededTimeLimit",
	9001:  "SocketException",
	10107: "NotWritablePrimary",
	11600: "InterruptedAtShutdown",
	11602: "InterruptedDueToReplStateChange",
	13435: "NotPrimaryNoSecondaryOk",
	13436: "NotPrimaryOrSecondary",
}

// retryableWriteCodes are the codes for which a 4.4+ server attaches the
// RetryableWriteError label to a failed retryable write (Retryable Writes
// specification, "Determining Retryable Errors").
var retryableWriteCodes = map[int32]bool{
	6: true, 7: true, 89: true, 91: true, 189: true, 262: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true,
}

func codeName(code int32) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	return "Location" + strconv.Itoa(int(code))
}

// cmdError is a command failure, sent back as {ok: 0, code, codeName, errmsg, errorLabels}
// and the error's extra information (a duplicate key's keyPattern and keyValue).
type cmdError struct {
	code   int32
	msg    string
	extra  bson.D
	labels []string
	// labelsSet means labels were chosen explicitly (a failpoint), so the
	// server must not add its own.
	labelsSet bool
}

func (e *cmdError) Error() string { return fmt.Sprintf("%s (%d): %s", codeName(e.code), e.code, e.msg) }

func errorf(code int32, format string, args ...any) *cmdError {
	return &cmdError{code: code, msg: fmt.Sprintf(format, args...)}
}

// unsupported reports something valid in MongoDB that this fake does not implement.
func unsupported(format string, args ...any) error {
	return query.Unsupported(format, args...)
}

// asCmdError is err as a command failure: the query engine's errors carry
// the same codes, and a statement's error fails a command that has no
// writeErrors (findAndModify) with its code and extra information.
func asCmdError(err error) (*cmdError, bool) {
	switch e := err.(type) {
	case *cmdError:
		return e, true
	case *query.Error:
		return &cmdError{code: e.Code, msg: e.Msg}, true
	case *writeError:
		return &cmdError{code: e.code, msg: e.msg, extra: e.extra}, true
	}
	return nil, false
}
