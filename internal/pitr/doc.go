// Package pitr is point-in-time recovery from the oplog store: the recoverable window of
// a source (Range) and the replay of its stored events onto a target cluster (Replay).
package pitr
