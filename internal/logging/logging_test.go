package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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

// With --log.format=json, every line starts with ts, level and msg, as with logfmt and
// as the README says, then the other keys in the order they were logged; the values
// are encoded as go-kit encodes them (an error as its text, a time in RFC 3339).
func TestJSONKeysInLoggedOrder(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&Flags{Level: "info", Format: "json"}, &buf)
	level.Info(log.With(logger, "source_cluster", "prod")).Log("msg", "Configuration loaded", "file", "config.yml", "err", errors.New("boom"), "at", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	Slog(logger).Warn("from a library", "address", "[::]:9782")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := [][]string{
		{"ts", "level", "msg", "source_cluster", "file", "err", "at"},
		{"ts", "level", "msg", "address"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		if keys := jsonKeys(t, line); !slices.Equal(keys, want[i]) {
			t.Errorf("keys %v, want %v: %s", keys, want[i], line)
		}
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["level"] != "info" || first["err"] != "boom" || first["at"] != "2026-01-02T03:04:05Z" {
		t.Errorf("values not encoded as go-kit does: %s", lines[0])
	}
}

// jsonKeys returns the keys of a JSON object in the order they are written.
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, line)
	}
	var keys []string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		keys = append(keys, key.(string))
		var skip any
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
	}
	return keys
}

// A key logged twice keeps its first place and its last value, as go-kit's JSON logger
// (a map) keeps the last; a value JSON cannot hold is logged as its text.
func TestJSONRepeatedKeyAndOddValues(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&Flags{Level: "info", Format: "json"}, &buf)
	level.Info(logger).Log("msg", "repeated", "k", 1, "nan", math.NaN(), "k", 2, "dangling")
	line := strings.TrimSpace(buf.String())
	if keys := jsonKeys(t, line); !slices.Equal(keys, []string{"ts", "level", "msg", "k", "nan", "dangling"}) {
		t.Errorf("keys %v: %s", keys, line)
	}
	var record map[string]any
	if err := json.Unmarshal([]byte(line), &record); err != nil {
		t.Fatal(err)
	}
	if record["k"] != 2.0 || record["nan"] != "NaN" || record["dangling"] != log.ErrMissingValue.Error() {
		t.Errorf("unexpected values: %s", line)
	}
}
