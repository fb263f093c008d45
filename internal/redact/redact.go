package redact

import "regexp"

// The password part of user:password@ after a scheme, as in mongodb://u:p@host or
// https://u:p@proxy. The user name stays: it helps to find which account failed.
var urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s/]*@`)

// Placeholder replaces every removed password.
const Placeholder = "xxxxx"

// Credentials returns s with the password of every URL in it replaced by Placeholder.
func Credentials(s string) string {
	return urlPassword.ReplaceAllString(s, "${1}:"+Placeholder+"@")
}
