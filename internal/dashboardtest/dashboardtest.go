// Package dashboardtest reads the project's Grafana dashboards (dashboards/*.json) for
// the tests that check them: their panels, queries, variables, links and value mappings,
// and Grafana's expansion of template variables, so that every panel query can run
// against a real Prometheus. Production code never imports it.
package dashboardtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
)

// UIDs are the stable uids of the dashboards; links and bookmarks depend on them.
var UIDs = []string{"mongo-migration-overview", "mongo-migration-verification", "mongo-oplog-capture"}

// Dashboard is the part of a Grafana dashboard the project reads.
type Dashboard struct {
	File       string `json:"-"`
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Tags        []string `json:"tags"`
	Panels      []Panel  `json:"panels"`
	Links       []Link   `json:"links"`
	Annotations struct {
		List []Annotation `json:"list"`
	} `json:"annotations"`
}

// Annotation is a dashboard annotation; Expr is set on the Prometheus ones.
type Annotation struct {
	Name        string      `json:"name"`
	Datasource  *Datasource `json:"datasource"`
	Expr        string      `json:"expr"`
	Step        string      `json:"step"`
	TitleFormat string      `json:"titleFormat"`
}

// Variable is a template variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Datasource *Datasource     `json:"datasource"`
}

// QueryString returns the variable's query: a plain string (datasource variables) or the
// `query` member of the Prometheus query editor's object.
func (v Variable) QueryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var obj struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &obj) == nil && obj.Query != "" {
		return obj.Query
	}
	return v.Definition
}

// Datasource is a panel's, target's or variable's data source reference.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Link is a dashboard or panel link: Type "link" goes to URL, "dashboards" to the
// dashboards with Tags.
type Link struct {
	Title       string   `json:"title"`
	Type        string   `json:"type"`
	URL         string   `json:"url"`
	Tags        []string `json:"tags"`
	KeepTime    bool     `json:"keepTime"`
	IncludeVars bool     `json:"includeVars"`
}

// Mapping is a value mapping: Type "value" maps values (Options: value -> result),
// "special" a special value (Options: match and result).
type Mapping struct {
	Type    string          `json:"type"`
	Options json.RawMessage `json:"options"`
}

// MappingResult is what a value maps to.
type MappingResult struct {
	Text  string `json:"text"`
	Color string `json:"color"`
}

// Values returns a value mapping's results by value; nil for other mappings.
func (m Mapping) Values() map[string]MappingResult {
	var out map[string]MappingResult
	if m.Type != "value" || json.Unmarshal(m.Options, &out) != nil {
		return nil
	}
	return out
}

// Special returns what a special mapping matches (such as "null") and its result.
func (m Mapping) Special() (match string, result MappingResult) {
	var opts struct {
		Match  string        `json:"match"`
		Result MappingResult `json:"result"`
	}
	if m.Type != "special" || json.Unmarshal(m.Options, &opts) != nil {
		return "", MappingResult{}
	}
	return opts.Match, opts.Result
}

// Override is a field override; Mappings are those among its properties.
type Override struct {
	Matcher struct {
		ID      string `json:"id"`
		Options string `json:"options"`
	} `json:"matcher"`
	Properties []struct {
		ID    string          `json:"id"`
		Value json.RawMessage `json:"value"`
	} `json:"properties"`
}

// Mappings returns the value mappings an override sets.
func (o Override) Mappings() []Mapping {
	var out []Mapping
	for _, p := range o.Properties {
		var ms []Mapping
		if p.ID == "mappings" && json.Unmarshal(p.Value, &ms) == nil {
			out = append(out, ms...)
		}
	}
	return out
}

// Panel is a panel, or a row (Type "row") with its panels when it is collapsed.
type Panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Repeat      string      `json:"repeat"`
	Datasource  *Datasource `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds *struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
			Mappings []Mapping `json:"mappings"`
			NoValue  string    `json:"noValue"`
		} `json:"defaults"`
		Overrides []Override `json:"overrides"`
	} `json:"fieldConfig"`
	Options struct {
		ColorMode string `json:"colorMode"` // stat panels
	} `json:"options"`
	Targets   []Target `json:"targets"`
	Panels    []Panel  `json:"panels"`
	Links     []Link   `json:"links"`
	Collapsed bool     `json:"collapsed"`
}

// AllMappings returns the panel's value mappings, its overrides' included.
func (p Panel) AllMappings() []Mapping {
	out := append([]Mapping(nil), p.FieldConfig.Defaults.Mappings...)
	for _, o := range p.FieldConfig.Overrides {
		out = append(out, o.Mappings()...)
	}
	return out
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Instant    bool        `json:"instant"`
	Range      bool        `json:"range"`
	Format     string      `json:"format"`
	Datasource *Datasource `json:"datasource"`
}

// Load parses every dashboard of the repository's dashboards/ directory, sorted by file
// name.
func Load() ([]Dashboard, error) {
	dir, err := dashboardsDir()
	if err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Dashboard
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var d Dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("dashboards/%s: %w", filepath.Base(name), err)
		}
		d.File = filepath.Base(name)
		out = append(out, d)
	}
	return out, nil
}

// dashboardsDir is the repository's dashboards/ directory, found from this source file,
// so that a test finds it from whichever package it runs in.
func dashboardsDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot tell where package dashboardtest is, to find dashboards/")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "dashboards"), nil
}

// AllPanels returns the dashboard's panels in order, with the panels of collapsed rows
// after their row.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// Query is one panel query.
type Query struct {
	Dashboard string // uid
	Panel     string // title
	RefID     string
	Expr      string // as written, with template variables
	Instant   bool
}

// Queries returns every panel query of every dashboard. An end-to-end test expands the
// variables (Expand) and runs each against Prometheus, expecting data.
func Queries() ([]Query, error) {
	ds, err := Load()
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, d := range ds {
		for _, p := range d.AllPanels() {
			for _, t := range p.Targets {
				out = append(out, Query{Dashboard: d.UID, Panel: p.Title, RefID: t.RefID, Expr: t.Expr, Instant: t.Instant})
			}
		}
	}
	return out, nil
}

var variableRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)`)

// Expand replaces the Grafana variables in expr ($name, ${name}, ${name:format},
// [[name]]) by their values in vars, as Grafana would for a single value; variables not
// in vars are left as they are. Give the dashboard variables (every one is used as a
// regular expression, `label=~"$name"`, so ".*" selects all) and Grafana's built-ins the
// queries use, such as "__rate_interval" (for example "1m").
func Expand(expr string, vars map[string]string) string {
	return variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		if v, ok := vars[name]; ok {
			return v
		}
		return ref
	})
}
