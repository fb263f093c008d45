// Package query is mongotest's query engine: filters, sorts, projections,
// update operators with the change events' update descriptions, and the
// aggregation stages the server runs, over BSON held as bsoncore values.
// It answers as mongod does for what it implements and refuses the rest
// with an Error naming it.
package query

import (
	"fmt"
	"math"
)

// Error is a failure with the real server's error code
// (https://www.mongodb.com/docs/manual/reference/error-codes/).
type Error struct {
	Code int32
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d)", e.Msg, e.Code) }

// Codes of the errors this package returns, with the real server's names.
const (
	CodeBadValue                   = 2
	CodeFailedToParse              = 9
	CodeTypeMismatch               = 14
	CodePathNotViable              = 28
	CodeConflictingUpdateOperators = 40
	CodeImmutableField             = 66
	CodeCommandNotSupported        = 115
	CodeInvalidPipelineOperator    = 168
	CodeUnrecognizedPipelineStage  = 40324
)

func errorf(code int32, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Unsupported reports something valid in MongoDB that mongotest does not
// implement: 115 CommandNotSupported, naming it.
func Unsupported(format string, args ...any) *Error {
	return &Error{Code: CodeCommandNotSupported, Msg: "mongotest does not support " + fmt.Sprintf(format, args...)}
}

func typeError(field string, v Value, want string) *Error {
	return errorf(CodeTypeMismatch, "BSON field '%s' is the wrong type '%s', expected type '%s'", field, TypeName(v.Type), want)
}

// AsInt reads a number holding an integral value, as the server's IDL
// "safeInt64" fields do.
func AsInt(field string, v Value) (int64, error) {
	switch v.Type {
	case TypeInt32, TypeInt64:
		return v.AsInt64(), nil
	case TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f), nil
		}
		return 0, errorf(CodeBadValue, "BSON field '%s' must be an integer, got %v", field, f)
	}
	return 0, typeError(field, v, "long")
}
