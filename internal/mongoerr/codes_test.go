package mongoerr

import (
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestCodes(t *testing.T) {
	historyLost := mongo.CommandError{Code: ChangeStreamHistoryLost, Name: "ChangeStreamHistoryLost"}
	labelled := mongo.CommandError{Code: 1, Labels: []string{NonResumableChangeStreamError}}
	network := mongo.CommandError{Code: 6, Name: "HostUnreachable", Labels: []string{"ResumableChangeStreamError"}}
	duplicates := mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: DuplicateKey}, {Code: DuplicateKey}}}
	mixed := mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: DuplicateKey}, {Code: 121}}}
	unacknowledged := mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: DuplicateKey}}, WriteConcernError: &mongo.WriteConcernError{Code: 64}}
	for _, c := range []struct {
		name            string
		err             error
		has             []int
		lost, onlyDupes bool
	}{
		{"history lost, wrapped", fmt.Errorf("reading: %w", historyLost), []int{ChangeStreamHistoryLost}, true, false},
		{"non-resumable label", labelled, []int{1}, true, false},
		{"resumable network error", network, []int{6}, false, false},
		{"duplicates only", duplicates, []int{DuplicateKey}, false, true},
		{"a duplicate and a validation failure", mixed, []int{DuplicateKey, 121}, false, false},
		{"duplicates without the write concern", unacknowledged, []int{DuplicateKey}, false, false},
		{"not a server error", fmt.Errorf("dial tcp: refused"), nil, false, false},
	} {
		for _, code := range c.has {
			if !HasCode(c.err, NamespaceNotFound, code) {
				t.Errorf("%s: HasCode(%d) false", c.name, code)
			}
		}
		if HasCode(c.err, NamespaceExists) {
			t.Errorf("%s: HasCode(NamespaceExists) true", c.name)
		}
		if got := ResumeTokenLost(c.err); got != c.lost {
			t.Errorf("%s: ResumeTokenLost = %v, want %v", c.name, got, c.lost)
		}
		if got := OnlyDuplicateKeys(c.err); got != c.onlyDupes {
			t.Errorf("%s: OnlyDuplicateKeys = %v, want %v", c.name, got, c.onlyDupes)
		}
	}
}
