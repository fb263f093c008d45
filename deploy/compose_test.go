package deploy

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
	"gopkg.in/yaml.v3"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/testsupport"
)

const (
	root        = ".."
	composeFile = "../docker-compose.yml"
	demoConfig  = "../deploy/demo/config.yml"
)

// loadProject loads compose files as `docker compose` does, with compose-go (the
// Compose Specification's reference library): variables interpolated, the file
// validated against the specification's schema, normalised, and checked for
// consistency (every network, volume and dependency a service names is declared). No
// variable is set, as on a machine that runs `make demo` with none; paths are resolved
// against the repository's top directory.
func loadProject(t *testing.T, files ...string) (*types.Project, error) {
	t.Helper()
	dir, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions(files, cli.WithWorkingDirectory(dir), cli.WithEnv(nil), cli.WithResolvedPaths(true))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(t.Context())
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadProject(t, composeFile)
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	if len(p.Services) == 0 {
		t.Fatalf("%s has no services", composeFile)
	}
	return p
}

// The loader used here refuses what docker compose refuses: a key the specification does
// not have, an undeclared volume or network, a dependency on no service. (So the checks
// it makes are not repeated below.)
func TestLoaderRefusesInvalidFiles(t *testing.T) {
	for name, body := range map[string]string{
		"unknown key":          "services:\n  a:\n    image: x:1\n    imaeg: y\n",
		"undeclared volume":    "services:\n  a:\n    image: x:1\n    volumes: [data:/data]\n",
		"undeclared network":   "services:\n  a:\n    image: x:1\n    networks: [back]\n",
		"unknown dependency":   "services:\n  a:\n    image: x:1\n    depends_on: [b]\n",
		"neither image, build": "services:\n  a:\n    command: [x]\n",
	} {
		file := filepath.Join(t.TempDir(), "compose.yml")
		if err := os.WriteFile(file, []byte("name: invalid\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadProject(t, file); err == nil {
			t.Errorf("%s: loaded without error:\n%s", name, body)
		}
	}
}

// Every variable the file uses has a default (${NAME:-default}), so the demo starts on a
// machine where none is set.
func TestVariablesHaveDefaults(t *testing.T) {
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var dict map[string]any
	if err := yaml.Unmarshal(data, &dict); err != nil {
		t.Fatal(err)
	}
	vars := template.ExtractVariables(dict, template.DefaultPattern)
	if len(vars) == 0 {
		t.Fatal("found no variables: the demo's image and build arguments use some")
	}
	for name, v := range vars {
		if v.DefaultValue == "" || v.Required {
			t.Errorf("${%s} has no default: write ${%s:-value}", name, name)
		}
	}
}

// hostPath maps a path inside a service's container to the file or directory mounted
// there from the repository, or "" when none is.
func hostPath(s types.ServiceConfig, inContainer string) string {
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if inContainer == v.Target {
			return v.Source
		}
		if rest, ok := strings.CutPrefix(inContainer, v.Target+"/"); ok {
			return filepath.Join(v.Source, rest)
		}
	}
	return ""
}

