// Package config loads and validates config.yml, the one file that configures both
// mongosync_exporter (section `exporter:`) and oplog_collector (section `collector:`).
//
// Parsing is strict: unknown keys, wrong types, missing required keys and duplicate
// names are errors that name the file, line and key, so a typo never silently turns a
// setting off. `${VAR}` in any value is replaced by the environment variable VAR
// (`$$` is a literal `$`); secrets also have `*_file` variants.
package config
