// oplog_collector, from its own /metrics.
function(config)
  local p = (import '../lib/promql.libsonnet')(config);

  // OplogCaptureLagHigh at one severity: the checkpoint more than `threshold` seconds
  // behind and falling further behind; not for a source whose resume token is lost
  // (OplogCollectorResumeTokenLost pages for it).
  local lagHigh(severity, threshold, forDuration, comment, summary, consequence) = {
    alert: 'OplogCaptureLagHigh',
    comment:: comment,
    expr: |||
      oplog_capture_lag_seconds > %d
      and on (job, instance, source_cluster)
      deriv(oplog_capture_checkpoint_timestamp_seconds[10m]) < 1
      unless on (job, instance, source_cluster)
      oplog_capture_state{state="error_resume_token_lost"} == 1
    ||| % threshold,
    'for': forDuration,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: 'Capture of source cluster {{ $labels.source_cluster }} is {{ $value | humanizeDuration }} behind and falling further behind (%s above %s): %s' % [severity, p.dur(threshold), consequence],
    },
  };

  // OplogCaptureResumeHeadroomLow at one severity: the checkpoint less than `threshold`
  // seconds ahead of the oldest entry the source's oplog still holds (on a sharded source,
  // the shard whose oldest entry is newest binds).
  local headroomLow(severity, threshold, forDuration, comment, summary, description) = {
    alert: 'OplogCaptureResumeHeadroomLow',
    comment:: comment,
    expr: |||
      oplog_capture_checkpoint_timestamp_seconds
      - on (job, instance, source_cluster)
      max by (job, instance, source_cluster) (oplog_capture_source_oplog_oldest_timestamp_seconds)
      < %d
      unless on (job, instance, source_cluster)
      oplog_capture_state{state="error_resume_token_lost"} == 1
    ||| % threshold,
    'for': forDuration,
    labels: { severity: severity },
    annotations: { summary: summary, description: description },
  };

  {
    name: 'oplog-capture',
    comment:: "--- oplog_collector's own metrics --------------------------------------------------------",
    rules: [
      {
        alert: 'OplogCaptureDown',
        comment:: |||
          Knobs: the collector's scrape job (_config.oplogCollectorSelector); down for 5m.
        |||,
        expr: 'up{%(oplogCollectorSelector)s} == 0' % config,
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'Prometheus cannot scrape oplog_collector.',
          description: 'Prometheus has failed to scrape oplog_collector {{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes; it may not be capturing, and the OplogCapture alerts cannot fire meanwhile.',
        },
      },
      {
        alert: 'OplogCaptureAbsent',
        comment:: |||
          Knob: 10m without any collector's series; silent while OplogCaptureDown can say
          the same. As MongosyncExporterAbsent.
        |||,
        expr: |||
          absent(oplog_capture_build_info)
          unless on ()
          (up{%(oplogCollectorSelector)s} == 0)
        ||| % config,
        'for': '10m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'Prometheus has no series of oplog_collector.',
          description: 'No oplog_capture_build_info series has reached Prometheus for 10 minutes: no oplog_collector is scraped under any job name, so no OplogCapture alert can fire.',
        },
      },
      lagHigh(
        'warning',
        config.captureLagWarningSeconds,
        '5m',
        |||
          Knobs: capture lag above _config.captureLagWarningSeconds (300 s, the old UI's
          amber) and growing (the checkpoint advancing slower than the clock over 10m), for
          5m. The catch-up after a restart shrinks the lag and does not fire; a source whose
          resume token is lost pages as OplogCollectorResumeTokenLost instead.
        |||,
        'Oplog capture is falling behind the source.',
        'a restore cannot reach the last minutes.',
      ),
      lagHigh(
        'critical',
        config.captureLagCriticalSeconds,
        '10m',
        |||
          Knobs: capture lag above _config.captureLagCriticalSeconds (half an hour) and
          growing, for 10m: a restore now would lose that much, and the resume headroom is
          being used up.
        |||,
        'Oplog capture is far behind the source.',
        'a restore cannot reach the last %s.' % p.dur(config.captureLagCriticalSeconds),
      ),
      {
        alert: 'OplogCaptureWindowBelowRetention',
        comment:: |||
          Knobs: the recoverable window (checkpoint minus where the store holds every
          event from, after the last gap) below _config.recoverableWindowRetentionRatio
          (0.9) of the configured retention, for 1h, when a gap is recorded (a reset, a
          lost resume token: history was lost and is refilling) or events are being
          removed from the store (the oldest changed within 30m: a TTL shorter than the
          retention). A store filling up after its first start or a longer retention does
          not fire.
        |||,
        expr: |||
          (oplog_capture_checkpoint_timestamp_seconds - oplog_capture_recoverable_since_timestamp_seconds)
          < on (job, instance, source_cluster)
          %(recoverableWindowRetentionRatio)g * oplog_capture_retention_seconds
          and on (job, instance, source_cluster)
          (
            oplog_capture_gaps > 0
            or
            changes(oplog_capture_store_oldest_timestamp_seconds[30m]) > 0
          )
        ||| % config,
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'A restore cannot reach as far back as the configured retention.',
          description: 'A restore of source cluster {{ $labels.source_cluster }} can reach {{ $value | humanizeDuration }} back from the checkpoint, less than %g%% of the configured retention, because of a gap in the captured history or events leaving the store early.' % (100 * config.recoverableWindowRetentionRatio),
        },
      },
      headroomLow(
        'warning',
        config.resumeHeadroomWarningSeconds,
        '5m',
        |||
          Knobs: resume headroom (checkpoint minus the oldest entry the source's oplog still
          holds) below _config.resumeHeadroomWarningSeconds (1 day) for 5m, as
          MongosyncOplogTimeRemainingLow: how long the collector may stop before it cannot
          resume.
        |||,
        'Oplog capture could not resume after a stop of a day.',
        'The capture position of source cluster {{ $labels.source_cluster }} is {{ $value | humanizeDuration }} ahead of the oldest entry its oplog still holds (warning below %s): a collector stopped longer than that loses its resume token.' % p.dur(config.resumeHeadroomWarningSeconds),
      ),
      headroomLow(
        'critical',
        config.resumeHeadroomCriticalSeconds,
        '10m',
        'Knobs: resume headroom below _config.resumeHeadroomCriticalSeconds (1 hour) for 10m.',
        "Oplog capture is about to lose its place in the source's oplog.",
        'The capture position of source cluster {{ $labels.source_cluster }} is only {{ $value | humanizeDuration }} ahead of the oldest entry its oplog still holds (critical below %s): if capture falls that far behind, or stops that long, its resume token is lost and the store gets a gap.' % p.dur(config.resumeHeadroomCriticalSeconds),
      ),
      {
        alert: 'OplogCaptureResumeHeadroomUnknown',
        comment:: |||
          Knob: a source captured (running) for 30m without the oldest entry of its oplog
          read: OplogCaptureResumeHeadroomLow cannot fire for it meanwhile.
        |||,
        expr: |||
          oplog_capture_state{state="running"} == 1
          unless on (job, instance, source_cluster)
          oplog_capture_source_oplog_oldest_timestamp_seconds
        |||,
        'for': '30m',
        labels: { severity: 'warning' },
        annotations: {
          summary: "Oplog capture cannot read how much of the source's oplog is left.",
          description: "oplog_collector {{ $labels.instance }} has captured source cluster {{ $labels.source_cluster }} for 30 minutes without reading the oldest entry of its oplog (or of every shard's): the resume headroom is unknown and OplogCaptureResumeHeadroomLow cannot fire. oplog_capture_errors_total{kind=\"source_oplog\"} counts the failed reads; the collector logs why.",
        },
      },
      {
        alert: 'OplogCaptureStoreUnavailable',
        comment:: |||
          Knob: the store refusing or not acknowledging writes (state store_unavailable:
          a write failed, or waited longer than the collector's store_stall_after) for 5m.
          The lag alert says how late the capture is; this one says why.
        |||,
        expr: 'oplog_capture_state{state="store_unavailable"} == 1',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: "The oplog store does not accept the collector's writes.",
          description: "oplog_collector {{ $labels.instance }} cannot write the events of source cluster {{ $labels.source_cluster }} to the oplog store: writes fail or wait for their majority acknowledgement. Events wait in the source's oplog meanwhile.",
        },
      },
      {
        alert: 'OplogCaptureForeignWriter',
        comment:: |||
          Knobs: any write found in the last 15m that no holder of the source's lease made (the
          holder counts them), for 1m: one batch of another writer is one too many; it
          resolves 15m after the last.
        |||,
        expr: 'increase(oplog_capture_foreign_writes_total[15m]) > 0',
        'for': '1m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'Another process writes into the oplog store.',
          description: "oplog_collector {{ $labels.instance }} found writes ({{ $labels.kind }}) in the oplog store of source cluster {{ $labels.source_cluster }} that no holder of its lease made, in the last 15 minutes: another collector, or the old Python tool restarted by its manager. The saved position may be that process's.",
        },
      },
      {
        alert: 'OplogCaptureConfigReloadFailed',
        comment:: 'Knob: 5m with a refused configuration.',
        expr: 'oplog_capture_config_last_reload_successful == 0',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'oplog_collector refused its configuration file.',
          description: 'oplog_collector {{ $labels.instance }} refused its configuration file at the last reload and still runs the previous one.',
        },
      },
    ],
  }