// repoPath is a path of the repository as the loader resolves it.
func repoPath(t *testing.T, rel string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// flag returns the value of --name=value (or --name value) in the service's command.
func flag(s types.ServiceConfig, name string) (string, bool) {
	args := append(slices.Clone(s.Entrypoint), s.Command...)
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// serviceByImage returns the one service whose image starts with prefix.
func serviceByImage(t *testing.T, p *types.Project, prefix string) types.ServiceConfig {
	t.Helper()
	var found []types.ServiceConfig
	for _, s := range p.Services {
		if strings.HasPrefix(s.Image, prefix) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one service running %s, found %d", prefix, len(found))
	}
	return found[0]
}

// serviceByTarget returns the one service built from target of the project's Dockerfile.
func serviceByTarget(t *testing.T, p *types.Project, target string) types.ServiceConfig {
	t.Helper()
	for _, s := range p.Services {
		if s.Build != nil && s.Build.Target == target {
			return s
		}
	}
	t.Fatalf("no service builds target %s", target)
	return types.ServiceConfig{}
}

// checkEndpoint checks that host:port names a compose service and a port it exposes.
func checkEndpoint(t *testing.T, p *types.Project, where, hostport string) {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s: %q: %v", where, hostport, err)
		return
	}
	s, ok := p.Services[host]
	switch {
	case !ok:
		t.Errorf("%s: %s is not a service of %s", where, host, composeFile)
	case !slices.Contains(s.Expose, port):
		t.Errorf("%s: service %s does not expose port %s (expose: %v)", where, host, port, s.Expose)
	}
}

func TestImagesArePinned(t *testing.T) {
	for name, s := range loadCompose(t).Services {
		if s.Image != "" && !pinned(s.Image) {
			t.Errorf("service %s: image %q is not pinned to a version (a tag other than latest, or a digest)", name, s.Image)
		}
	}
}

// pinned reports whether an image reference names a tag other than latest, or a digest.
func pinned(image string) bool {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return false
	}
	if _, ok := ref.(reference.Canonical); ok {
		return true
	}
	tagged, ok := ref.(reference.Tagged)
	return ok && tagged.Tag() != "latest"
}

func TestPinned(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("ab", 32)
	for image, want := range map[string]bool{
		"mongo:7.0.14": true, "mongo": false, "mongo:latest": false, "localhost:5000/x": false,
		"localhost:5000/x:1": true, "grafana/grafana" + digest: true, "prom/prometheus:v2.53.2": true,
		"golang:1.26.8": true, "Bad:Name": false,
	} {
		if got := pinned(image); got != want {
			t.Errorf("pinned(%q) = %v, want %v", image, got, want)
		}
	}
}

// Every build context and Dockerfile exists, every FROM is pinned, every COPY source is in
// the context, and every target is a stage.
func TestBuilds(t *testing.T) {
	builds := 0
	for name, s := range loadCompose(t).Services {
		if s.Build == nil {
			continue
		}
		builds++
		ctx := s.Build.Context
		if fi, err := os.Stat(ctx); err != nil || !fi.IsDir() {
			t.Errorf("service %s: build context %s is not a directory", name, ctx)
			continue
		}
		dockerfile := s.Build.Dockerfile
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(ctx, dockerfile)
		}
		stages, err := checkDockerfile(dockerfile, ctx)
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		if s.Build.Target != "" && !slices.Contains(stages, s.Build.Target) {
			t.Errorf("service %s: target %s is not a stage of %s (%v)", name, s.Build.Target, dockerfile, stages)
		}
	}
	if builds < 3 {
		t.Errorf("expected builds for mongosync, migration-verifier and the project's binaries, found %d", builds)
	}
}

var (
	fromLine = regexp.MustCompile(`(?i)^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?`)
	copyLine = regexp.MustCompile(`(?i)^COPY\s+(.*)$`)
)

