// MongoDB oplog capture: what a restore can reach, per source, from the collectors' own
// metrics and from the heartbeats the exporter reads.
//
// Its job and instance variables are capture_job and capture_instance: they list the
// collectors and the exporters that read heartbeats, so the links between the dashboards,
// which carry variables by name, must not set them from the overview's job and instance.
function(config)
  local g = (import '../lib/grafana.libsonnet')(config);
  local p = (import '../lib/promql.libsonnet')(config);
  local sel(metric, labels, extra='') = g.sel(metric, labels, extra, job='capture_job', instance='capture_instance');
  local c(metric) = sel(metric, g.labels.source);
  local h(metric) = sel(metric, g.labels.heartbeat);
  local by = 'job, instance, source_cluster';

  // The levels of OplogCaptureLagHigh and OplogCaptureResumeHeadroomLow.
  local lagWarning = config.captureLagWarningSeconds;
  local lagCritical = config.captureLagCriticalSeconds;
  local lagTh = g.steps(['green', null, 'orange', lagWarning, 'red', lagCritical]);
  local headWarning = config.resumeHeadroomWarningSeconds;
  local headCritical = config.resumeHeadroomCriticalSeconds;
  local headTh = g.steps(['red', null, 'orange', headCritical, 'green', headWarning]);
  local retentionRatio = config.recoverableWindowRetentionRatio;
  // Heartbeats: orange at 5 minutes (the old collector UI's amber for the gap, and where
  // OplogCollectorHeartbeatStale fires for the age), red where OplogCollectorLagHigh warns.
  local heartbeatTh = g.steps(['green', null, 'orange', config.heartbeatStaleSeconds, 'red', config.heartbeatLagWarningSeconds]);

  local top = g.row(
    'Sources',
    [
      g.stat(
        'Targets',
        'Whether Prometheus scrapes each target feeding this dashboard (up): the oplog collectors, and the exporters reading their heartbeats. Down or No data: the figures are unknown and the alerts blind (alerts OplogCaptureDown, OplogCaptureAbsent).',
        'none',
        g.instant([[sel('up', []), '{{job}} {{instance}}']]),
        4,
        6,
        thresholds=g.steps(['red', null]),
        mapping=g.up,
      ),
      g.table(
        'Restore to T',
        'Every source at the last scrape: its capture state, and the stretch a restore can reach right now, from Restore from (where the store holds every event from, after the last gap) to Restore up to (the checkpoint). Gaps counts the recorded gaps (a reset, a lost resume token); open gaps, those capture has not closed. Resume headroom: how long capture may stop before it cannot resume. docs/runbook.md, Restore to a time.',
        g.tableTargets([
          'max by (%s, state) (%s == 1)' % [by, c('oplog_capture_state')],
          c('oplog_capture_recoverable_since_timestamp_seconds') + ' * 1000',
          c('oplog_capture_checkpoint_timestamp_seconds') + ' * 1000',
          c('source_cluster:oplog_capture_recoverable_window:seconds'),
          c('oplog_capture_gaps'),
          c('oplog_capture_open_gaps'),
          c('source_cluster:oplog_capture_lag:seconds'),
          c('source_cluster:oplog_capture_resume_headroom:seconds'),
        ]),
        ['source_cluster'],
        [
          ['state', 'State', 'none', g.neutral, g.captureStates],
          ['#B', 'Restore from', 'dateTimeAsIso', g.neutral, null],
          ['#C', 'Restore up to', 'dateTimeAsIso', g.neutral, null],
          ['#D', 'Recoverable window', 'dtdurations', g.neutral, null],
          ['#E', 'Gaps', 'none', g.steps(['green', null, 'orange', 1]), null],
          ['#F', 'Open gaps', 'none', g.steps(['green', null, 'red', 1]), null],
          ['#G', 'Capture lag', 's', lagTh, null],
          ['#H', 'Resume headroom', 's', headTh, null],
        ],
        20,
        6,
        sort=['source_cluster', false],
        links=[{ title: 'Restore to a time', url: g.runbookURL('restore-to-a-time'), targetBlank: true }],
        hide='A',
      ),
    ],
  );

  local per = g.row(
    'Capture: $source_cluster',
    [
      g.stat(
        'Restore from',
        'The earliest time a restore can reach: from here on the store holds every event up to the checkpoint (oplog_capture_recoverable_since_timestamp_seconds: the oldest stored event, or where capture started again after the last gap). No data (red): the store is empty, no position is saved, or the series are gone.',
        'dateTimeAsIso',
        g.instant([[c('oplog_capture_recoverable_since_timestamp_seconds') + ' * 1000', '{{source_cluster}}']]),
        4,
        thresholds=g.neutral,
        color='value',
      ),
      g.stat(
        'Restore up to',
        "The latest time a restore can reach: the checkpoint, up to which the store holds every event (the newest stored event's wallTime, or on a quiet source when the source last answered that nothing more had come), to the millisecond. oplog_collector range and replay go by the saved position, which on a quiet source may trail it by up to checkpoint_interval plus the source's idle no-op interval (10 s).",
        'dateTimeAsIso',
        g.instant([[c('oplog_capture_checkpoint_timestamp_seconds') + ' * 1000', '{{source_cluster}}']]),
        4,
        thresholds=g.neutral,
        color='value',
      ),
      g.stat(
        'Recoverable window',
        'How far back a restore can reach from the checkpoint (recording rule source_cluster:oplog_capture_recoverable_window:seconds). Shorter than the store window after a gap. Alert OplogCaptureWindowBelowRetention below %g%% of the retention.' % (100 * retentionRatio),
        'dtdurations',
        g.instant([[c('source_cluster:oplog_capture_recoverable_window:seconds'), '{{source_cluster}}']]),
        3,
        thresholds=g.neutral,
        color='value',
      ),
      g.stat(
        'Gaps',
        "Gaps recorded in the source's captured history (oplog_capture_gaps): a reset, a lost resume token, a restart without a saved position. oplog_collector range lists them.",
        'none',
        g.instant([[c('oplog_capture_gaps'), '{{source_cluster}}']]),
        2,
        thresholds=g.steps(['green', null, 'orange', 1]),
      ),
      g.stat(
        'State',
        "State of the source's capture in oplog_collector (oplog_capture_state): running green, standby blue, errors and store unavailable red, the rest orange. Alerts: OplogCollectorError, OplogCollectorResumeTokenLost, OplogCaptureStoreUnavailable.",
        'none',
        g.tableTargets([c('oplog_capture_state') + ' == 1']),
        4,
        thresholds=g.neutral,
        mapping=g.captureStates,
        field='state',
        display='${__data.fields.source_cluster}',
      ),
      g.stat(
        'Capture lag',
        "How far capture is behind the source at the last scrape, to the millisecond: the collector's time less the checkpoint (oplog_capture_lag_seconds, recording rule source_cluster:oplog_capture_lag:seconds; advances on a quiet source too, where it reads up to 1 s). Orange from %s, red from %s (alert OplogCaptureLagHigh while it grows)." % [p.human(lagWarning), p.human(lagCritical)],
        's',
        g.instant([[c('source_cluster:oplog_capture_lag:seconds'), '{{source_cluster}}']]),
        4,
        thresholds=lagTh,
      ),
      g.stat(
        'Resume headroom',
        "How long capture may stop or fall behind before its position leaves the source's oplog (recording rule source_cluster:oplog_capture_resume_headroom:seconds). Orange below %s, red below %s (alert OplogCaptureResumeHeadroomLow)." % [p.human(headWarning), p.human(headCritical)],
        's',
        g.instant([[c('source_cluster:oplog_capture_resume_headroom:seconds'), '{{source_cluster}}']]),
        3,
        thresholds=headTh,
      ),
      g.stat(
        'Store window',
        'From the oldest event in the store to the checkpoint (recording rule source_cluster:oplog_capture_window:seconds): what the store holds, gaps included.',
        'dtdurations',
        g.instant([[c('source_cluster:oplog_capture_window:seconds'), '{{source_cluster}}']]),
        4,
        thresholds=g.neutral,
        color='value',
      ),
      g.stat(
        'Retention',
        "The configured retention (TTL on the events' receipt time); No data when retention is off.",
        'dtdurations',
        g.instant([[c('oplog_capture_retention_seconds'), '{{source_cluster}}']]),
        4,
        thresholds=g.neutral,
        color='value',
        noValue='No data: is retention set?',
      ),
      g.stat(
        'Newest event',
        'Cluster time of the newest persisted event.',
        'dateTimeAsIso',
        g.instant([[c('oplog_capture_last_event_timestamp_seconds') + ' * 1000', '{{source_cluster}}']]),
        4,
        thresholds=g.neutral,
        color='value',
      ),
      g.stat(
        'Buffer fill',
        "Events read from the source and not yet persisted, over the buffer's capacity. Full means the store is the bottleneck.",
        'percentunit',
        g.instant([['%s / %s' % [c('oplog_capture_buffer_events'), c('oplog_capture_buffer_capacity')], '{{source_cluster}}']]),
        4,
        thresholds=g.steps(['green', null, 'orange', 0.8, 'red', 0.95]),
      ),
      g.stat(
        'Store write pending',
        'How long the oldest store write in progress has waited for its majority acknowledgement (oplog_capture_store_write_pending_seconds); 0 when none waits.',
        's',
        g.instant([[c('oplog_capture_store_write_pending_seconds'), '{{source_cluster}}']]),
        4,
        thresholds=g.steps(['green', null, 'orange', 5]),
      ),
      g.stat(
        'Open gaps',
        'Recorded gaps capture has not closed (oplog_capture_open_gaps): it has not started again since a lost resume token.',
        'none',
        g.instant([[c('oplog_capture_open_gaps'), '{{source_cluster}}']]),
        4,
        thresholds=g.steps(['green', null, 'red', 1]),
      ),
      g.timeseries(
        'Capture lag',
        'Capture lag over time. Lines at %s (warning) and %s (critical), the thresholds of OplogCaptureLagHigh, which also needs the lag to grow.' % [p.human(lagWarning), p.human(lagCritical)],
        's',
        g.ranged([[c('source_cluster:oplog_capture_lag:seconds'), '{{source_cluster}}']]),
        12,
        thresholds=lagTh,
        lines=true,
      ),
      g.timeseries(
        'Recoverable window vs retention',
        'Recoverable window (what a restore can reach), store window (oldest stored event to checkpoint) and the configured retention. OplogCaptureWindowBelowRetention fires below %g%% of the retention after a gap or while events leave the store early.' % (100 * retentionRatio),
        's',
        g.ranged([
          [c('source_cluster:oplog_capture_recoverable_window:seconds'), 'recoverable window'],
          [c('source_cluster:oplog_capture_window:seconds'), 'store window'],
          [c('oplog_capture_retention_seconds'), 'retention'],
          ['%g * %s' % [retentionRatio, c('oplog_capture_retention_seconds')], 'alert threshold'],
        ]),
        12,
      ),
      g.timeseries(
        'Resume headroom',
        "Resume headroom over time; on a sharded source, per shard: checkpoint minus each shard's oldest oplog entry (the smallest binds). Lines at %s and %s." % [p.human(headCritical), p.human(headWarning)],
        's',
        g.ranged([['%s - on (%s) group_right %s' % [c('oplog_capture_checkpoint_timestamp_seconds'), by, c('oplog_capture_source_oplog_oldest_timestamp_seconds')], '{{source_cluster}} {{shard}}']]),
        8,
        thresholds=headTh,
        lines=true,
      ),
      g.timeseries(
        'Capture rate by operation',
        'Events persisted per second by operation type (rate of oplog_capture_events_total).',
        'eps',
        g.ranged([['sum by (op_type) (rate(%s[$__rate_interval]))' % [c('oplog_capture_events_total')], '{{op_type}}']]),
        8,
        fill=10,
        stack=true,
      ),
      g.timeseries(
        'Bytes captured',
        'BSON bytes of the events persisted per second.',
        'Bps',
        g.ranged([['sum by (source_cluster) (rate(%s[$__rate_interval]))' % [c('oplog_capture_bytes_total')], '{{source_cluster}}']]),
        8,
        fill=10,
      ),
      g.timeseries(
        'Batch write latency',
        'Time from sending a batch to the store to its w:majority acknowledgement, retries included: median, 99th percentile and mean.',
        's',
        g.ranged([
          ['histogram_quantile(0.5, sum by (le) (rate(%s[$__rate_interval])))' % [c('oplog_capture_batch_write_duration_seconds_bucket')], 'p50'],
          ['histogram_quantile(0.99, sum by (le) (rate(%s[$__rate_interval])))' % [c('oplog_capture_batch_write_duration_seconds_bucket')], 'p99'],
          ['sum(rate(%s[$__rate_interval])) / sum(rate(%s[$__rate_interval]))' % [c('oplog_capture_batch_write_duration_seconds_sum'), c('oplog_capture_batch_write_duration_seconds_count')], 'mean'],
        ]),
        8,
      ),
      g.timeseries(
        'Batches written',
        'Batches acknowledged by the store per second.',
        'ops',
        g.ranged([['sum by (source_cluster) (rate(%s[$__rate_interval]))' % [c('oplog_capture_batches_total')], '{{source_cluster}}']]),
        8,
        fill=10,
      ),
      g.timeseries(
        'Buffer',
        'Events waiting in the buffer between reading and writing, against its capacity.',
        'short',
        g.ranged([
          [c('oplog_capture_buffer_events'), 'buffered'],
          [c('oplog_capture_buffer_capacity'), 'capacity'],
        ]),
        8,
      ),
      g.timeseries(
        'Retries',
        'Retries per interval by reason: source (the change stream is being reopened), store (a batch or token write is being retried).',
        'short',
        g.ranged([['sum by (reason) (increase(%s[$__rate_interval]))' % [c('oplog_capture_retries_total')], '{{reason}}']]),
        12,
        fill=10,
        stack=true,
      ),
      g.timeseries(
        'Errors',
        'Errors per interval by kind: source_read, store_write, token_save, heartbeat, resume_token_lost, source_identity, lease.',
        'short',
        g.ranged([['sum by (kind) (increase(%s[$__rate_interval]))' % [c('oplog_capture_errors_total')], '{{kind}}']]),
        12,
        fill=10,
        stack=true,
        overrides=[
          g.override('resume_token_lost', [['color', g.fixed('red')]]),
        ],
      ),
    ],
    repeat='source_cluster',
  );

  local hb = g.row(
    'Heartbeats (read by mongosync_exporter, either collector)',
    [
      panel + g.needs('No data: is collector_metadata set?')
      for panel in [
        g.stat(
          'Status',
          "Status in each source's heartbeat document (oplog_collector_status), as written by this project's collector or the old Python one.",
          'none',
          g.tableTargets([h('oplog_collector_status') + ' == 1']),
          6,
          5,
          thresholds=g.neutral,
          mapping=g.heartbeatStatuses,
          field='status',
          display='${__data.fields.source_cluster}',
        ),
        g.stat(
          'Heartbeat age',
          "Time since each collector's last heartbeat (recording rule source_cluster:oplog_collector_heartbeat_age:seconds). Orange from %s (alert OplogCollectorHeartbeatStale)." % p.human(config.heartbeatStaleSeconds),
          's',
          g.instant([[h('source_cluster:oplog_collector_heartbeat_age:seconds'), '{{source_cluster}}']]),
          6,
          5,
          thresholds=g.steps(['green', null, 'orange', config.heartbeatStaleSeconds]),
        ),
        g.stat(
          'Capture gap',
          "Now minus the newest saved event per the heartbeat (the old collector UI's GAP; recording rule source_cluster:oplog_collector_lag:seconds). Orange from %s, red from %s (alert OplogCollectorLagHigh while it grows). On a quiet source the old collector's gap grows while nothing is wrong." % [p.human(config.heartbeatStaleSeconds), p.human(config.heartbeatLagWarningSeconds)],
          's',
          g.instant([[h('source_cluster:oplog_collector_lag:seconds'), '{{source_cluster}}']]),
          6,
          5,
          thresholds=heartbeatTh,
        ),
        g.stat(
          'Error',
          "Whether the heartbeat carries an error message (oplog_collector_error); the text is in the exporter's log.",
          'none',
          g.instant([[h('oplog_collector_error'), '{{source_cluster}}']]),
          3,
          5,
          thresholds=g.neutral,
          mapping=[['0', 'None', 'green'], ['1', 'Error', 'red']],
        ),
        g.stat(
          'Metadata',
          'Whether the exporter read the central metadata database (oplog_collector_metadata_up). Alert: OplogCollectorMetadataDown.',
          'none',
          g.instant([[sel('oplog_collector_metadata_up', ['metadata']), '{{metadata}}']]),
          3,
          5,
          thresholds=g.neutral,
          mapping=g.readable,
        ),
        g.timeseries(
          'Heartbeat age and capture gap',
          'Heartbeat age and capture gap from the heartbeat documents. Lines at %s and %s.' % [p.human(config.heartbeatStaleSeconds), p.human(config.heartbeatLagWarningSeconds)],
          's',
          g.ranged([
            [h('source_cluster:oplog_collector_heartbeat_age:seconds'), '{{source_cluster}} heartbeat age'],
            [h('source_cluster:oplog_collector_lag:seconds'), '{{source_cluster}} gap'],
          ]),
          12,
          thresholds=heartbeatTh,
          lines=true,
        ),
        g.timeseries(
          'Recovery window (heartbeat)',
          "Store window per the heartbeat documents: last_oplog_time_utc (this collector's checkpoint) minus first_oplog_time_utc, the oldest event in the store (recording rule source_cluster:oplog_collector_window:seconds). Gaps are not in the heartbeat: see Restore from above.",
          's',
          g.ranged([[h('source_cluster:oplog_collector_window:seconds'), '{{source_cluster}}']]),
          12,
        ),
      ]
    ],
  );

  local collector = g.row(
    'oplog_collector',
    [
      g.stat(
        'Version',
        'Version of each oplog_collector (oplog_capture_build_info).',
        'none',
        g.instant([[sel('oplog_capture_build_info', []), '{{instance}} {{version}}']]),
        12,
        thresholds=g.neutral,
        text='name',
        color='value',
      ),
      g.stat(
        'Configuration',
        "Whether the collector's last config load was applied (oplog_capture_config_last_reload_successful). Alert: OplogCaptureConfigReloadFailed.",
        'none',
        g.instant([[sel('oplog_capture_config_last_reload_successful', []), '{{instance}}']]),
        6,
        thresholds=g.neutral,
        mapping=[['0', 'Refused', 'red'], ['1', 'Applied', 'green']],
      ),
      g.stat(
        'Configuration loaded',
        "When the collector's configuration in force was loaded.",
        'dateTimeFromNow',
        g.instant([[sel('oplog_capture_config_last_reload_success_timestamp_seconds', []) + ' * 1000', '{{instance}}']]),
        6,
        thresholds=g.neutral,
        color='value',
      ),
    ],
    collapsed=true,
  );

  g.dashboard(
    g.uids.capture,
    'MongoDB oplog capture',
    "Oplog capture for point-in-time recovery: what a restore can reach right now (restore from, restore up to, gaps), lag, resume headroom, throughput, store writes and errors from oplog_collector's own metrics, and the heartbeat documents of either collector (read by mongosync_exporter).",
    ['mongodb', 'oplog', 'pitr'],
    [
      g.targetVariable('capture_job', 'Job', 'label_values({__name__=~"oplog_capture_state|oplog_collector_status"}, job)'),
      g.targetVariable('capture_instance', 'Instance', 'label_values({__name__=~"oplog_capture_state|oplog_collector_status",job=~"$capture_job"}, instance)'),
      g.variable('source_cluster', 'Source cluster', 'label_values({__name__=~"oplog_capture_state|oplog_collector_status",job=~"$capture_job",instance=~"$capture_instance"}, source_cluster)'),
      g.variable('metadata', 'Metadata database', 'label_values(oplog_collector_metadata_up{job=~"$capture_job",instance=~"$capture_instance"}, metadata)'),
    ],
    [top, per, hb, collector],
    clusterSelector='{__name__=~"oplog_capture_state|oplog_collector_status"}',
  )
