package collector

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Handler serves the control API next to /metrics (behind the same web config: TLS
// and basic auth):
//
//	GET  /api/v1/sources                    every source's state, as JSON
//	POST /api/v1/sources/{name}/reset       wipe the source's store and capture from now
//	POST /api/v1/sources/{name}/deregister  stop, wipe, and delete its metadata document
//
// The reset and deregister commands of the oplog_collector binary call it.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/sources", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m.Status())
	})
	mux.HandleFunc("POST /api/v1/sources/{name}/reset", m.command(m.Reset))
	mux.HandleFunc("POST /api/v1/sources/{name}/deregister", m.command(m.Deregister))
	return mux
}

func (m *Manager) command(do func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		err := do(ctx, r.PathValue("name"))
		switch {
		case errors.Is(err, ErrUnknownSource):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, describe(err), http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}
