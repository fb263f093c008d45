package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-kit/log/level"
)

func TestLevelFilterAndFormats(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&Flags{Level: "warn", Format: "logfmt"}, &buf)
	level.Info(logger).Log("msg", "hidden")
	level.Warn(logger).Log("msg", "shown")
	Slog(logger).Info("hidden too")
	Slog(logger).Error("from slog", "k", "v")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("info lines passed a warn filter:\n%s", out)
	}
	for _, want := range []string{`level=warn`, `msg=shown`, `level=error`, `msg="from slog"`, `k=v`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Count(line, "ts=") != 1 || strings.Contains(line, " time=") {
			t.Errorf("want exactly one timestamp, under ts: %s", line)
		}
	}

	buf.Reset()
	logger = New(&Flags{Level: "debug", Format: "json"}, &buf)
	level.Debug(logger).Log("msg", "json line")
	var record map[string]any
	if err := json.Unmarshal(buf.Bytes(), &record); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	if record["msg"] != "json line" || record["level"] != "debug" || record["ts"] == nil {
		t.Errorf("unexpected JSON record %v", record)
	}
}
