package mongoerr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// attempts runs command n times through one client of uri, as the exporter and the
// collector do (one long-lived client), and returns the descriptions of the errors.
func attempts(t *testing.T, uri string, command bson.D, n int, selection time.Duration) []string {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(selection).SetTimeout(selection + 2*time.Second))
	if err != nil {
		return []string{Describe(err)}
	}
	defer client.Disconnect(context.Background())
	var out []string
	for len(out) < n {
		text := Describe(client.Database("admin").RunCommand(t.Context(), command).Err())
		// An operation that waited while another failed sees the pool cleared: a
		// transient state of its own, not the cause this test is about.
		if !strings.HasPrefix(text, "the connection pool was cleared") {
			out = append(out, text)
		}
	}
	return out
}

var pingCommand = bson.D{{Key: "ping", Value: 1}}

// freePort is a local address nothing listens on.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// listen serves every connection with serve, for stand-ins that are not MongoDB.
func listen(t *testing.T, l net.Listener, serve func(net.Conn)) string {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return l.Addr().String()
}

func TestDescribeNamesTheCause(t *testing.T) {
	srv := mongotest.New(t, "a server to authenticate against and to fail commands", mongotest.Options{})
	hostPort := strings.TrimPrefix(strings.SplitN(srv.URI(), "/?", 2)[0], "mongodb://")
	refused := freePort(t)

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	notTLS := listen(t, plain, func(c net.Conn) { c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n")) })
	selfSigned := httptest.NewUnstartedServer(nil) // only for its certificate
	selfSigned.StartTLS()
	defer selfSigned.Close()
	tlsListener, err := tls.Listen("tcp", "127.0.0.1:0", selfSigned.TLS)
	if err != nil {
		t.Fatal(err)
	}
	untrusted := listen(t, tlsListener, func(c net.Conn) { _ = c.(*tls.Conn).Handshake() })

	cases := []struct {
		name, uri string
		command   bson.D
		want      string
		answers   bool // the server at uri answers commands
	}{
		{"connection refused", "mongodb://" + refused, pingCommand,
			"no server available within the server selection timeout; last error from " + refused + ": connection refused (nothing listens on that port, or a firewall rejects it)", false},
		{"host not found", "mongodb://no-such-host.invalid:27017", pingCommand,
			`no server available within the server selection timeout; last error from no-such-host.invalid:27017: cannot resolve host "no-such-host.invalid": `, false},
		{"server without TLS", "mongodb://" + notTLS + "/?tls=true", pingCommand,
			"no server available within the server selection timeout; last error from " + notTLS + ": TLS handshake failed: the server does not speak TLS (remove tls=true, or check the port)", false},
		{"untrusted certificate", "mongodb://" + untrusted + "/?tls=true", pingCommand,
			"no server available within the server selection timeout; last error from " + untrusted + ": TLS: the server's certificate is signed by an unknown authority (set tlsCAFile)", false},
		{"authentication", "mongodb://monitor:hunter2@" + hostPort + "/?authMechanism=SCRAM-SHA-256", pingCommand,
			"authentication failed (mechanism SCRAM-SHA-256): server error AuthenticationFailed (code 18): Authentication failed.", true},
		{"server error", srv.URI(), bson.D{{Key: "noSuchCommand", Value: 1}},
			"server error CommandNotFound (code 59): no such command: 'noSuchCommand'", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// A server that answers is given time to: on a loaded machine its first
			// handshake can outlast a short selection timeout, which would then be
			// the cause described instead of the server's answer.
			selection := 500 * time.Millisecond
			if c.answers {
				selection = 10 * time.Second
			}
			// The first attempt may end before the driver's first check of the server
			// (no error known yet); from then on, every attempt gives the same words, so
			// a log-once-per-change policy logs the cause once.
			got := attempts(t, c.uri, c.command, 4, selection)
			last := got[len(got)-1]
			if !strings.HasPrefix(last, c.want) {
				t.Errorf("Describe:\n%s\nwant it to start with:\n%s", last, c.want)
			}
			if got[1] != last || got[2] != last {
				t.Errorf("attempts were described differently:\n%s", strings.Join(got, "\n"))
			}
			if strings.Contains(strings.Join(got, ""), "hunter2") {
				t.Errorf("the password reached the description: %s", got)
			}
		})
	}
}

func TestDescribeServerTimeLimit(t *testing.T) {
	uri := mongotest.URI(t)
	admin, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Disconnect(context.Background())
	if err := admin.Database("admin").RunCommand(t.Context(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: MaxTimeMSExpired}}},
	}).Err(); err != nil {
		t.Fatal(err)
	}
	err = admin.Database("x").Collection("y").FindOne(t.Context(), bson.D{}).Err()
	if got, want := Describe(err), "the server stopped the operation at its time limit (MaxTimeMSExpired)"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}

func TestDescribeWording(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{driver.Error{Code: 13, Name: "Unauthorized", Message: `not authorized on admin to execute command { listDatabases: 1, lsid: { id: UUID("5d1e") } }`},
			"not authorized (Unauthorized, code 13): not authorized on admin to execute command; grant the user the read role on that database"},
		{mongo.CommandError{Code: 18, Name: "AuthenticationFailed", Message: "Authentication failed."},
			"authentication failed: server error AuthenticationFailed (code 18): Authentication failed."},
		{fmt.Errorf("reading: %w", context.DeadlineExceeded), "timed out"},
		{mongo.ErrClientDisconnected, "the client was closed (a configuration reload replaced it)"},
		{errors.New("connection pool for db0:27017 was cleared because another operation failed with: EOF"),
			"the connection pool was cleared after an earlier failure; the next read tries again"},
		{errors.New("connection(db0:27017[-7]) socket was unexpectedly closed"), "connection socket was unexpectedly closed"},
		{driver.Error{Message: "connection(db0:27017[-7]) incomplete read of message header: EOF", Wrapped: io.EOF, Labels: []string{"NetworkError"}},
			"connection closed by the server (a TLS server reached without TLS, or the server refused the client)"},
		{errors.New(`error parsing uri: mongodb://u:hunter2@h:x is bad`), "error parsing uri: mongodb://u:xxxxx@h:x is bad"},
	}
	for _, c := range cases {
		if got := Describe(c.err); got != c.want {
			t.Errorf("Describe(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// A scrape's read that times out names both deadlines once the scrape's has passed (the
// driver cannot tell which ended it); before, and for every other cause, Describe's words.
func TestScrapeError(t *testing.T) {
	ended, cancel := context.WithTimeout(t.Context(), 0)
	defer cancel()
	<-ended.Done()
	refused := driver.Error{Code: Unauthorized, Name: "Unauthorized", Message: "not authorized on meta"}
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{ended, fmt.Errorf("reading: %w", context.DeadlineExceeded), "metadata database: no answer within the timeout of 5s or the scrape deadline"},
		{t.Context(), context.DeadlineExceeded, "metadata database: timed out"},
		{ended, refused, "metadata database: not authorized (Unauthorized, code 13): not authorized on meta; grant the user the read role on that database"},
	} {
		if got := ScrapeError(c.ctx, 5*time.Second, "metadata database", c.err).Error(); got != c.want {
			t.Errorf("ScrapeError(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
