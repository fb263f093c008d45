// Oplog collectors, from the heartbeats mongosync_exporter reads (either collector).
function(config)
  local p = (import '../lib/promql.libsonnet')(config);
  {
    name: 'oplog-collector',
    comment:: '--- oplog collectors, from their heartbeats (either collector) ------------------------',
    rules: [
      {
        alert: 'OplogCollectorMetadataDown',
        comment:: 'Knob: central metadata database unreadable for 5m.',
        expr: 'oplog_collector_metadata_up == 0',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: "The exporter cannot read the oplog collectors' heartbeats.",
          description: 'mongosync_exporter {{ $labels.instance }} has not been able to read the central metadata database {{ $labels.metadata }} for 5 minutes; the heartbeat alerts cannot fire meanwhile.',
        },
      },
      {
        alert: 'OplogCollectorSourcesOmitted',
        comment:: |||
          Knob: heartbeat documents without series for 15m (source_limit reached, or
          documents without a usable name).
        |||,
        expr: 'oplog_collector_sources_omitted > 0',
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'Some source clusters have no heartbeat series, so their alerts cannot fire.',
          description: 'mongosync_exporter {{ $labels.instance }} leaves {{ $value }} heartbeat document(s) of the central metadata database {{ $labels.metadata }} without series (beyond source_limit, or without a usable name).',
        },
      },
      {
        alert: 'OplogCollectorHeartbeatStale',
        comment:: |||
          Knobs: no heartbeat for _config.heartbeatStaleSeconds (300 s: ten 30 s heartbeats),
          for 1m; a collector that says it is stopped or not registered yet is not expected
          to report.
        |||,
        expr: |||
          (time() - oplog_collector_last_report_timestamp_seconds) > %(heartbeatStaleSeconds)d
          unless on (job, instance, metadata, source_cluster)
          oplog_collector_status{status=~"stopped|pending_registration"} == 1
        ||| % config,
        'for': '1m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'An oplog collector has stopped reporting.',
          description: 'The oplog collector of source cluster {{ $labels.source_cluster }} (metadata {{ $labels.metadata }}) last reported {{ $value | humanizeDuration }} ago.',
        },
      },
      {
        alert: 'OplogCollectorError',
        comment:: |||
          Knob: 5m in an error state. The collector's own state wins over its heartbeat when
          both exist (one alert per source, not two); the heartbeat covers the old collector.
        |||,
        expr: |||
          oplog_capture_state{state="error"} == 1
          or
          (
            oplog_collector_status{status=~"error|error_max_retries_reached|error_stopped_unexpectedly"} == 1
            unless on (source_cluster)
            oplog_capture_state
          )
        |||,
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'An oplog collector is in error and not capturing.',
          description: 'The oplog collector of source cluster {{ $labels.source_cluster }} has been in state {{ $labels.state }}{{ $labels.status }} for 5 minutes; the error text is in its log.',
        },
      },
      {
        alert: 'OplogCollectorResumeTokenLost',
        comment:: 'Knob: 1m, to ride out a scrape glitch. Point-in-time recovery is broken until reset.',
        expr: |||
          oplog_capture_state{state="error_resume_token_lost"} == 1
          or
          (
            oplog_collector_status{status="error_resume_token_lost"} == 1
            unless on (source_cluster)
            oplog_capture_state
          )
        |||,
        'for': '1m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'An oplog collector lost its resume token; point-in-time recovery is broken.',
          description: 'The oplog collector of source cluster {{ $labels.source_cluster }} can no longer resume its change stream: the source oplog no longer holds its resume point. Capture of this source has stopped and the store has a gap until the source is reset.',
        },
      },
      {
        alert: 'OplogCollectorLagHigh',
        comment:: |||
          Knobs: heartbeat gap above _config.heartbeatLagWarningSeconds (600 s, the old UI's
          red) and growing (the saved time advancing slower than the clock over 10m), for 5m.
          Only for sources without oplog_capture metrics (the old Python collector, or ours
          while its /metrics is gone); OplogCaptureLagHigh covers the rest.
        |||,
        expr: |||
          (time() - oplog_collector_last_oplog_timestamp_seconds) > %(heartbeatLagWarningSeconds)d
          and on (job, instance, metadata, source_cluster)
          deriv(oplog_collector_last_oplog_timestamp_seconds[10m]) < 1
          unless on (source_cluster)
          oplog_capture_checkpoint_timestamp_seconds
        ||| % config,
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: "An oplog collector's last saved event is old.",
          description: 'The newest event the oplog collector of source cluster {{ $labels.source_cluster }} (metadata {{ $labels.metadata }}) has saved is {{ $value | humanizeDuration }} old and getting older (warning above %s).' % p.dur(config.heartbeatLagWarningSeconds),
        },
      },
    ],
  }
