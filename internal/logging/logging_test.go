package logging

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-kit/log"
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

// A library's lines (exporter-toolkit's, through the slog bridge) look like the
// project's: the same keys in the same order, one timestamp, no caller.
func TestOneFormatForEveryLine(t *testing.T) {
	for _, format := range []string{"logfmt", "json"} {
		var buf bytes.Buffer
		logger := New(&Flags{Level: "info", Format: format}, &buf)
		level.Info(log.With(logger, "collector", "x")).Log("msg", "from the project", "k", "v")
		Slog(logger).Info("from a library", "k", "v")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("%s: %d lines:\n%s", format, len(lines), buf.String())
		}
		for _, line := range lines {
			if strings.Contains(line, "caller") || strings.Contains(line, "time") {
				t.Errorf("%s: a caller or second time: %s", format, line)
			}
			if format == "logfmt" && !regexp.MustCompile(`^ts=\S+ level=info msg=`).MatchString(line) {
				t.Errorf("logfmt line does not start ts=... level=info msg=: %s", line)
			}
		}
		if format == "json" {
			var keys [2][]string
			for i, line := range lines {
				dec := json.NewDecoder(strings.NewReader(line))
				dec.Token()
				for dec.More() {
					key, _ := dec.Token()
					keys[i] = append(keys[i], key.(string))
					var skip any
					dec.Decode(&skip)
				}
			}
			if !slices.Contains(keys[0], "ts") || !slices.Contains(keys[1], "ts") || len(keys[1]) != 4 {
				t.Errorf("json keys: project %v, library %v", keys[0], keys[1])
			}
		}
	}
}
