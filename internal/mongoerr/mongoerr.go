package mongoerr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/mongomigrate/observability/internal/redact"
)

// Describe returns the cause of err in stable words, or "" for nil.
func Describe(err error) string {
	if err == nil {
		return ""
	}
	return redact.Credentials(describe(err))
}

// ScrapeError words the failure of a scrape's read, "what: cause", with the cause as
// Describe words it. A read that timed out after ctx ended names the two deadlines that
// bound it, the target's timeout and the scrape's, since either may be the one to raise.
func ScrapeError(ctx context.Context, timeout time.Duration, what string, err error) error {
	cause := Describe(err)
	if ctx.Err() != nil && cause == timedOut {
		cause = fmt.Sprintf("no answer within the timeout of %s or the scrape deadline", timeout)
	}
	return fmt.Errorf("%s: %s", what, cause)
}

func describe(err error) string {
	var selection topology.ServerSelectionError
	if errors.As(err, &selection) {
		return describeSelection(selection)
	}
	if text, ok := authentication(err); ok {
		return text
	}
	// A network error reaches the caller inside a driver error without a code.
	var server driver.Error
	if errors.As(err, &server) && server.Code != 0 {
		return serverError(server.Code, server.Name, server.Message)
	}
	var command mongo.CommandError
	if errors.As(err, &command) && command.Code != 0 {
		return serverError(command.Code, command.Name, command.Message)
	}
	if text, ok := network(err); ok {
		return text
	}
	switch {
	case strings.Contains(err.Error(), poolCleared):
		return "the connection pool was cleared after an earlier failure; the next read tries again"
	case errors.Is(err, mongo.ErrClientDisconnected):
		return "the client was closed (a configuration reload replaced it)"
	case errors.Is(err, context.DeadlineExceeded), mongo.IsTimeout(err):
		return timedOut
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return connectionIDs.ReplaceAllString(err.Error(), "connection")
}

// timedOut is the cause of an operation that ran out of time on the client's side.
const timedOut = "timed out"

// poolCleared is how the driver's (unexported) pool-cleared error reads: an operation
// that was waiting for a connection while another one failed.
const poolCleared = "was cleared because another operation failed"

// connectionIDs matches the driver's "connection(host:port[-7])" prefixes, whose
// counter changes at every attempt.
var connectionIDs = regexp.MustCompile(`connection\([^)]*\)`)

// describeSelection says why no server could be selected: the last error of each server
// the driver knows (the cause, such as connection refused), or the topology it found.
func describeSelection(e topology.ServerSelectionError) string {
	var causes []string
	for _, s := range e.Desc.Servers {
		if s.LastError != nil {
			cause := describe(s.LastError)
			causes = append(causes, fmt.Sprintf("%s: %s", s.Addr, strings.TrimPrefix(cause, s.Addr.String()+": ")))
		}
	}
	slices.Sort(causes)
	causes = slices.Compact(causes)
	switch {
	case len(causes) > 0:
		return "no server available within the server selection timeout; last error from " + strings.Join(causes, "; from ")
	case len(e.Desc.Servers) == 0:
		return "no server available within the server selection timeout; no server is known yet"
	}
	return fmt.Sprintf("no suitable server within the server selection timeout (topology %s: no primary, or none answered yet)", e.Desc.Kind)
}

var mechanism = regexp.MustCompile(`mechanism "([^"]+)"`)

// authentication recognises a failed authentication, with the mechanism and the
// server's answer.
func authentication(err error) (string, bool) {
	var authErr *auth.Error
	if !errors.As(err, &authErr) {
		var command mongo.CommandError
		if errors.As(err, &command) && command.Code == AuthenticationFailed {
			return "authentication failed: " + serverError(command.Code, command.Name, command.Message), true
		}
		return "", false
	}
	text := "authentication failed"
	if m := mechanism.FindStringSubmatch(err.Error()); m != nil {
		text += " (mechanism " + m[1] + ")"
	}
	var server driver.Error
	switch {
	case errors.As(err, &server) && server.Code != 0:
		text += ": " + serverError(server.Code, server.Name, server.Message)
	default:
		if cause, ok := network(err); ok {
			text += ": " + cause
		}
	}
	return text, true
}

// network recognises the causes a connection attempt fails with.
func network(err error) (string, bool) {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Sprintf("cannot resolve host %q: %s", dns.Name, dnsCause(dns)), true
	}
	addr := ""
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		addr = op.Addr.String() + ": "
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		record           tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return addr + "connection refused (nothing listens on that port, or a firewall rejects it)", true
	case errors.Is(err, syscall.ECONNRESET):
		return addr + "connection reset by the server", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return addr + "host unreachable", true
	case errors.As(err, &unknownAuthority), errors.As(err, &verification) && errors.As(verification.Err, &unknownAuthority):
		return addr + "TLS: the server's certificate is signed by an unknown authority (set tlsCAFile)", true
	case errors.As(err, &hostname):
		return addr + "TLS: the server's certificate is not valid for this host name", true
	case errors.As(err, &invalid):
		return addr + "TLS: the server's certificate is not valid: " + invalid.Error(), true
	case errors.As(err, &verification):
		return addr + "TLS: certificate verification failed: " + verification.Err.Error(), true
	case errors.As(err, &record):
		return addr + "TLS handshake failed: the server does not speak TLS (remove tls=true, or check the port)", true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return addr + "connection closed by the server (a TLS server reached without TLS, or the server refused the client)", true
	case errors.Is(err, os.ErrDeadlineExceeded):
		return addr + "timed out waiting for the server", true
	}
	if op != nil && op.Timeout() {
		return addr + "timed out waiting for the server", true
	}
	return "", false
}

func dnsCause(e *net.DNSError) string {
	switch {
	case e.IsNotFound:
		return "no such host"
	case e.IsTimeout:
		return "the DNS server did not answer in time"
	}
	return e.Err
}

// serverError words an error the server returned: its code name and number, and its
// message up to the quoted command (which carries a session id that changes).
func serverError(code int32, name, message string) string {
	if i := strings.Index(message, " {"); i > 0 {
		message = message[:i]
	}
	message = strings.TrimSpace(message)
	switch code {
	case MaxTimeMSExpired:
		return "the server stopped the operation at its time limit (MaxTimeMSExpired)"
	case Unauthorized:
		return fmt.Sprintf("not authorized (Unauthorized, code %d): %s; grant the user the read role on that database", Unauthorized, message)
	}
	if name == "" {
		return fmt.Sprintf("server error code %d: %s", code, message)
	}
	return fmt.Sprintf("server error %s (code %d): %s", name, code, message)
}
