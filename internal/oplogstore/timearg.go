package oplogstore

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ParseTime reads a point in the source's history, as the commands' --from and --to
// take it:
//   - a MongoDB timestamp "seconds,increment" (as PBM's oplog-replay takes it) names
//     one operation exactly;
//   - an RFC 3339 time in whole seconds ("2025-06-03T04:35:00Z") names the end of that
//     second: cluster times count whole seconds, so every operation of that second is
//     in it (increment 2^32-1), and a replay --to it includes them all. --from takes
//     the same end, so that ranges chained as --to T, then --from T, meet exactly.
func ParseTime(s string) (bson.Timestamp, error) {
	s = strings.TrimSpace(s)
	if secs, inc, ok := strings.Cut(s, ","); ok {
		t, err1 := strconv.ParseUint(strings.TrimSpace(secs), 10, 32)
		i, err2 := strconv.ParseUint(strings.TrimSpace(inc), 10, 32)
		if err1 != nil || err2 != nil {
			return bson.Timestamp{}, fmt.Errorf("%q is not a timestamp seconds,increment (two whole numbers below 2^32, such as 1748925300,1)", s)
		}
		return bson.Timestamp{T: uint32(t), I: uint32(i)}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("%q is neither an RFC 3339 time (2025-06-03T04:35:00Z) nor a timestamp seconds,increment (1748925300,1)", s)
	}
	if t.Nanosecond() != 0 {
		return bson.Timestamp{}, fmt.Errorf("%q has a fraction of a second: cluster times count whole seconds; give the second (all its operations are included) or a timestamp seconds,increment", s)
	}
	if t.Unix() < 0 || t.Unix() > math.MaxUint32 {
		return bson.Timestamp{}, fmt.Errorf("%q is outside the range of cluster times (1970 to 2106)", s)
	}
	return bson.Timestamp{T: uint32(t.Unix()), I: math.MaxUint32}, nil
}

// FormatTS writes a timestamp as both forms ParseTime reads: "2025-06-03T04:35:00Z
// (1748925300,1)".
func FormatTS(ts bson.Timestamp) string {
	return fmt.Sprintf("%s (%d,%d)", time.Unix(int64(ts.T), 0).UTC().Format(time.RFC3339), ts.T, ts.I)
}
