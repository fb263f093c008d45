// Package redact removes credentials from text that may reach a log line, a metric label
// or an error message: URLs of the form scheme://user:password@host, which MongoDB
// drivers and mongosync are known to echo back in their errors.
package redact
