// migration-verifier, read by mongosync_exporter.
function(config)
  local p = (import '../lib/promql.libsonnet')(config);
  {
    name: 'migration-verifier',
    comment:: '--- migration-verifier ---------------------------------------------------------------',
    rules: [
      {
        alert: 'MigrationVerifierDown',
        comment:: 'Knob: metadata database unreadable for 5m.',
        expr: 'migration_verifier_up == 0',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: "The exporter cannot read a migration-verifier's metadata database.",
          description: 'mongosync_exporter {{ $labels.instance }} has not been able to read the metadata database of verifier {{ $labels.verifier }} for 5 minutes.',
        },
      },
      {
        alert: 'MigrationVerifierAPIDown',
        comment:: 'Knob: HTTP API unreachable for 5m (only when api_url is configured).',
        expr: 'migration_verifier_api_up == 0',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: "A migration-verifier's HTTP API does not answer.",
          description: 'mongosync_exporter {{ $labels.instance }} has not been able to read the progress API of verifier {{ $labels.verifier }} for 5 minutes; the verifier process may have stopped.',
        },
      },
      {
        alert: 'MigrationVerifierFiguresIncomplete',
        comment:: |||
          Knob: the exporter's first reading of the verifier's totals (tasks, mismatches)
          not complete after 30m; MigrationVerifierMismatchesFound cannot fire meanwhile.
        |||,
        expr: 'migration_verifier_totals_read_ratio < 1 and on (job, instance, verifier) migration_verifier_up == 1',
        'for': '30m',
        labels: { severity: 'warning' },
        annotations: {
          summary: "The exporter has not finished reading a migration-verifier's figures.",
          description: 'mongosync_exporter {{ $labels.instance }} has read {{ $value | humanizePercentage }} of the tasks and mismatches of verifier {{ $labels.verifier }} after 30 minutes: its mismatch counts are absent and MigrationVerifierMismatchesFound cannot fire until the reading completes.',
        },
      },
      {
        alert: 'MigrationVerifierMismatchesFound',
        comment:: |||
          Knobs: mismatches that a recheck found (generation 2 on, when those of generation
          1 or later stand; or the verifier done, when its last generation's stand: during
          generation 1 they are the initial check's, documents in flight included), standing
          for 30m.
        |||,
        expr: |||
          migration_verifier_mismatches > 0
          and on (job, instance, verifier)
          (migration_verifier_generation > 1 or migration_verifier_done == 1)
        |||,
        'for': '30m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'migration-verifier found mismatches between source and destination.',
          description: 'Verifier {{ $labels.verifier }} reports {{ $value }} mismatch(es) of kind {{ $labels.kind }} that a recheck found, standing for 30 minutes.',
        },
      },
      {
        alert: 'MigrationVerifierStalled',
        comment:: |||
          Knobs: nothing new in the metadata database for _config.verifierQuietSeconds (20
          minutes: no task inserted or picked, no change reader position saved, which a
          running verifier saves every 10 s); or a task processing for over
          _config.verifierTaskSeconds (1 hour) while the generation has not changed in as
          long; or a database without generation document nor anything timestamped (a
          verifier dead at start-up); for 10m. Not once done, idle or not started.
        |||,
        expr: |||
          (
            (time() - migration_verifier_last_change_timestamp_seconds) > %(quiet)d
            or on (job, instance, verifier)
            (
              (time() - migration_verifier_oldest_processing_task_start_timestamp_seconds) > %(task)d
              and on (job, instance, verifier)
              changes(migration_verifier_generation[%(taskWindow)s]) == 0
            )
            or on (job, instance, verifier)
            (
              max without (phase) (migration_verifier_phase{phase="initializing"}) == 1
              unless on (job, instance, verifier)
              migration_verifier_last_change_timestamp_seconds
            )
          )
          unless on (job, instance, verifier)
          (migration_verifier_done == 1 or migration_verifier_phase{phase=~"idle|not_started"} == 1)
        ||| % { quiet: config.verifierQuietSeconds, task: config.verifierTaskSeconds, taskWindow: p.dur(config.verifierTaskSeconds) },
        'for': '10m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'migration-verifier looks stalled.',
          description: 'Verifier {{ $labels.verifier }} shows no progress in its metadata database: nothing new for %s, a task processing for over %s while its generation stands still, or a start it never got through.' % [p.dur(config.verifierQuietSeconds), p.dur(config.verifierTaskSeconds)],
        },
      },
    ],
  }
