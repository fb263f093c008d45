package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// With no collector at --collector.url, status says to start one or read the store with
// range, and never suggests --offline, which status does not take.
func TestStatusWithoutACollector(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := l.Addr().String()
	l.Close()
	code, out := runCLI(t, "status", "--collector.url", "http://"+free)
	if code != 1 || strings.Contains(out, "--offline") || !strings.Contains(out, "oplog_collector run") || !strings.Contains(out, "oplog_collector range") {
		t.Errorf("status with no collector: exit %d\n%s", code, out)
	}
	if code, out := runCLI(t, "status", "--offline"); code != 2 || !strings.Contains(out, "unknown long flag '--offline'") {
		t.Errorf("status --offline: exit %d\n%s (status takes no --offline: the message must not suggest it)", code, out)
	}
}

// status --format json gives each source as the collector's API does, with the lag and
// window the text shows, in seconds.
func TestStatusJSON(t *testing.T) {
	uri := startMongotestd(t)
	d := startDaemon(t, writeCollectorConfig(t, uri, "alpha"))
	var sources []map[string]any
	eventually(t, "status --format json to show alpha running with its lag", func() bool {
		code, out := runCLI(t, "status", "--format", "json", "--collector.url", d.url)
		if code != 0 {
			t.Fatalf("status --format json: exit %d\n%s", code, out)
		}
		if err := json.Unmarshal([]byte(out), &sources); err != nil {
			t.Fatalf("status --format json is not a JSON array: %v\n%s", err, out)
		}
		return len(sources) == 1 && sources[0]["state"] == "running" && sources[0]["lag_seconds"] != nil
	})
	s := sources[0]
	if s["name"] != "alpha" || s["checkpoint"] == nil {
		t.Errorf("status --format json: %v", s)
	}
	if lag, ok := s["lag_seconds"].(float64); !ok || lag < 0 {
		t.Errorf("lag_seconds %v", s["lag_seconds"])
	}
}
