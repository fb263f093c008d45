package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// notification is one alert of one webhook notification from Alertmanager.
type notification struct {
	seq         int
	Status      string            `json:"status"` // firing or resolved
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

func (n notification) String() string {
	keys := slices.Sorted(maps.Keys(n.Labels))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q ", k, n.Labels[k])
	}
	return n.Status + " {" + strings.TrimSpace(b.String()) + "}"
}

// webhook is the Alertmanager receiver: it records every alert it is told about.
type webhook struct {
	srv *httptest.Server

	mu       sync.Mutex
	received []notification
	problems []string
}

func newWebhook(t *testing.T) *webhook {
	t.Helper()
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var msg struct {
			Version string         `json:"version"`
			Status  string         `json:"status"`
			Alerts  []notification `json:"alerts"`
		}
		err := json.NewDecoder(r.Body).Decode(&msg)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil || r.Method != http.MethodPost {
			w.problems = append(w.problems, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
			http.Error(rw, "bad notification", http.StatusBadRequest)
			return
		}
		for _, a := range msg.Alerts {
			a.seq = len(w.received)
			w.received = append(w.received, a)
		}
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) url() string { return w.srv.URL + "/alerts" }

// mark is the position after the notifications received so far.
func (w *webhook) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.received)
}

func (w *webhook) all() []notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.received)
}

// find returns the first notification from position since with the status and exactly
// the labels given.
func (w *webhook) find(since int, status string, labels map[string]string) (notification, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.received[min(since, len(w.received)):] {
		if n.Status == status && maps.Equal(n.Labels, labels) {
			return n, true
		}
	}
	return notification{}, false
}

// await waits for a notification with the status and exactly the labels given. On
// timeout it lists what arrived for the same alert name, to show what differed.
func (w *webhook) await(t *testing.T, since int, status string, labels map[string]string, timeout time.Duration) notification {
	t.Helper()
	var got notification
	eventually(t, timeout, fmt.Sprintf("Alertmanager to notify %s %v", status, labels), func() (bool, string) {
		n, ok := w.find(since, status, labels)
		if ok {
			got = n
			return true, ""
		}
		var same []string
		for _, n := range w.all()[since:] {
			if n.Labels["alertname"] == labels["alertname"] {
				same = append(same, n.String())
			}
		}
		return false, fmt.Sprintf("received for this alert name: %v", same)
	})
	return got
}
