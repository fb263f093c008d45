package mongoerr

import (
	"errors"
	"strings"

	"github.com/mongomigrate/observability/internal/redact"
)

// DescribeWrapped words err for a log line or a status document: what the program was
// doing, in the words its own wrapping gives ("saving the resume token: ..."), then the
// cause in the words of Describe. A layer counts as wrapping while its text is its own
// words, ": ", and the text of the error it wraps; the first layer that words what it
// wraps otherwise (a driver error, which quotes its cause its own way) is the cause.
func DescribeWrapped(err error) string {
	if err == nil {
		return ""
	}
	var doing []string
	cause := err
	for {
		inner := errors.Unwrap(cause)
		if inner == nil {
			break
		}
		own, ok := strings.CutSuffix(cause.Error(), ": "+inner.Error())
		if !ok {
			break
		}
		doing = append(doing, own)
		cause = inner
	}
	return redact.Credentials(strings.Join(append(doing, Describe(cause)), ": "))
}
