// The mixin's settings. Override any of them in your own jsonnet:
//   (import 'mongo-migration-mixin/mixin.libsonnet') + { _config+:: { mongosyncExporterSelector: 'job="mse"' } }
// or, from a clone of the repository, `make mixin MIXIN_CONFIG=file MIXIN_OUT=dir` with a file
// holding the object of overrides. docs/mixin.md describes each one.
{
  _config+:: {
    // The scrape jobs of the two daemons, as your scrape config names them. Only the alerts
    // on `up` select a job (the series of each daemon have their own names): MongosyncExporterDown,
    // OplogCaptureDown, and the Absent alerts' guard.
    mongosyncExporterSelector: 'job="mongosync_exporter"',
    oplogCollectorSelector: 'job="oplog_collector"',

    // Multi-cluster: one Prometheus, or a Thanos or Mimir ruler, sees the daemons of several
    // clusters, told apart by clusterLabel (an external label, or a target label). When set,
    // every rule and dashboard aggregation keeps the label and the dashboards get a `cluster`
    // variable. Off, the rules and dashboards never mention it.
    showMultiCluster: false,
    clusterLabel: 'cluster',

    // Where each alert's runbook_url points: %s is the alert's name in lower case, its
    // section of docs/runbook.md. Point it at your own copy of the runbook if you keep one.
    runbookURLPattern: 'https://github.com/mongomigrate/observability/blob/main/docs/runbook.md#%s',

    // The dashboards: the tags every one carries after its own, by which they link to each
    // other (give your own dashboards these tags to join the links); the refresh interval,
    // the time range shown first and the time zone ('' is the browser's).
    dashboardTags: ['mongo-migration-mixin'],
    dashboardRefresh: '30s',
    dashboardPeriod: 'now-6h',
    dashboardTimezone: '',

    // Thresholds unless said otherwise. Each alert's comment says why its value;
    // the dashboards colour the same values. docs/runbook.md, "Knobs", lists them with the
    // `for` of each alert (the `for`s and the rate windows are in the rules).
    mongosyncLagWarningSeconds: 60,  // MongosyncLagHigh (while the lag grows)
    embeddedVerifierLagWarningSeconds: 60,  // MongosyncEmbeddedVerifierLagHigh (while it grows)
    cutoverMaxLagSeconds: 30,  // cutover blockers lag_high and embedded_verifier_not_ready
    oplogTimeRemainingWarningSeconds: 86400,  // MongosyncOplogTimeRemainingLow
    oplogTimeRemainingCriticalSeconds: 3600,
    verifierQuietSeconds: 1200,  // MigrationVerifierStalled: nothing new in the metadata
    verifierTaskSeconds: 3600,  // MigrationVerifierStalled: one task processing this long
    heartbeatStaleSeconds: 300,  // OplogCollectorHeartbeatStale
    heartbeatLagWarningSeconds: 600,  // OplogCollectorLagHigh (while it grows)
    captureLagWarningSeconds: 300,  // OplogCaptureLagHigh (while it grows)
    captureLagCriticalSeconds: 1800,
    recoverableWindowRetentionRatio: 0.9,  // OplogCaptureWindowBelowRetention, of the retention
    resumeHeadroomWarningSeconds: 86400,  // OplogCaptureResumeHeadroomLow
    resumeHeadroomCriticalSeconds: 3600,
  },
}
