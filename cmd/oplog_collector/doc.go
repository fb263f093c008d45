// Command oplog_collector captures the change streams of MongoDB source clusters into an
// oplog store for point-in-time recovery, and serves its own metrics. Flags, commands
// and wiring only: the capture is package collector's, the recovery package pitr's.
//
// Its commands:
//   - run (the default): the daemon, capturing every configured source until stopped
//     (main.go);
//   - status, reset, deregister and resume: the operator's commands on one source,
//     through the running collector's HTTP API, or on the store directly with
//     --offline (commands.go);
//   - range and replay: point-in-time recovery from the store, the recoverable window
//     of a source and the replay of its events onto a target (pitr.go; docs/pitr.md is
//     their runbook).
//
// main is os.Exit(run(...)): run takes the arguments and the standard streams and
// returns the exit code, after every deferred cleanup of the command has run.
package main
