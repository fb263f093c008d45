package httpserve

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"gopkg.in/yaml.v3"
)

// refuseCrossOrigin makes every state-changing request (POST, PUT, PATCH, DELETE) that
// a browser sends from another site fail with 403: a page elsewhere must not reload a
// daemon, or wipe a store, through the browser of someone who can reach it. It is the
// standard library's check (the browser's Sec-Fetch-Site header, else Origin against
// Host); requests from programs such as curl, which send neither, pass. The refusal is
// logged with the others (refusalLog).
func refuseCrossOrigin(h http.Handler) http.Handler {
	protection := http.NewCrossOriginProtection()
	protection.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "cross-origin request refused: this endpoint changes state, and a browser sent it from another site", http.StatusForbidden)
	}))
	return protection.Handler(h)
}

// WebAuth tells who the web server (exporter-toolkit, with --web.config.file)
// authenticated. The file is read again at each question, as the toolkit reads it at
// each request, so a changed file is followed.
type WebAuth struct {
	File string // --web.config.file; empty when none is given
}

// webAuthConfig is the part of the toolkit's web config that says who is authenticated.
type webAuthConfig struct {
	Users map[string]string `yaml:"basic_auth_users"`
	TLS   struct {
		ClientAuth string `yaml:"client_auth_type"`
	} `yaml:"tls_server_config"`
}

func (a WebAuth) read() (webAuthConfig, error) {
	var c webAuthConfig
	if a.File == "" {
		return c, nil
	}
	data, err := os.ReadFile(a.File)
	if err != nil {
		return c, fmt.Errorf("reading --web.config.file: %w", err)
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("--web.config.file %s: %w", a.File, err)
	}
	return c, nil
}

// Configured tells whether every request is authenticated: by basic auth, or by a
// client certificate the server verifies.
func (a WebAuth) Configured() (bool, error) {
	c, err := a.read()
	return len(c.Users) > 0 || c.TLS.ClientAuth == "RequireAndVerifyClientCert", err
}

// User names the user the server authenticated for r: the basic-auth user when the web
// config has users (the toolkit checked the password before the request got here), or
// the subject of a verified client certificate. ok is false when nobody was.
func (a WebAuth) User(r *http.Request) (user string, ok bool) {
	c, err := a.read()
	if err != nil {
		return "", false
	}
	if name, _, given := r.BasicAuth(); given && len(c.Users) > 0 {
		if _, known := c.Users[name]; known {
			return name, true
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return certificateName(r.TLS.VerifiedChains[0][0]), true
	}
	return "", false
}

func certificateName(cert *x509.Certificate) string {
	return "cert:" + cert.Subject.String()
}
