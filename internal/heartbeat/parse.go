package heartbeat

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Heartbeat is what one document says. A nil time or status is one the document does
// not give (absent, null, or of a type that is not a time); the problems Parse returns
// say which were unreadable.
type Heartbeat struct {
	Name       string
	Status     *string
	LastReport *time.Time
	Checkpoint *time.Time // last_oplog_time_utc: everything up to here is stored
	LastEvent  *time.Time // this project's collector only
	FirstOplog *time.Time
	// SourceOplogOldest is the oldest entry of the source's oplog: this project's
	// collector only.
	SourceOplogOldest *time.Time
	Error             string // error_message; "" when none
	// This project's collector only: who holds the source, and when a standby last
	// said it was ready to take over (nil when none ever did).
	HolderID      string
	StandbyID     string
	StandbyReport *time.Time
	LeaseEpoch    int64 // the lease epoch of the holder that wrote it; 0 when none
}

// Projection is what a reader fetches: the name and collector_status, never the
// connection strings the old tool kept next to them.
func Projection() bson.D {
	return bson.D{{Key: FieldID, Value: 0}, {Key: FieldName, Value: 1}, {Key: FieldCollectorStatus, Value: 1}}
}

// maxEcho bounds how much of a document's value a problem quotes.
const maxEcho = 64

// Parse reads a document as either collector writes it: ISO-8601 strings from the old
// collector (and ours), BSON dates or timestamps from other writers. A field of
// another type is left out and named in problems, sorted, so the same document always
// gives the same text. It never panics, whatever the bytes.
func Parse(doc bson.Raw) (hb Heartbeat, problems []string) {
	defer func() { slices.Sort(problems) }()
	if err := doc.Validate(); err != nil {
		return hb, []string{"not a valid BSON document"}
	}
	switch v, err := doc.LookupErr(FieldName); {
	case err != nil || v.Type == bson.TypeNull:
		problems = append(problems, "the document has no name")
	case v.Type != bson.TypeString:
		problems = append(problems, fmt.Sprintf("name is a BSON %s, not a string", v.Type))
	default:
		hb.Name, _ = v.StringValueOK()
	}
	status, err := doc.LookupErr(FieldCollectorStatus)
	if err != nil || status.Type == bson.TypeNull {
		return hb, problems // registered, never reported
	}
	sub, ok := status.DocumentOK()
	if !ok {
		return hb, append(problems, fmt.Sprintf("%s is a BSON %s, not a document", FieldCollectorStatus, status.Type))
	}
	if err := sub.Validate(); err != nil {
		return hb, append(problems, FieldCollectorStatus+" is not a valid BSON document")
	}
	field := func(path string) (string, bson.RawValue) {
		key := strings.TrimPrefix(path, FieldCollectorStatus+".")
		v, _ := sub.LookupErr(key)
		return path, v
	}
	if path, v := field(FieldStatus); v.Type == bson.TypeString {
		s, _ := v.StringValueOK()
		hb.Status = &s
	} else if v.Type != 0 && v.Type != bson.TypeNull {
		problems = append(problems, fmt.Sprintf("%s is a BSON %s, not a string", path, v.Type))
	}
	for _, t := range []struct {
		path string
		dst  **time.Time
	}{
		{FieldLastReport, &hb.LastReport},
		{FieldCheckpoint, &hb.Checkpoint},
		{FieldLastEvent, &hb.LastEvent},
		{FieldFirstOplog, &hb.FirstOplog},
		{FieldSourceOplogOldest, &hb.SourceOplogOldest},
	} {
		path, v := field(t.path)
		at, err := ParseTime(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", path, err))
		}
		*t.dst = at
	}
	if _, v := field(FieldErrorMessage); v.Type == bson.TypeString {
		hb.Error, _ = v.StringValueOK()
	}
	if _, v := field(FieldHolder); v.Type == bson.TypeEmbeddedDocument {
		hb.HolderID, _ = v.Document().Lookup("id").StringValueOK()
	}
	if _, v := field(FieldLeaseEpoch); v.Type != 0 {
		hb.LeaseEpoch, _ = v.AsInt64OK()
	}
	if path, v := field(FieldStandby); v.Type == bson.TypeEmbeddedDocument {
		hb.StandbyID, _ = v.Document().Lookup("id").StringValueOK()
		at, err := ParseTime(v.Document().Lookup("reported_utc"))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s.reported_utc: %v", path, err))
		}
		hb.StandbyReport = at
	}
	return hb, problems
}

// isoLayouts are the shapes Python's datetime.isoformat() produces: with or without a
// UTC offset (naive times are taken as UTC), with or without fractional seconds, with
// "T" or a space between date and time.
var isoLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// ParseTime reads a point in time: an ISO-8601 string, a BSON date or a BSON timestamp.
// Absent or null is no time and no error.
func ParseTime(v bson.RawValue) (*time.Time, error) {
	var t time.Time
	switch v.Type {
	case 0, bson.TypeNull, bson.TypeUndefined:
		return nil, nil
	case bson.TypeDateTime:
		ms, ok := v.DateTimeOK()
		if !ok {
			return nil, fmt.Errorf("a malformed BSON date")
		}
		t = time.UnixMilli(ms)
	case bson.TypeTimestamp:
		seconds, _, ok := v.TimestampOK()
		if !ok {
			return nil, fmt.Errorf("a malformed BSON timestamp")
		}
		t = time.Unix(int64(seconds), 0)
	case bson.TypeString:
		text, ok := v.StringValueOK()
		if !ok {
			return nil, fmt.Errorf("a malformed BSON string")
		}
		var err error
		for _, layout := range isoLayouts {
			if t, err = time.ParseInLocation(layout, text, time.UTC); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s is not an ISO-8601 time", quote(text))
		}
	default:
		return nil, fmt.Errorf("a BSON %s is not a time", v.Type)
	}
	t = t.UTC()
	return &t, nil
}

// quote quotes a value taken from a document for a message: at most 64 bytes of it,
// with invalid UTF-8 and control characters escaped.
func quote(s string) string {
	if len(s) <= maxEcho {
		return fmt.Sprintf("%q", s)
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}
