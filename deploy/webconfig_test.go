package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/mongomigrate/observability/internal/testsupport"
)

const webConfigExample = "web-config.example.yml"

// webConfig is the part of the example the tests read and rewrite.
type webConfig struct {
	TLS   map[string]string `yaml:"tls_server_config"`
	Users map[string]string `yaml:"basic_auth_users"`
}

func loadWebConfigExample(t *testing.T) (raw map[string]any, cfg webConfig) {
	t.Helper()
	decodeYAML(t, webConfigExample, &raw)
	decodeYAML(t, webConfigExample, &cfg)
	return raw, cfg
}

// The example asks for TLS 1.2 or later and basic auth with one user, whose hash (of a
// random password nobody knows, so the file as shipped lets no one in) is bcrypt of cost 12.
func TestWebConfigExample(t *testing.T) {
	_, cfg := loadWebConfigExample(t)
	if cfg.TLS["cert_file"] == "" || cfg.TLS["key_file"] == "" || cfg.TLS["min_version"] != "TLS12" {
		t.Errorf("tls_server_config should give cert_file, key_file and min_version TLS12: %v", cfg.TLS)
	}
	if len(cfg.Users) != 1 {
		t.Fatalf("want one example user, found %v", cfg.Users)
	}
	for user, hash := range cfg.Users {
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != 12 {
			t.Errorf("user %s: %q is not a bcrypt hash of cost 12 (%d, %v)", user, hash, cost, err)
		}
	}
}

// The example, given real certificate files and a known password, is accepted by promtool
// and by mongosync_exporter: HTTPS only, 401 without the password, /metrics with it.
func TestWebConfigExampleServes(t *testing.T) {
	promtool := testsupport.Promtool(t, "checking the example web configuration")
	raw, cfg := loadWebConfigExample(t)
	dir := t.TempDir()
	caPool := writeServerCertificate(t, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	const user, password = "prometheus", "a password for this test"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Users[user]; !ok {
		t.Fatalf("the example has no user %q: %v", user, cfg.Users)
	}
	tlsConfig, ok := raw["tls_server_config"].(map[string]any)
	if !ok {
		t.Fatalf("the example has no tls_server_config mapping: %v", raw)
	}
	tlsConfig["cert_file"], tlsConfig["key_file"] = "server.crt", "server.key" // relative to the file
	raw["basic_auth_users"] = map[string]any{user: string(hash)}
	out, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	webConfigFile := filepath.Join(dir, "web-config.yml")
	if err := os.WriteFile(webConfigFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := exec.Command(promtool, "check", "web-config", webConfigFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check web-config: %v\n%s", err, res)
	}

	configFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configFile, []byte("exporter: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startBinary(t, "mongosync_exporter", "--config.file="+configFile,
		"--web.config.file="+webConfigFile, "--web.listen-address=127.0.0.1:0")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool}}}
	get := func(url, user, password string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	url := "https://" + addr + "/metrics"
	if code, _ := get(url, "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a password: %d, want 401", code)
	}
	if code, _ := get(url, user, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics with a wrong password: %d, want 401", code)
	}
	if code, body := get(url, user, password); code != http.StatusOK || !strings.Contains(body, "mongosync_exporter_build_info") {
		t.Errorf("GET /metrics with the password: %d, want 200 and the exporter's metrics:\n%.300s", code, body)
	}
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served /metrics: the example must enforce TLS")
		}
	}
}

var listeningOn = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// listeningAddress waits for the exporter toolkit's "Listening on" log line.
func listeningAddress(t *testing.T, logs *testsupport.LogBuffer) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := listeningOn.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no \"Listening on\" log line within a minute:\n%s", logs)
	return ""
}

// writeServerCertificate writes a self-signed certificate for 127.0.0.1 and its key, and
// returns a pool that trusts it.
func writeServerCertificate(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "web-config test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
