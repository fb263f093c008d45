// Package mongoerr is the one home of what the product knows about the errors of the
// MongoDB Go driver: the server's error codes by name, the questions asked of an error
// (HasCode, ResumeTokenLost, OnlyDuplicateKeys), and the words a log line or a status
// page gives it.
//
// Describe names the cause (connection refused, host not found, TLS, authentication,
// server selection with the servers' last errors, a server error code, a timeout), in
// the same words every time the same cause repeats, and without secrets. The driver's
// own texts are neither: a server selection timeout says "context deadline exceeded"
// first and buries the cause in a topology dump, connection ids change from one attempt
// to the next (so a log-once-per-change policy logs every attempt), and server messages
// quote whole commands with their session ids.
package mongoerr
