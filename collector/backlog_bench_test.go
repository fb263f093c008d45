package collector

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/testsupport"
)

// BenchmarkBacklogMemory: the store stops answering (its process is paused with
// SIGSTOP) while 1,000,000 events are written to the source. The collector's heap must
// stay flat, bounded by its buffer, whatever the backlog: the rest waits in the source's
// change history. Reports the peak heap in use, sampled every 50 ms.
func BenchmarkBacklogMemory(b *testing.B) {
	const backlog = 1_000_000
	srcURI, _ := mongotestdProcess(b, "--history", "2000000")
	storeURI, storeProc := mongotestdProcess(b)
	src := testsupport.Connect(b, srcURI)
	for b.Loop() {
		text := fmt.Sprintf("collector:\n  store: {uri: %q}\n  buffer: {max_events: 20000, max_bytes: 16777216}\n  sources:\n    - {name: backlog, uri: %q, database: backlog}\n", storeURI, srcURI)
		cfg, err := config.ForCollector.Parse([]byte(text), "bench.yml")
		if err != nil {
			b.Fatal(err)
		}
		m := NewManager(prometheus.NewRegistry(), log.NewNopLogger(), testOptions())
		if err := m.Apply(cfg); err != nil {
			b.Fatal(err)
		}
		waitRunning(b, m, "backlog")
		if err := storeProc.Signal(syscall.SIGSTOP); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		// The heap's peak in each quarter of the backlog: flat means bounded.
		var mu sync.Mutex
		peak := base.HeapInuse
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				mu.Lock()
				peak = max(peak, ms.HeapInuse)
				mu.Unlock()
			}
		}()
		for quarter := range 4 {
			writeEventsFrom(b, src, "backlog", quarter*backlog/4, backlog/4)
			mu.Lock()
			b.ReportMetric(float64(peak)/(1<<20), fmt.Sprintf("peak-heap-MiB-at-%dk", (quarter+1)*backlog/4000))
			peak = 0
			mu.Unlock()
		}
		close(stop)
		<-sampled
		_ = storeProc.Signal(syscall.SIGCONT)
		b.ReportMetric(float64(base.HeapInuse)/(1<<20), "start-heap-MiB")
		stopManager(m)
	}
}

func waitRunning(b testing.TB, m *Manager, name string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, s := range m.Status() {
			if s.Name == name && s.State == stateRunning {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("%s never ran", name)
}
