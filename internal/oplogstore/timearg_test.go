package oplogstore

import (
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestParseTime(t *testing.T) {
	for in, want := range map[string]bson.Timestamp{
		"2025-06-03T04:35:00Z":      {T: 1748925300, I: math.MaxUint32},
		"2025-06-03T06:35:00+02:00": {T: 1748925300, I: math.MaxUint32},
		"1748925300,7":              {T: 1748925300, I: 7},
		" 1748925300 , 0 ":          {T: 1748925300, I: 0},
	} {
		got, err := ParseTime(in)
		if err != nil || got != want {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, says := range map[string]string{
		"2025-06-03T04:35:00.5Z": "fraction of a second",
		"2025-06-03 04:35":       "neither an RFC 3339 time",
		"1748925300,-1":          "not a timestamp",
		"99999999999,1":          "not a timestamp",
		"1960-01-01T00:00:00Z":   "outside the range",
	} {
		if _, err := ParseTime(in); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("ParseTime(%q) = %v; want an error saying %q", in, err, says)
		}
	}
}