// checkDockerfile checks a Dockerfile and returns its stage names.
func checkDockerfile(path, ctx string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var stages, problems []string
	froms := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := fromLine.FindStringSubmatch(line); m != nil {
			froms++
			if !slices.Contains(stages, m[1]) && !pinned(m[1]) {
				problems = append(problems, fmt.Sprintf("FROM %s is not pinned", m[1]))
			}
			if m[2] != "" {
				stages = append(stages, m[2])
			}
			continue
		}
		if m := copyLine.FindStringSubmatch(line); m != nil {
			fields := strings.Fields(m[1])
			if len(fields) < 2 || strings.HasPrefix(fields[0], "--from") {
				continue
			}
			for _, src := range fields[:len(fields)-1] {
				if strings.HasPrefix(src, "--") {
					continue
				}
				if _, err := os.Stat(filepath.Join(ctx, src)); err != nil {
					problems = append(problems, fmt.Sprintf("COPY source %s is not in the build context", src))
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if froms == 0 {
		problems = append(problems, "no FROM")
	}
	if len(problems) > 0 {
		return stages, fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	return stages, nil
}

// Every bind-mounted file or directory exists and is mounted read-only; the services
// share one network.
func TestMounts(t *testing.T) {
	p := loadCompose(t)
	if len(p.Networks) != 1 {
		t.Errorf("use one network, found %d: %v", len(p.Networks), p.NetworkNames())
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s: mounted %s: %v", name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("service %s: mount %s read-only (:ro)", name, v.Source)
			}
		}
	}
	// The scripts the demo runs are executable where they are run as programs.
	fi, err := os.Stat(filepath.Join(root, "deploy/mongosync/entrypoint.sh"))
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("deploy/mongosync/entrypoint.sh must exist and be executable: %v", err)
	}
}

// The binaries listen, are exposed and are published on the project's default ports,
// where Prometheus scrapes them; Prometheus loads the project's rules and sends alerts to
// the Alertmanager service.
func TestBinariesAndPrometheusAgree(t *testing.T) {
	p := loadCompose(t)
	ports := map[string]string{"mongosync_exporter": "9782", "oplog_collector": "9783"}
	services := map[string]string{}
	for target, port := range ports {
		s := serviceByTarget(t, p, target)
		services[target] = s.Name
		if addr, _ := flag(s, "web.listen-address"); addr != ":"+port {
			t.Errorf("service %s: --web.listen-address=%q, want :%s", s.Name, addr, port)
		}
		if !slices.Contains(s.Expose, port) {
			t.Errorf("service %s: does not expose %s", s.Name, port)
		}
		want, _ := strconv.ParseUint(port, 10, 32)
		if len(s.Ports) != 1 || s.Ports[0].Target != uint32(want) || s.Ports[0].Published != port {
			t.Errorf("service %s: publish %s:%s, found %+v", s.Name, port, port, s.Ports)
		}
		cfg, ok := flag(s, "config.file")
		if !ok {
			t.Errorf("service %s: no --config.file", s.Name)
		} else if got := hostPath(s, cfg); got != repoPath(t, "deploy/demo/config.yml") {
			t.Errorf("service %s: --config.file=%s is mounted from %q, want %s", s.Name, cfg, got, demoConfig)
		}
		if s.Build.Dockerfile != "deploy/observability/Dockerfile" || s.Build.Context != repoPath(t, ".") {
			t.Errorf("service %s: build the repository (context .) with deploy/observability/Dockerfile, not %s in %s", s.Name, s.Build.Dockerfile, s.Build.Context)
		}
	}

	prom := serviceByImage(t, p, "prom/prometheus:")
	if !slices.Contains(prom.Command, "--web.enable-lifecycle") {
		t.Errorf("service %s: run Prometheus with --web.enable-lifecycle", prom.Name)
	}
	cfgPath, _ := flag(prom, "config.file")
	hostCfg := hostPath(prom, cfgPath)
	if hostCfg == "" {
		t.Fatalf("service %s: --config.file=%s is not mounted from the repository", prom.Name, cfgPath)
	}
	pc := loadPrometheusConfig(t, hostCfg)

	// rule_files: the project's rule files, mounted from alerts/, and nothing else
	var ruleFiles []string
	for _, pattern := range pc.RuleFiles {
		host := hostPath(prom, path.Dir(pattern))
		if host == "" {
			t.Errorf("rule_files %s: not mounted from the repository", pattern)
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(host, path.Base(pattern)))
		ruleFiles = append(ruleFiles, matches...)
	}
	want, _ := filepath.Glob(filepath.Join(repoPath(t, "alerts"), "*.yml"))
	slices.Sort(ruleFiles)
	if len(want) < 2 || !slices.Equal(ruleFiles, want) {
		t.Errorf("rule_files load %v, want the rule files of alerts/ %v", ruleFiles, want)
	}

	jobs := map[string][]string{}
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				checkEndpoint(t, p, "prometheus job "+sc.JobName, target)
				jobs[sc.JobName] = append(jobs[sc.JobName], target)
			}
		}
	}
	for target, port := range ports {
		want := services[target] + ":" + port
		if !slices.Equal(jobs[target], []string{want}) {
			t.Errorf("prometheus job %s scrapes %v, want [%s]", target, jobs[target], want)
		}
		// the job names are those the *Down alerts select
		if !alertsSelectJob(t, target) {
			t.Errorf("alerts/alerts.yml has no up{job=%q} alert: the scrape job and the alert must agree", target)
		}
	}
	if len(pc.Alerting.Alertmanagers) == 0 {
		t.Error("prometheus.yml sends alerts nowhere")
	}
	for _, am := range pc.Alerting.Alertmanagers {
		for _, st := range am.StaticConfigs {
			for _, target := range st.Targets {
				checkEndpoint(t, p, "prometheus alerting", target)
			}
		}
	}
}

type prometheusConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
	Alerting struct {
		Alertmanagers []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
}

func loadPrometheusConfig(t *testing.T, path string) prometheusConfig {
	t.Helper()
	var pc prometheusConfig
	decodeYAML(t, path, &pc)
	if len(pc.ScrapeConfigs) == 0 {
		t.Fatalf("%s has no scrape_configs", path)
	}
	return pc
}

func alertsSelectJob(t *testing.T, job string) bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "alerts", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), `up{job="`+job+`"}`)
}

// The demo's config.yml is valid for both programs, each reading its section as it does
// when it starts, and every address in it (the exporter's and the collector's) names a
// compose service and a port it exposes.
func TestDemoConfig(t *testing.T) {
	p := loadCompose(t)
	cfg, err := config.ForExporter.Load(demoConfig)
	if err != nil {
		t.Fatalf("the exporter's section of %s: %v", demoConfig, err)
	}
	collectorCfg, err := config.ForCollector.Load(demoConfig)
	if err != nil {
		t.Fatalf("the collector's section of %s: %v", demoConfig, err)
	}
	cfg.Collector = collectorCfg.Collector
	if len(cfg.Exporter.Mongosync) == 0 || len(cfg.Exporter.Verifiers) == 0 || len(cfg.Exporter.HeartbeatDatabases) == 0 {
		t.Fatalf("the demo config should read a mongosync, a verifier and the heartbeats: %+v", cfg.Exporter)
	}
	for _, m := range cfg.Exporter.Mongosync {
		u, err := url.Parse(m.URL)
		if err != nil {
			t.Fatalf("mongosync %s: %v", m.Name, err)
		}
		checkEndpoint(t, p, "mongosync "+m.Name+" url", u.Host)
		if s, ok := p.Services[u.Hostname()]; ok && env(s, "MONGOSYNC_API_PORT") != u.Port() {
			t.Errorf("mongosync %s: url port %s, but the service publishes its API on MONGOSYNC_API_PORT=%q", m.Name, u.Port(), env(s, "MONGOSYNC_API_PORT"))
		}
	}
	for _, v := range cfg.Exporter.Verifiers {
		checkMongoURI(t, p, "verifier "+v.Name, v.MongoURI)
		if v.APIURL == "" {
			t.Errorf("verifier %s: give api_url so the demo shows the API figures", v.Name)
			continue
		}
		u, err := url.Parse(v.APIURL)
		if err != nil {
			t.Fatalf("verifier %s: %v", v.Name, err)
		}
		checkEndpoint(t, p, "verifier "+v.Name+" api_url", u.Host)
		if s, ok := p.Services[u.Hostname()]; ok {
			if port, _ := flag(s, "serverPort"); port != u.Port() {
				t.Errorf("verifier %s: api_url port %s, but the verifier runs with --serverPort=%s", v.Name, u.Port(), port)
			}
			if meta, _ := flag(s, "metaURI"); meta != mustResolve(t, v.MongoURI) {
				t.Errorf("verifier %s: uri is not the verifier's --metaURI %s", v.Name, meta)
			}
		}
	}
	for _, m := range cfg.Exporter.HeartbeatDatabases {
		checkMongoURI(t, p, "collector_metadata "+m.Name, m.MongoURI)
	}
	if len(cfg.Collector.Sources) == 0 {
		t.Fatal("the demo's collector should capture a source")
	}
	checkMongoURI(t, p, "collector store", cfg.Collector.Store.MongoURI)
	if cfg.Collector.Metadata != nil {
		checkMongoURI(t, p, "collector metadata", cfg.Collector.Metadata.MongoURI)
	}
	for _, src := range cfg.Collector.Sources {
		checkMongoURI(t, p, "collector source "+src.Name, src.MongoURI)
	}
}

