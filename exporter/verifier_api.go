package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// verifierProgress is the part of migration-verifier's GET /api/v1/progress the
// exporter uses (docs/migration-verifier.md, "HTTP API"). Before v0.1.6 the reply had
// only phase, generation, error and verificationStatus: the rest stays nil.
type verifierProgress struct {
	Phase              *string                          `json:"phase"`
	Generation         *float64                         `json:"generation"`
	Error              json.RawMessage                  `json:"error"`
	GenerationStats    *verifierGenerationStats         `json:"generationStats"`
	SrcChangeStats     *verifierChangeStats             `json:"srcChangeStats"`
	DstChangeStats     *verifierChangeStats             `json:"dstChangeStats"`
	LongestDocMismatch *struct{ DurationSecs *float64 } `json:"longestDocMismatch"`
}

// verifierGenerationStats is the current generation's progress as the verifier counts it:
// its finished tasks, plus what each worker has compared of the task it is running
// (getComparisonStatistics in summary.go), which only the verifier's memory holds.
type verifierGenerationStats struct {
	DocsCompared     *float64 `json:"docsCompared"`
	SrcBytesCompared *float64 `json:"srcBytesCompared"`
}

type verifierChangeStats struct {
	EventsPerSecond  *float64 `json:"eventsPerSecond"`
	LagSecs          *float64 `json:"lagSecs"`
	BufferSaturation *float64 `json:"bufferSaturation"`
}

// fetchVerifierProgress GETs the verifier's progress. The verifier reports errors as
// HTTP 200 with {"error": "..."}. It only ever GETs: a second concurrent POST to
// /writesOff makes the verifier shut its web server down, and /summary streams every
// mismatch.
func fetchVerifierProgress(ctx context.Context, client *http.Client, url string) (*verifierProgress, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProgressBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the reply from %s: %w", url, err)
	}
	if len(body) > maxProgressBytes {
		return nil, fmt.Errorf("reply from %s is larger than %d bytes", url, maxProgressBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("HTTP %s from %s: %s", resp.Status, url, excerpt(body))
	}
	return parseVerifierProgress(body)
}

func parseVerifierProgress(body []byte) (*verifierProgress, error) {
	var reply struct {
		Progress *verifierProgress `json:"progress"`
		Error    json.RawMessage   `json:"error"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, fmt.Errorf("not a JSON progress report: %v (body starts %s)", err, excerpt(body))
	}
	for _, raw := range []json.RawMessage{reply.Error, progressError(reply.Progress)} {
		if text := jsonText(raw); text != "" {
			return nil, fmt.Errorf("the verifier reported an error: %s", text)
		}
	}
	if reply.Progress == nil {
		return nil, fmt.Errorf("no \"progress\" object in the reply (body starts %s)", excerpt(body))
	}
	return reply.Progress, nil
}

func progressError(p *verifierProgress) json.RawMessage {
	if p == nil {
		return nil
	}
	return p.Error
}
