// The recording rules, one group per file; with showMultiCluster, the cluster label in
// every grouping.
{
  prometheusRules+:: {
    comment:: |||
      Recording rules: the migration-wide and capture figures that docs/metrics.md describes,
      precomputed for the dashboards (dashboards/*.json use them) and for ad-hoc queries.
      Names follow level:metric:operations (the cutover verdicts, which are no operation on a
      metric, are level:verdict). Every rule keeps the job and instance labels of the exporter
      or collector it comes from, so the dashboards can filter on them. Reference:
      docs/runbook.md, "Recording rules" and "Cutover checklist".
    |||,
    local config = $._config,
    local p = (import '../lib/promql.libsonnet')(config),
    groups+: [
      group { rules: [rule { expr: p.clustered(rule.expr) } for rule in group.rules] }
      for group in [
        (import 'mongosync.libsonnet')(config),
        (import 'cutover.libsonnet')(config),
        (import 'capture.libsonnet')(config),
      ]
    ],
  },
}