func mustResolve(t *testing.T, m config.MongoURI) string {
	t.Helper()
	uri, err := m.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	return uri
}

func checkMongoURI(t *testing.T, p *types.Project, where string, m config.MongoURI) {
	t.Helper()
	u, err := url.Parse(mustResolve(t, m))
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	for _, host := range strings.Split(u.Host, ",") {
		checkEndpoint(t, p, where+" uri", host)
	}
}

// The migration's own services point at the replica sets by service name and port, and
// mongo-init initiates every replica set they name.
func TestMigrationServices(t *testing.T) {
	p := loadCompose(t)
	var uris []string
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if v != nil && strings.HasPrefix(*v, "mongodb://") {
				uris = append(uris, name+" "+k+"="+*v)
			}
		}
		for _, a := range append(slices.Clone(s.Entrypoint), s.Command...) {
			if i := strings.Index(a, "mongodb://"); i >= 0 {
				uris = append(uris, name+" "+a[i:])
			}
		}
	}
	if len(uris) < 5 {
		t.Fatalf("expected the services to name the replica sets, found %v", uris)
	}
	for _, entry := range uris {
		where, raw, _ := strings.Cut(entry, " ")
		raw = raw[strings.Index(raw, "mongodb://"):]
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		checkEndpoint(t, p, where+" "+raw, u.Host)
		if rs := u.Query().Get("replicaSet"); rs != "" {
			if s, ok := p.Services[u.Hostname()]; ok && !slices.Contains(s.Command, rs) {
				t.Errorf("%s: replicaSet=%s, but %s runs %v", where, rs, u.Hostname(), s.Command)
			}
		}
	}
	script, err := os.ReadFile(scriptMountedAs(t, p, "init-replica-sets.js"))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range p.Services {
		if i := slices.Index(s.Command, "--replSet"); i >= 0 && i+1 < len(s.Command) {
			if !strings.Contains(string(script), `"`+name+`:27017"`) || !strings.Contains(string(script), `"`+s.Command[i+1]+`"`) {
				t.Errorf("init-replica-sets.js does not initiate %s (replica set %s)", name, s.Command[i+1])
			}
		}
	}
}

// scriptMountedAs returns the host path of the file of that name some service mounts.
func scriptMountedAs(t *testing.T, p *types.Project, base string) string {
	t.Helper()
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && filepath.Base(v.Source) == base {
				return v.Source
			}
		}
	}
	t.Fatalf("no service mounts %s", base)
	return ""
}

type grafanaDatasources struct {
	Datasources []struct {
		Name string `yaml:"name"`
		UID  string `yaml:"uid"`
		Type string `yaml:"type"`
		URL  string `yaml:"url"`
	} `yaml:"datasources"`
}

