package mongoerr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// What the program was doing stays, word for word; the cause is worded as Describe
// words it; no password passes, in either part.
func TestDescribeWrapped(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"a cause alone", context.DeadlineExceeded, "timed out"},
		{"two layers of wrapping, a password in one",
			fmt.Errorf("reading the saved resume token: %w", fmt.Errorf("auth to mongodb://user:hunter2@store:27017 failed: %w", context.DeadlineExceeded)),
			"reading the saved resume token: auth to mongodb://user:xxxxx@store:27017 failed: timed out"},
		{"a server error under wrapping",
			fmt.Errorf("saving the resume token: %w", mongo.CommandError{Code: 13, Name: "Unauthorized", Message: "not authorized on oplog_backup_db to execute command { update: 1 }"}),
			"saving the resume token: not authorized (Unauthorized, code 13): not authorized on oplog_backup_db to execute command; grant the user the read role on that database"},
		{"a layer that words its cause its own way is the cause",
			fmt.Errorf("writing the heartbeat: %w", wrapped{text: "server said no", err: errors.New("no")}),
			"writing the heartbeat: server said no"},
	}
	for _, c := range cases {
		if got := DescribeWrapped(c.err); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// wrapped is an error that wraps another without quoting it.
type wrapped struct {
	text string
	err  error
}

func (w wrapped) Error() string { return w.text }
func (w wrapped) Unwrap() error { return w.err }
