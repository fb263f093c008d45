package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// Scope is the section of config.yml a program runs on. Each program validates its own
// section fully (environment variables, types, required keys, connection strings, files)
// and of the other section only the YAML and the key names: one host need not hold the
// other program's secrets, and a typo anywhere in the file is still caught.
type Scope int

// The programs' scopes. The zero Scope validates both sections fully, each optional:
// what a file serving both programs on one host must satisfy, to which the tests hold
// the project's own files.
const (
	bothSections Scope = iota
	ForExporter        // mongosync_exporter: the exporter: section
	ForCollector       // oplog_collector: the collector: section, which must list sources
)

// otherSection is the top-level key whose content the scope checks for syntax only.
func (s Scope) otherSection() string {
	switch s {
	case ForExporter:
		return "collector"
	case ForCollector:
		return "exporter"
	}
	return ""
}

// Load reads the file at path and validates it for the scope. The error lists every
// problem, one per line, as file:line: key: what is wrong.
func (s Scope) Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	return s.Parse(data, path)
}

// Parse validates data as the contents of the file named filename, for the scope;
// relative file paths in the config (password_file, ca_file, uri_file, ...) are taken
// relative to filename's directory.
func (s Scope) Parse(data []byte, filename string) (*Config, error) {
	cfg := &Config{}
	doc, err := decodeStrict(data, filename, cfg, s.otherSection())
	if err != nil {
		return nil, err
	}
	cfg.finish(doc, filepath.Dir(filename), s)
	if err := doc.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}
