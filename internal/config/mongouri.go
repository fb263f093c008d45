package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	commoncfg "github.com/prometheus/common/config"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// MongoURI is a MongoDB connection string, given inline (uri, usually as ${ENV_VAR})
// or read from a file (uri_file). It holds credentials: it is never logged.
type MongoURI struct {
	URI     commoncfg.Secret `yaml:"uri"`
	URIFile string           `yaml:"uri_file"`
}

// Resolve returns the connection string, reading uri_file when that is how it is given.
func (m MongoURI) Resolve() (string, error) {
	if m.URIFile == "" {
		return string(m.URI), nil
	}
	data, err := os.ReadFile(m.URIFile)
	if err != nil {
		return "", fmt.Errorf("cannot read uri_file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// ValidateMongoURI checks a connection string as the driver checks it when a client is
// made (mongo.Connect), without contacting any server: the configuration check, the
// loading of the file and the daemons accept exactly the same strings. A mongodb+srv://
// host whose DNS records cannot be read now is not an error here: the daemons retry it
// as they retry an unreachable server.
//
// Errors never quote the connection string: they name what is wrong with it, with the
// user information, secret options and %-escapes taken out.
func ValidateMongoURI(uri string) error {
	if !strings.HasPrefix(uri, "mongodb://") && !strings.HasPrefix(uri, "mongodb+srv://") {
		return errors.New("not a MongoDB connection string: it must start with mongodb:// or mongodb+srv://")
	}
	opts := options.Client().ApplyURI(uri)
	err := opts.Validate()
	if err == nil && opts.Auth != nil {
		// What mongo.Connect checks next, before it starts any connection.
		_, err = auth.CreateAuthenticator(opts.Auth.AuthMechanism, topology.ConvertCreds(opts.Auth), opts.HTTPClient)
	}
	if err == nil {
		_, err = topology.NewAuthenticatorConfig(nil, topology.WithAuthConfigClientOptions(opts))
	}
	var dns *net.DNSError
	if err == nil || errors.As(err, &dns) {
		return nil
	}
	return errors.New(scrubURIError(uri, err.Error()))
}

// check validates the URI where the configuration gives it (uri, or the file uri_file
// names, relative to the config file's directory) and says what is wrong at that key.
func (m *MongoURI) check(doc *document, path, dir string) {
	switch {
	case m.URI == "" && m.URIFile == "":
		doc.addf(path, "missing required key \"uri\" (or \"uri_file\")")
		return
	case m.URI != "" && m.URIFile != "":
		doc.addf(path+".uri_file", "give uri or uri_file, not both")
		return
	case m.URIFile != "":
		m.URIFile = commoncfg.JoinDir(dir, m.URIFile)
		path += ".uri_file"
	default:
		path += ".uri"
	}
	uri, err := m.Resolve()
	if err == nil {
		err = ValidateMongoURI(uri)
	}
	if err != nil {
		doc.addf(path, "%v", err)
	}
}

// looksLikeUserInfo tells whether a host list without @ may hold a user and password:
// a host with more than one colon (not a bracketed IPv6 address), or whose port is not
// a number.
func looksLikeUserInfo(authority string) bool {
	for _, host := range strings.Split(authority, ",") {
		if strings.HasPrefix(host, "[") {
			continue
		}
		if i := strings.LastIndex(host, ":"); i >= 0 {
			port := host[i+1:]
			if strings.Count(host, ":") > 1 || port == "" || strings.Trim(port, "0123456789") != "" {
				return true
			}
		}
	}
	return false
}

var (
	// badEscape is the driver's report of a %-escape it cannot decode, quoting it.
	badEscape = regexp.MustCompile(`invalid URL escape "[^"]*"`)
	// secretOption names the options whose values are secrets.
	secretOption = regexp.MustCompile(`(?i)password|secret|token|authmechanismproperties`)
)

// scrubURIError removes from a driver's error what could be secret: the user
// information, the whole host part when it has no @ (a password may sit there), the
// values of secret options, and the text of bad %-escapes.
func scrubURIError(uri, text string) string {
	text = badEscape.ReplaceAllString(text, "invalid %-escape (write % as %25)")
	rest := uri[strings.Index(uri, "://")+3:]
	authority, query := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, query = rest[:i], rest[i:]
	}
	var secrets []string
	hint := ""
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		secrets = append(secrets, authority[:at])
		secrets = append(secrets, strings.Split(authority[:at], ":")...)
	} else if looksLikeUserInfo(authority) {
		secrets = append(secrets, authority)
		secrets = append(secrets, strings.FieldsFunc(authority, func(r rune) bool { return r == ':' || r == ',' })...)
		hint = " (user:password needs an @ before the host, and a : @ / or % in them must be written %3A %40 %2F %25)"
	}
	if _, q, ok := strings.Cut(query, "?"); ok {
		for _, pair := range strings.Split(q, "&") {
			key, value, _ := strings.Cut(pair, "=")
			if secretOption.MatchString(key) && value != "" {
				secrets = append(secrets, value)
				if decoded, err := url.QueryUnescape(value); err == nil {
					secrets = append(secrets, decoded)
				}
			}
		}
	}
	var decoded []string
	for _, s := range secrets {
		if d, err := url.PathUnescape(s); err == nil && d != s {
			decoded = append(decoded, d)
		}
	}
	secrets = append(secrets, decoded...)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) }) // longest first
	for _, s := range secrets {
		if len(s) >= 2 {
			text = strings.ReplaceAll(text, s, "xxxxx")
		}
	}
	return text + hint
}
