// mongosync, read by mongosync_exporter.
function(config)
  local p = (import '../lib/promql.libsonnet')(config);

  // MongosyncOplogTimeRemainingLow at one severity: the migration's shortest estimate (its
  // instances' minimum) below `threshold` seconds.
  local oplogTimeRemainingLow(severity, threshold, forDuration, comment, summary, consequence) = {
    alert: 'MongosyncOplogTimeRemainingLow',
    comment:: comment,
    expr: 'min by (job, instance, migration) (mongosync_oplog_time_remaining_seconds) < %d' % threshold,
    'for': forDuration,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: 'An instance of migration {{ $labels.migration }} estimates {{ $value | humanizeDuration }} before the source oplog entries it still needs are overwritten (%s below %s)%s.' % [severity, p.dur(threshold), consequence],
    },
  };

  {
    name: 'mongosync',
    comment:: '--- mongosync ------------------------------------------------------------------------',
    rules: [
      {
        alert: 'MongosyncTargetDown',
        comment:: |||
          Knobs: 5m unreadable (mongosync's API may fail for 2+ minutes after a restart);
          silent for a migration whose last known state is COMMITTED within the past week
          (mongosync is stopped after a commit: remove the migration from the exporter's
          config within that week).
        |||,
        expr: |||
          mongosync_up == 0
          unless on (job, instance, migration)
          (last_over_time(mongosync_state{state="COMMITTED"}[1w]) == 1)
        |||,
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: "The exporter cannot read a mongosync's progress.",
          description: 'mongosync_exporter {{ $labels.instance }} has not been able to read the progress of mongosync {{ $labels.mongosync }} (migration {{ $labels.migration }}) for 5 minutes.',
        },
      },
      {
        alert: 'MongosyncLagHigh',
        comment:: |||
          Knobs: lag above _config.mongosyncLagWarningSeconds (60 s, mongosync_insights'
          "high"; 1.21+ refuses commit above 30 s) and growing over 10m, for 10m, only in
          change event application. A lag that shrinks is the normal catch-up after the
          copy; the danger of one that does not, the source oplog rolling past mongosync,
          pages as MongosyncOplogTimeRemainingLow.
        |||,
        expr: |||
          mongosync_lag_seconds > %(mongosyncLagWarningSeconds)d
          and on (job, instance, migration, mongosync)
          deriv(mongosync_lag_seconds[10m]) > 0
          and on (job, instance, migration, mongosync)
          mongosync_phase{phase="change event application"} == 1
        ||| % config,
        'for': '10m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'mongosync is falling further behind the source.',
          description: 'mongosync {{ $labels.mongosync }} (migration {{ $labels.migration }}) is {{ $value | humanizeDuration }} behind the source in change event application and the lag keeps growing (warning above %s; it cannot commit above 30s).' % p.dur(config.mongosyncLagWarningSeconds),
        },
      },
      {
        alert: 'MongosyncCollectionCopyStalled',
        comment:: |||
          Knobs: copied bytes of the migration (all instances) unchanged over 25m, then 5m of
          `for`: 30 minutes without progress while an instance is RUNNING in collection copy.
        |||,
        expr: |||
          (
            sum by (job, instance, migration) (mongosync_collection_copy_estimated_copied_bytes)
            - sum by (job, instance, migration) (mongosync_collection_copy_estimated_copied_bytes offset 25m)
          ) <= 0
          and on (job, instance, migration)
          count by (job, instance, migration) (
            mongosync_state{state="RUNNING"} == 1
            and on (job, instance, migration, mongosync)
            mongosync_phase{phase="collection copy"} == 1
          )
        |||,
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'The collection copy of a migration has stopped progressing.',
          description: 'Migration {{ $labels.migration }} is RUNNING in collection copy but its copied bytes have not grown for 30 minutes.',
        },
      },
      {
        alert: 'MongosyncPausedTooLong',
        comment:: 'Knob: PAUSED for 1h.',
        expr: 'mongosync_state{state="PAUSED"} == 1',
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'A mongosync has been paused for a long time.',
          description: 'mongosync {{ $labels.mongosync }} (migration {{ $labels.migration }}) has been PAUSED for more than 1 hour; the source oplog keeps moving on while it waits.',
        },
      },
      oplogTimeRemainingLow(
        'warning',
        config.oplogTimeRemainingWarningSeconds,
        '5m',
        |||
          Knobs: the migration's shortest estimate (its instances' minimum) below
          _config.oplogTimeRemainingWarningSeconds (1 day: Atlas' oplog window warning) for 5m.
        |||,
        'The source oplog will soon roll past what mongosync still needs.',
        '',
      ),
      oplogTimeRemainingLow(
        'critical',
        config.oplogTimeRemainingCriticalSeconds,
        '10m',
        |||
          Knobs: the migration's shortest estimate below _config.oplogTimeRemainingCriticalSeconds
          (1 hour: Atlas' oplog window critical) for 10m.
        |||,
        'The source oplog is about to roll past what mongosync still needs.',
        ': the migration would have to restart',
      ),
      {
        alert: 'MongosyncWarningsPresent',
        comment:: 'Knob: any warning for 5m.',
        expr: 'mongosync_warnings > 0',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'mongosync reports warnings.',
          description: 'mongosync {{ $labels.mongosync }} (migration {{ $labels.migration }}) reports {{ $value }} warning(s); their texts are in the mongosync_exporter log.',
        },
      },
      {
        alert: 'MongosyncPingFailed',
        comment:: 'Knob: the last ping failed, for 5m.',
        expr: 'mongosync_ping_failed == 1',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'mongosync cannot ping one of its clusters.',
          description: 'mongosync {{ $labels.mongosync }} (migration {{ $labels.migration }}) has failed to ping the {{ $labels.cluster_role }} cluster for 5 minutes.',
        },
      },
      {
        alert: 'MongosyncEmbeddedVerifierLagHigh',
        comment:: |||
          Knobs: embedded verifier lag above _config.embeddedVerifierLagWarningSeconds (60 s)
          and growing over 10m, for 10m, in stream hashing only (1.21+ refuses commit while
          it is above 30 s).
        |||,
        expr: |||
          mongosync_verification_lag_seconds > %(embeddedVerifierLagWarningSeconds)d
          and on (job, instance, migration, mongosync, cluster_role)
          deriv(mongosync_verification_lag_seconds[10m]) > 0
          and on (job, instance, migration, mongosync, cluster_role)
          mongosync_verification_phase{phase="stream hashing"} == 1
        ||| % config,
        'for': '10m',
        labels: { severity: 'warning' },
        annotations: {
          summary: "mongosync's embedded verifier is falling further behind.",
          description: 'The embedded verifier of mongosync {{ $labels.mongosync }} (migration {{ $labels.migration }}) is {{ $value | humanizeDuration }} behind on the {{ $labels.cluster_role }} cluster and the lag keeps growing (warning above %s; commit is refused above 30s).' % p.dur(config.embeddedVerifierLagWarningSeconds),
        },
      },
      {
        alert: 'MongosyncCommittingTooLong',
        comment:: |||
          Knob: COMMITTING for 30m. The application is down while mongosync commits: writes
          to the source are stopped and the destination is not writable yet.
        |||,
        expr: 'mongosync_state{state="COMMITTING"} == 1',
        'for': '30m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'A mongosync has been committing for a long time.',
          description: 'mongosync {{ $labels.mongosync }} (migration {{ $labels.migration }}) has been COMMITTING for more than 30 minutes; the application cannot write meanwhile.',
        },
      },
      {
        alert: 'MongosyncCommittedNotWritable',
        comment:: |||
          Knob: 5m with the migration COMMITTED and canWrite of its coordinator still false
          (recording rule migration:mongosync_can_write:coordinator).
        |||,
        expr: |||
          migration:mongosync_can_write:coordinator == 0
          and on (job, instance, migration)
          group by (job, instance, migration) (mongosync_state{state="COMMITTED"} == 1)
        |||,
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'A committed migration does not let the application write to the destination.',
          description: 'Migration {{ $labels.migration }} is COMMITTED but its coordinator has reported canWrite false for 5 minutes: the application must not write to the destination yet.',
        },
      },
    ],
  }
