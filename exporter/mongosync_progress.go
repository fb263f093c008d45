package exporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// progress is mongosync's GET /api/v1/progress `progress` object, for every version from
// 0.9 to 1.22 (docs/mongosync.md). Every field is a pointer: a null
// or absent field must give no series. Numbers are float64 so an int that a later
// version sends as a float still parses.
type progress struct {
	State                        *string                  `json:"state"`
	CanCommit                    *bool                    `json:"canCommit"`
	CanWrite                     *bool                    `json:"canWrite"`
	Info                         *string                  `json:"info"`
	CEAStage                     *string                  `json:"ceaStage"`
	LagTimeSeconds               *float64                 `json:"lagTimeSeconds"`
	Lag                          *lagBreakdown            `json:"lag"`
	TotalEventsApplied           *float64                 `json:"totalEventsApplied"`
	CollectionCopy               *collectionCopy          `json:"collectionCopy"`
	DirectionMapping             *directionMapping        `json:"directionMapping"`
	MongosyncID                  *string                  `json:"mongosyncID"`
	CoordinatorID                *string                  `json:"coordinatorID"`
	Verification                 *sides[verificationSide] `json:"verification"`
	EstimatedSecondsToCEACatchup *float64                 `json:"estimatedSecondsToCEACatchup"`
	EstimatedOplogTimeRemaining  *string                  `json:"estimatedOplogTimeRemaining"`
	Warnings                     []string                 `json:"warnings"`
	IndexBuilding                *indexBuilding           `json:"indexBuilding"`
	// Since 1.17 `source` and `destination` carry the ping latency of each cluster.
	Source      *ping `json:"source"`
	Destination *ping `json:"destination"`
}

type lagBreakdown struct {
	OverallLagSeconds *float64 `json:"overallLagSeconds"`
	CRUDLagSeconds    *float64 `json:"crudLagSeconds"`
	DDLLagSeconds     *float64 `json:"ddlLagSeconds"`
}

type collectionCopy struct {
	EstimatedTotalBytes  *float64 `json:"estimatedTotalBytes"`
	EstimatedCopiedBytes *float64 `json:"estimatedCopiedBytes"`
}

// directionMapping's keys are capitalised in mongosync's output. encoding/json matches
// keys without regard to case, which is harmless here: the object has only these two.
type directionMapping struct {
	Source      *string `json:"Source"`
	Destination *string `json:"Destination"`
}

type sides[T any] struct {
	Source      *T `json:"source"`
	Destination *T `json:"destination"`
}

type verificationSide struct {
	Phase                  *string  `json:"phase"`
	EstimatedDocumentCount *float64 `json:"estimatedDocumentCount"`
	HashedDocumentCount    *float64 `json:"hashedDocumentCount"`
	LagTimeSeconds         *float64 `json:"lagTimeSeconds"`
	TotalCollectionCount   *float64 `json:"totalCollectionCount"`
	ScannedCollectionCount *float64 `json:"scannedCollectionCount"`
}

type indexBuilding struct {
	IndexesBuilt        *float64 `json:"indexesBuilt"`
	TotalIndexesToBuild *float64 `json:"totalIndexesToBuild"`
	CollectionsFinished *float64 `json:"collectionsFinished"`
	CollectionsTotal    *float64 `json:"collectionsTotal"`
}

type ping struct {
	PingLatencyMs *float64 `json:"pingLatencyMs"`
}

// progressResponse is the whole reply: `progress` on success; `success: false` with
// `error` and (since 1.8) `errorDescription` on failure.
type progressResponse struct {
	Progress         *progress       `json:"progress"`
	Success          *bool           `json:"success"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription json.RawMessage `json:"errorDescription"`
}

// errResponseShape marks a reply that parsed but is not a progress report.
var errResponseShape = errors.New("unexpected response")

// parseProgress reads a progress reply. A reply that is not JSON, reports an error, or
// has no progress object is an error. A field of an unexpected type is left out and
// named in skipped; the rest of the report still counts.
func parseProgress(body []byte) (p *progress, skipped string, err error) {
	var r progressResponse
	if err := json.Unmarshal(body, &r); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return nil, "", fmt.Errorf("%w: not a JSON progress report: %v (body starts %s)", errResponseShape, err, excerpt(body))
		}
		// encoding/json fills every other field before reporting the first misfit.
		skipped = fmt.Sprintf("field %s: got JSON %s, expected %s", typeErr.Field, typeErr.Value, typeErr.Type)
	}
	if msg := responseError(r); msg != "" {
		return nil, "", fmt.Errorf("mongosync reported an error: %s", msg)
	}
	if r.Progress == nil {
		return nil, "", fmt.Errorf("%w: no \"progress\" object in the reply (body starts %s)", errResponseShape, excerpt(body))
	}
	return r.Progress, skipped, nil
}

// responseError is the error a reply reports, or "" when it reports none.
func responseError(r progressResponse) string {
	var parts []string
	for _, raw := range []json.RawMessage{r.Error, r.ErrorDescription} {
		if text := jsonText(raw); text != "" {
			parts = append(parts, text)
		}
	}
	if len(parts) == 0 && r.Success != nil && !*r.Success {
		parts = append(parts, "success is false, with no error text")
	}
	return strings.Join(parts, ": ")
}

// jsonText renders a JSON value for a log line: strings unquoted, null as "".
func jsonText(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return truncate(s)
	}
	if t := strings.TrimSpace(string(raw)); t != "null" {
		return truncate(t)
	}
	return ""
}

const maxErrorText = 300

func truncate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxErrorText {
		return s[:maxErrorText] + "..."
	}
	return s
}

func excerpt(body []byte) string {
	if len(body) == 0 {
		return "(empty)"
	}
	return strconv.Quote(truncate(string(body[:min(len(body), maxErrorText)])))
}

var oplogTimeRemaining = regexp.MustCompile(`^(more than |less than )?(\d+(?:\.\d+)?) (second|minute|hour|day)s?$`)

var unitSeconds = map[string]float64{"second": 1, "minute": 60, "hour": 3600, "day": 86400}

// parseOplogTimeRemaining turns estimatedOplogTimeRemaining ("12 hours", "more than 72
// hours", "less than 15 minutes") into seconds. A bound is taken at its value: "more
// than 72 hours" is 259200, "less than 15 minutes" is 900. "not checked yet" and any
// text of another shape have no value (ok is false).
func parseOplogTimeRemaining(s string) (seconds float64, ok bool) {
	m := oplogTimeRemaining.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		return 0, false
	}
	return n * unitSeconds[m[3]], true
}
