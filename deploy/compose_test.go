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
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/testsupport"
)

const (
	root        = ".."
	composeFile = "../docker-compose.yml"
	demoConfig  = "../deploy/demo/config.yml"
)

// stringList is a compose value given either as a string or as a list of strings.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*l = list
	return nil
}

type build struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Target     string            `yaml:"target"`
	Args       map[string]string `yaml:"args"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       *build            `yaml:"build"`
	Command     stringList        `yaml:"command"`
	Entrypoint  stringList        `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Expose      []string          `yaml:"expose"`
	Ports       []string          `yaml:"ports"`
	Networks    []string          `yaml:"networks"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

type compose struct {
	Name     string              `yaml:"name"`
	Services map[string]*service `yaml:"services"`
	Networks map[string]any      `yaml:"networks"`
	Volumes  map[string]any      `yaml:"volumes"`
}

var interpolation = regexp.MustCompile(`\$\$|\$\{(\w+)(?::?-([^}]*))?\}`)

// interpolate resolves compose's ${NAME:-default} with the default, as a machine without
// those variables set would. ${NAME} without a default is reported.
func interpolate(s string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		if !strings.Contains(m, "-") {
			err = fmt.Errorf("%s has no default", m)
		}
		return sub[2]
	})
	return out, err
}

func loadCompose(t *testing.T) *compose {
	t.Helper()
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s has no services", composeFile)
	}
	return &c
}

// hostPath maps a path inside a service's container to the file or directory mounted
// there from the repository, or "" when none is.
func (s *service) hostPath(inContainer string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		src, dst := parts[0], parts[1]
		if inContainer == dst {
			return filepath.Join(root, src)
		}
		if rest, ok := strings.CutPrefix(inContainer, dst+"/"); ok {
			return filepath.Join(root, src, rest)
		}
	}
	return ""
}

// flag returns the value of --name=value in the service's command.
func (s *service) flag(name string) (string, bool) {
	args := append(append([]string{}, s.Entrypoint...), s.Command...)
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

func (s *service) exposes(port string) bool { return slices.Contains(s.Expose, port) }

// serviceByImage returns the one service whose image starts with prefix.
func serviceByImage(t *testing.T, c *compose, prefix string) (string, *service) {
	t.Helper()
	var name string
	for n, s := range c.Services {
		if strings.HasPrefix(s.Image, prefix) {
			if name != "" {
				t.Fatalf("two services run %s: %s and %s", prefix, name, n)
			}
			name = n
		}
	}
	if name == "" {
		t.Fatalf("no service runs %s", prefix)
	}
	return name, c.Services[name]
}

// serviceByTarget returns the one service built from target of the project's Dockerfile.
func serviceByTarget(t *testing.T, c *compose, target string) (string, *service) {
	t.Helper()
	for n, s := range c.Services {
		if s.Build != nil && s.Build.Target == target {
			return n, s
		}
	}
	t.Fatalf("no service builds target %s", target)
	return "", nil
}

// checkEndpoint checks that host:port names a compose service and a port it exposes.
func checkEndpoint(t *testing.T, c *compose, where, hostport string) {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s: %q: %v", where, hostport, err)
		return
	}
	s, ok := c.Services[host]
	switch {
	case !ok:
		t.Errorf("%s: %s is not a service of %s", where, host, composeFile)
	case !s.exposes(port):
		t.Errorf("%s: service %s does not expose port %s (expose: %v)", where, host, port, s.Expose)
	}
}

func TestImagesArePinned(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
			continue
		}
		if s.Image == "" {
			continue
		}
		image, err := interpolate(s.Image)
		if err != nil {
			t.Errorf("service %s: image: %v", name, err)
		}
		if !pinned(image) {
			t.Errorf("service %s: image %q is not pinned to a version (a tag other than latest, or a digest)", name, image)
		}
	}
}

// pinned reports whether an image reference names a tag other than latest, or a digest.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon < slash+1 {
		return false
	}
	tag := image[colon+1:]
	return tag != "" && tag != "latest"
}

func TestPinned(t *testing.T) {
	for image, want := range map[string]bool{
		"mongo:7.0.14": true, "mongo": false, "mongo:latest": false, "localhost:5000/x": false,
		"localhost:5000/x:1": true, "grafana/grafana@sha256:abc": true, "prom/prometheus:v2.53.2": true,
	} {
		if got := pinned(image); got != want {
			t.Errorf("pinned(%q) = %v, want %v", image, got, want)
		}
	}
}

// Every build context and Dockerfile exists, every FROM is pinned, every COPY source is in
// the context, and every target is a stage.
func TestBuilds(t *testing.T) {
	c := loadCompose(t)
	builds := 0
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		builds++
		ctx := filepath.Join(root, s.Build.Context)
		if fi, err := os.Stat(ctx); err != nil || !fi.IsDir() {
			t.Errorf("service %s: build context %s is not a directory", name, s.Build.Context)
			continue
		}
		dockerfile := s.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		stages, err := checkDockerfile(filepath.Join(ctx, dockerfile), ctx)
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		if s.Build.Target != "" && !slices.Contains(stages, s.Build.Target) {
			t.Errorf("service %s: target %s is not a stage of %s (%v)", name, s.Build.Target, dockerfile, stages)
		}
		for arg, v := range s.Build.Args {
			if _, err := interpolate(v); err != nil {
				t.Errorf("service %s: build arg %s: %v", name, arg, err)
			}
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
	var stages []string
	var problems []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := fromLine.FindStringSubmatch(line); m != nil {
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
	if len(stages) == 0 && len(problems) == 0 {
		// a single unnamed stage is fine; make sure there was a FROM at all
		data, _ := os.ReadFile(path)
		if !regexp.MustCompile(`(?im)^FROM\s`).Match(data) {
			problems = append(problems, "no FROM")
		}
	}
	if len(problems) > 0 {
		return stages, fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	return stages, nil
}

// Every bind-mounted file or directory exists; every named volume and network is declared;
// every dependency is a service.
func TestMountsAndReferences(t *testing.T) {
	c := loadCompose(t)
	if len(c.Networks) != 1 {
		t.Errorf("use one network, found %d", len(c.Networks))
	}
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("service %s: volume %q is not source:target", name, v)
				continue
			}
			src := parts[0]
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("service %s: mounted %s: %v", name, src, err)
				}
				if len(parts) < 3 || parts[2] != "ro" {
					t.Errorf("service %s: mount %s read-only (:ro)", name, src)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s: volume %s is not declared", name, src)
			}
		}
		if len(s.Networks) == 0 {
			t.Errorf("service %s: no network", name)
		}
		for _, n := range s.Networks {
			if _, ok := c.Networks[n]; !ok {
				t.Errorf("service %s: network %s is not declared", name, n)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s: depends on %s, which is not a service", name, dep)
			}
		}
	}
	// The scripts the demo runs are executable where they are run as programs.
	fi, err := os.Stat(filepath.Join(root, "deploy/mongosync/entrypoint.sh"))
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("deploy/mongosync/entrypoint.sh must exist and be executable: %v", err)
	}
}

// The binaries listen where Prometheus scrapes them, on the project's default ports.
func TestBinariesAndPrometheusAgree(t *testing.T) {
	c := loadCompose(t)
	ports := map[string]string{"mongosync_exporter": "9782", "oplog_collector": "9783"}
	services := map[string]string{}
	for target, port := range ports {
		name, s := serviceByTarget(t, c, target)
		services[target] = name
		if addr, _ := s.flag("web.listen-address"); addr != ":"+port {
			t.Errorf("service %s: --web.listen-address=%q, want :%s", name, addr, port)
		}
		if !s.exposes(port) {
			t.Errorf("service %s: does not expose %s", name, port)
		}
		cfg, ok := s.flag("config.file")
		if !ok {
			t.Errorf("service %s: no --config.file", name)
		} else if got := s.hostPath(cfg); filepath.Clean(got) != filepath.Clean(demoConfig) {
			t.Errorf("service %s: --config.file=%s is mounted from %q, want %s", name, cfg, got, demoConfig)
		}
		if s.Build.Dockerfile != "deploy/observability/Dockerfile" || s.Build.Context != "." {
			t.Errorf("service %s: build the repository (context .) with deploy/observability/Dockerfile", name)
		}
	}

	promName, prom := serviceByImage(t, c, "prom/prometheus:")
	if _, ok := prom.flag("web.enable-lifecycle"); !ok && !slices.Contains(prom.Command, "--web.enable-lifecycle") {
		t.Errorf("service %s: run Prometheus with --web.enable-lifecycle", promName)
	}
	cfgPath, _ := prom.flag("config.file")
	hostCfg := prom.hostPath(cfgPath)
	if hostCfg == "" {
		t.Fatalf("service %s: --config.file=%s is not mounted from the repository", promName, cfgPath)
	}
	pc := loadPrometheusConfig(t, hostCfg)

	// rule_files: the project's rule files, mounted from alerts/, and nothing else
	var ruleFiles []string
	for _, pattern := range pc.RuleFiles {
		host := prom.hostPath(path.Dir(pattern))
		if host == "" {
			t.Errorf("rule_files %s: not mounted from the repository", pattern)
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(host, path.Base(pattern)))
		ruleFiles = append(ruleFiles, matches...)
	}
	want, _ := filepath.Glob(filepath.Join(root, "alerts", "*.yml"))
	slices.Sort(ruleFiles)
	if len(want) < 2 || !slices.Equal(ruleFiles, want) {
		t.Errorf("rule_files load %v, want the rule files of alerts/ %v", ruleFiles, want)
	}

	jobs := map[string][]string{}
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				checkEndpoint(t, c, "prometheus job "+sc.JobName, target)
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
				checkEndpoint(t, c, "prometheus alerting", target)
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
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pc prometheusConfig
	if err := yaml.Unmarshal(data, &pc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
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

// The demo's config.yml is valid for the project's own loader, and every address in it
// names a compose service and a port that service exposes.
func TestDemoConfig(t *testing.T) {
	c := loadCompose(t)
	cfg, err := config.Load(demoConfig)
	if err != nil {
		t.Fatalf("config.Load(%s): %v", demoConfig, err)
	}
	if len(cfg.Exporter.Mongosync) == 0 || len(cfg.Exporter.Verifiers) == 0 || len(cfg.Exporter.CollectorMetadata) == 0 {
		t.Fatalf("the demo config should read a mongosync, a verifier and the heartbeats: %+v", cfg.Exporter)
	}
	for _, m := range cfg.Exporter.Mongosync {
		u, err := url.Parse(m.URL)
		if err != nil {
			t.Fatalf("mongosync %s: %v", m.Name, err)
		}
		checkEndpoint(t, c, "mongosync "+m.Name+" url", u.Host)
		if s, ok := c.Services[u.Hostname()]; ok && s.Environment["MONGOSYNC_API_PORT"] != u.Port() {
			t.Errorf("mongosync %s: url port %s, but the service publishes its API on MONGOSYNC_API_PORT=%q", m.Name, u.Port(), s.Environment["MONGOSYNC_API_PORT"])
		}
	}
	for _, v := range cfg.Exporter.Verifiers {
		checkMongoURI(t, c, "verifier "+v.Name, v.MongoURI)
		if v.APIURL == "" {
			t.Errorf("verifier %s: give api_url so the demo shows the API figures", v.Name)
			continue
		}
		u, err := url.Parse(v.APIURL)
		if err != nil {
			t.Fatalf("verifier %s: %v", v.Name, err)
		}
		checkEndpoint(t, c, "verifier "+v.Name+" api_url", u.Host)
		if s, ok := c.Services[u.Hostname()]; ok {
			if port, _ := s.flag("serverPort"); port != u.Port() {
				t.Errorf("verifier %s: api_url port %s, but the verifier runs with --serverPort=%s", v.Name, u.Port(), port)
			}
			if meta, _ := s.flag("metaURI"); meta != mustResolve(t, v.MongoURI) {
				t.Errorf("verifier %s: uri is not the verifier's --metaURI %s", v.Name, meta)
			}
		}
	}
	for _, m := range cfg.Exporter.CollectorMetadata {
		checkMongoURI(t, c, "collector_metadata "+m.Name, m.MongoURI)
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

func checkMongoURI(t *testing.T, c *compose, where string, m config.MongoURI) {
	t.Helper()
	u, err := url.Parse(mustResolve(t, m))
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	for _, host := range strings.Split(u.Host, ",") {
		checkEndpoint(t, c, where+" uri", host)
	}
}

// The migration's own services point at the replica sets by service name and port.
func TestMigrationServices(t *testing.T) {
	c := loadCompose(t)
	var uris []string
	for name, s := range c.Services {
		for k, v := range s.Environment {
			if strings.HasPrefix(v, "mongodb://") {
				uris = append(uris, name+" "+k+"="+v)
			}
		}
		for _, a := range append(append([]string{}, s.Entrypoint...), s.Command...) {
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
		checkEndpoint(t, c, where+" "+raw, u.Host)
		if rs := u.Query().Get("replicaSet"); rs != "" {
			host := u.Hostname()
			if s := c.Services[host]; s != nil && !slices.Contains(s.Command, rs) {
				t.Errorf("%s: replicaSet=%s, but %s runs %v", where, rs, host, s.Command)
			}
		}
	}
	// mongo-init's script initiates every replica set the services name.
	_, init := serviceByScript(t, c, "init-replica-sets.js")
	script, err := os.ReadFile(init)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range c.Services {
		if i := slices.Index(s.Command, "--replSet"); i >= 0 && i+1 < len(s.Command) {
			if !strings.Contains(string(script), `"`+name+`:27017"`) || !strings.Contains(string(script), `"`+s.Command[i+1]+`"`) {
				t.Errorf("init-replica-sets.js does not initiate %s (replica set %s)", name, s.Command[i+1])
			}
		}
	}
}

// serviceByScript returns the service that mounts a file of that name, and its host path.
func serviceByScript(t *testing.T, c *compose, base string) (string, string) {
	t.Helper()
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if filepath.Base(src) == base {
				return name, filepath.Join(root, src)
			}
		}
	}
	t.Fatalf("no service mounts %s", base)
	return "", ""
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
	c := loadCompose(t)
	name, g := serviceByImage(t, c, "grafana/grafana:")
	prov := g.hostPath("/etc/grafana/provisioning")
	if prov == "" {
		t.Fatalf("service %s: /etc/grafana/provisioning is not mounted from the repository", name)
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
			checkEndpoint(t, c, f, u.Host)
		}
	}
	if found != 1 {
		t.Errorf("want one provisioned Prometheus data source, found %d", found)
	}
	provFiles, _ := filepath.Glob(filepath.Join(prov, "dashboards", "*.yml"))
	paths := 0
	for _, f := range provFiles {
		var p grafanaProviders
		decodeYAML(t, f, &p)
		for _, pr := range p.Providers {
			paths++
			host := g.hostPath(pr.Options.Path)
			if pr.Type != "file" || filepath.Clean(host) != filepath.Join(root, "dashboards") {
				t.Errorf("%s: provider path %s is mounted from %q, want the repository's dashboards/", f, pr.Options.Path, host)
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
	if home := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if _, err := os.Stat(g.hostPath(home)); err != nil {
			t.Errorf("service %s: home dashboard %s: %v", name, home, err)
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
	c := loadCompose(t)
	_, prom := serviceByImage(t, c, "prom/prometheus:")
	cfgPath, _ := prom.flag("config.file")
	hostCfg := prom.hostPath(cfgPath)
	promtool := testsupport.Promtool(t, "checking the demo's Prometheus and Alertmanager configurations")
	amtool := testsupport.Tool(t, "amtool", "prometheus-alertmanager", "checking the demo's Alertmanager configuration")
	{
		data, err := os.ReadFile(hostCfg)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := yaml.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		var rules []any
		for _, pattern := range loadPrometheusConfig(t, hostCfg).RuleFiles {
			abs, err := filepath.Abs(prom.hostPath(path.Dir(pattern)))
			if err != nil {
				t.Fatal(err)
			}
			rules = append(rules, filepath.Join(abs, path.Base(pattern)))
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
	}

	amName, am := serviceByImage(t, c, "prom/alertmanager:")
	amCfg, _ := am.flag("config.file")
	hostAM := am.hostPath(amCfg)
	if hostAM == "" {
		t.Fatalf("service %s: --config.file=%s is not mounted from the repository", amName, amCfg)
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
