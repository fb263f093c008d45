// The alerting rules, one group per file. Each alert gets its runbook_url from
// _config.runbookURLPattern (the section named after the alert) and, with
// showMultiCluster, the cluster label in every grouping.
{
  prometheusAlerts+:: {
    comment:: |||
      Alerting rules for MongoDB migrations (mongosync, migration-verifier) and oplog capture.

      The mongosync, verifier and heartbeat alerts come from mongosync_exporter's scrape; the
      OplogCapture alerts from oplog_collector's own /metrics. Alerts keep the job and
      instance labels of the target they come from. Only the two *Down alerts name a scrape
      job (`up` has nothing else to tell the daemons apart); the *Absent alerts fire, whatever
      the job is called, when a daemon's series are gone. MongosyncCommittedNotWritable reads
      a recording rule of recording.yml: load both files. docs/runbook.md has one section per
      alert and the table of knobs.
    |||,
    local config = $._config,
    local p = (import '../lib/promql.libsonnet')(config),
    groups+: [
      group {
        rules: [
          rule {
            expr: p.clustered(rule.expr),
            annotations+: { runbook_url: config.runbookURLPattern % std.asciiLower(rule.alert) },
          }
          for rule in group.rules
        ],
      }
      for group in [
        (import 'exporter.libsonnet')(config),
        (import 'mongosync.libsonnet')(config),
        (import 'verifier.libsonnet')(config),
        (import 'collector.libsonnet')(config),
        (import 'capture.libsonnet')(config),
      ]
    ],
  },
}
