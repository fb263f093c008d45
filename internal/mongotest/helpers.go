package mongotest

import (
	"os"
	"testing"
)

// EnvURI names the environment variable that points tests at a real
// replica set (started with enableTestCommands=1 for failpoints).
const EnvURI = "MONGODB_URI"

// URI returns the server a test should use: MONGODB_URI when set,
// otherwise a new fake server stopped when the test ends.
func URI(t testing.TB) string {
	t.Helper()
	if uri := os.Getenv(EnvURI); uri != "" {
		return uri
	}
	return start(t, Options{}).URI()
}

// New starts a fake server for a test that can only run on the fake
// (history truncation, listener restarts, short TTL or no-op intervals).
// why names what the test needs; when MONGODB_URI is set the test is
// skipped with that reason rather than silently run elsewhere.
func New(t testing.TB, why string, opts Options) *Server {
	t.Helper()
	if os.Getenv(EnvURI) != "" {
		t.Skipf("needs the mongotest fake server for %s, which a real server cannot provide on demand; %s is set, so these tests run against that server instead: unset it to run this one", why, EnvURI)
	}
	return start(t, opts)
}

func start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("mongotest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
