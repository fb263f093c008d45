package collector

import (
	"errors"
	"fmt"
	"strings"
)

// Ready says whether every configured source is capturing (running) or standing by
// while another collector holds it: the collector's /-/ready. The error names each
// source that is neither, with its state and last error.
func (m *Manager) Ready() error {
	m.mu.Lock()
	cfg := m.cfg
	m.mu.Unlock()
	if cfg == nil {
		return errors.New("no configuration in force: not started yet, or stopped")
	}
	sources := m.snapshot()
	var waiting []string
	for _, s := range cfg.Sources {
		r, ok := sources[s.Name]
		if !ok {
			waiting = append(waiting, s.Name+": not started")
			continue
		}
		st := r.src.status()
		if st.State == stateRunning || st.State == stateStandby {
			continue
		}
		why := s.Name + ": " + st.State
		if st.Error != "" {
			why += " (" + st.Error + ")"
		}
		waiting = append(waiting, why)
	}
	if len(waiting) > 0 {
		return fmt.Errorf("%d of %d sources neither running nor standing by: %s", len(waiting), len(cfg.Sources), strings.Join(waiting, "; "))
	}
	return nil
}
