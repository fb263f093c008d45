package collector

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
)

// Routes of the control API, for the server and its client (client.go).
const (
	routeSources    = "/api/v1/sources"
	routeSource     = "/api/v1/sources/{name}"
	routeReset      = "/api/v1/sources/{name}/reset"
	routeDeregister = "/api/v1/sources/{name}/deregister"
	routeResume     = "/api/v1/sources/{name}/resume"
)

// AdminAPI decides whether the control API's destructive commands (reset, deregister,
// resume) are served, and who sends them.
type AdminAPI struct {
	// Enabled is --web.enable-admin-api: off, the commands answer 403.
	Enabled bool
	// Authenticate names the user the web server authenticated (basic auth or a
	// verified client certificate); ok is false when it authenticated nobody.
	Authenticate func(*http.Request) (user string, ok bool)
}

// ConfirmRequest is the body of a destructive command: the source's name again. It
// must come as JSON, which a browser cannot send to another site without asking it
// first (a CORS preflight, which this API never grants).
type ConfirmRequest struct {
	Confirm string `json:"confirm"`
	// From is where a resume starts: earliest, an RFC 3339 time or seconds,increment.
	From string `json:"from,omitempty"`
}

// Handler serves the control API next to /metrics, behind the same web config (TLS
// and basic auth):
//
//	GET  /api/v1/sources                    every source's state, as JSON
//	GET  /api/v1/sources/{name}             one source's state, with its stored events
//	POST /api/v1/sources/{name}/reset       wipe the source's store and capture from now
//	POST /api/v1/sources/{name}/deregister  stop, wipe, and delete its metadata document
//	POST /api/v1/sources/{name}/resume      capture again from a time the source still holds
//
// The POSTs need admin.Enabled, an authenticated user, and {"confirm": "<name>"}
// (and, for resume, "from").
func (m *Manager) Handler(admin AdminAPI) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+routeSources, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, m.Status()) })
	mux.HandleFunc("GET "+routeSource, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		st, err := m.SourceStatus(ctx, r.PathValue("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST "+routeReset, destructive(admin, "reset", func(ctx context.Context, name string, _ ConfirmRequest, by Requester) (Wiped, error) {
		return m.Reset(ctx, name, by)
	}))
	mux.HandleFunc("POST "+routeDeregister, destructive(admin, "deregister", func(ctx context.Context, name string, _ ConfirmRequest, by Requester) (Wiped, error) {
		return m.Deregister(ctx, name, by)
	}))
	mux.HandleFunc("POST "+routeResume, destructive(admin, "resume", func(ctx context.Context, name string, body ConfirmRequest, by Requester) (Resumed, error) {
		return m.Resume(ctx, name, body.From, by)
	}))
	return mux
}

// maxCommandBody bounds a command's body: {"confirm": "<name>"} is a few bytes.
const maxCommandBody = 4096

func destructive[T any](admin AdminAPI, action string, do func(context.Context, string, ConfirmRequest, Requester) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		// Refusals are logged where the server logs every refused request (httpserve).
		refuse := func(code int, why string) { http.Error(w, why, code) }
		if !admin.Enabled {
			refuse(http.StatusForbidden, "the admin API is off: start oplog_collector with --web.enable-admin-api (and authentication in --web.config.file) to "+action+" sources through it")
			return
		}
		user, ok := admin.Authenticate(r)
		if !ok {
			refuse(http.StatusForbidden, "admin API requests must be authenticated: configure basic_auth_users or client certificates in --web.config.file")
			return
		}
		if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/json" {
			refuse(http.StatusUnsupportedMediaType, `send Content-Type: application/json with the body {"confirm": "<source name>"}`)
			return
		}
		var body ConfirmRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCommandBody)).Decode(&body); err != nil || body.Confirm != name {
			refuse(http.StatusBadRequest, `the body must be {"confirm": "`+name+`"}: the source's name again, as a confirmation`)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		done, err := do(ctx, name, body, Requester{User: user, RemoteAddr: r.RemoteAddr, Via: "api"})
		switch {
		case errors.Is(err, ErrUnknownSource):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, ErrBadResumePoint):
			http.Error(w, err.Error(), http.StatusBadRequest)
		case errors.Is(err, ErrNotHolder), errors.Is(err, ErrNotHeld), errors.Is(err, errWrongCluster):
			http.Error(w, describe(err), http.StatusConflict)
		case err != nil:
			http.Error(w, describe(err), http.StatusInternalServerError)
		default:
			writeJSON(w, http.StatusOK, done)
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