type grafanaProviders struct {
	Providers []struct {
		Type    string `yaml:"type"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// Grafana gets a Prometheus data source with a fixed uid and the project's dashboards.
func TestGrafanaProvisioning(t *testing.T) {
	p := loadCompose(t)
	g := serviceByImage(t, p, "grafana/grafana:")
	prov := hostPath(g, "/etc/grafana/provisioning")
	if prov == "" {
		t.Fatalf("service %s: /etc/grafana/provisioning is not mounted from the repository", g.Name)
	}
	dsFiles, _ := filepath.Glob(filepath.Join(prov, "datasources", "*.yml"))
	found := 0
	for _, f := range dsFiles {
		var ds grafanaDatasources
		decodeYAML(t, f, &ds)
		for _, d := range ds.Datasources {
			if d.Type != "prometheus" {
				continue
			}
			found++
			if d.UID == "" {
				t.Errorf("%s: data source %s has no fixed uid", f, d.Name)
			}
			u, err := url.Parse(d.URL)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			checkEndpoint(t, p, f, u.Host)
		}
	}
	if found != 1 {
		t.Errorf("want one provisioned Prometheus data source, found %d", found)
	}
	provFiles, _ := filepath.Glob(filepath.Join(prov, "dashboards", "*.yml"))
	paths := 0
	for _, f := range provFiles {
		var pr grafanaProviders
		decodeYAML(t, f, &pr)
		for _, provider := range pr.Providers {
			paths++
			if host := hostPath(g, provider.Options.Path); provider.Type != "file" || host != repoPath(t, "dashboards") {
				t.Errorf("%s: provider path %s is mounted from %q, want the repository's dashboards/", f, provider.Options.Path, host)
			}
		}
	}
	if paths == 0 {
		t.Error("no dashboard provider")
	}
	dashboards, _ := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	if len(dashboards) != 3 {
		t.Errorf("dashboards/ holds %d dashboards, want 3", len(dashboards))
	}
	if home := env(g, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != "" {
		if _, err := os.Stat(hostPath(g, home)); err != nil {
			t.Errorf("service %s: home dashboard %s: %v", g.Name, home, err)
		}
	}
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The real promtool and amtool accept the Prometheus and Alertmanager configurations
// (rule_files pointed at the repository's alerts/ as the container mounts them).
func TestConfigsWithRealTools(t *testing.T) {
	p := loadCompose(t)
	prom := serviceByImage(t, p, "prom/prometheus:")
	cfgPath, _ := flag(prom, "config.file")
	hostCfg := hostPath(prom, cfgPath)
	promtool := testsupport.Promtool(t, "checking the demo's Prometheus and Alertmanager configurations")
	amtool := testsupport.Tool(t, "amtool", "prometheus-alertmanager", "checking the demo's Alertmanager configuration")

	var raw map[string]any
	decodeYAML(t, hostCfg, &raw)
	var rules []any
	for _, pattern := range loadPrometheusConfig(t, hostCfg).RuleFiles {
		rules = append(rules, filepath.Join(hostPath(prom, path.Dir(pattern)), path.Base(pattern)))
	}
	raw["rule_files"] = rules
	out, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := exec.Command(promtool, "check", "config", tmp).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, res)
	}

	am := serviceByImage(t, p, "prom/alertmanager:")
	amCfg, _ := flag(am, "config.file")
	hostAM := hostPath(am, amCfg)
	if hostAM == "" {
		t.Fatalf("service %s: --config.file=%s is not mounted from the repository", am.Name, amCfg)
	}
	if res, err := exec.Command(amtool, "check-config", hostAM).CombinedOutput(); err != nil {
		t.Errorf("amtool check-config: %v\n%s", err, res)
	}
}

// make demo and make demo-down exist, documented in `make help`'s style, and use compose.
func TestMakeTargets(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"demo", "demo-down"} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:.*## \S.*\n((?:\t.*\n)+)`)
		m := re.FindStringSubmatch(string(data))
		if m == nil {
			t.Errorf("Makefile has no `%s:` target with a `## ` help text", target)
			continue
		}
		if !strings.Contains(m[1], "$(COMPOSE)") && !strings.Contains(m[1], "docker compose") {
			t.Errorf("make %s does not run docker compose:\n%s", target, m[1])
		}
	}
}
