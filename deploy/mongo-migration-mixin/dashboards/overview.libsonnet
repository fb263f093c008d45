// MongoDB migration overview: the cutover verdict, then each migration and its instances.
function(config)
  local g = (import '../lib/grafana.libsonnet')(config);
  local p = (import '../lib/promql.libsonnet')(config);
  local m(metric) = g.sel(metric, g.labels.migration);
  local i(metric) = g.sel(metric, g.labels.mongosync);

  // Lag: yellow where the cutover is blocked, orange where MongosyncLagHigh warns, red at
  // 10 minutes. Oplog time remaining: the two levels of MongosyncOplogTimeRemainingLow.
  local cutoverLag = config.cutoverMaxLagSeconds;
  local lagWarning = config.mongosyncLagWarningSeconds;
  local lagTh = g.steps(['green', null, 'yellow', cutoverLag, 'orange', lagWarning, 'red', 600]);
  local otrTh = g.steps(['red', null, 'orange', config.oplogTimeRemainingCriticalSeconds, 'green', config.oplogTimeRemainingWarningSeconds]);

  local cutover = g.row(
    'Cutover',
    [
      g.stat(
        'Go / no-go',
        "Can the migration be cut over now (recording rule migration:cutover_ready)? GO only when no blocker is present; NO GO with any (see Blockers). No data (red) when the exporter's series are gone: never the last known answer. docs/runbook.md, Cutover checklist.",
        'none',
        g.instant([[m('migration:cutover_ready'), '{{migration}}']]),
        6,
        6,
        thresholds=g.steps(['red', null]),
        mapping=[['0', 'NO GO', 'red'], ['1', 'GO', 'green']],
        links=[{ title: 'Cutover checklist', url: g.runbookURL('cutover-checklist'), targetBlank: true }],
      ),
      g.table(
        'Blockers',
        "What stops the cutover now, one row per blocker present (recording rule migration:cutover_blockers): an instance or verifier unreadable, canCommit false, lag above %d s, mongosync warnings, index builds pending, the embedded verifier not ready, verifier mismatches, a verifier not done. Empty at GO; No data when the exporter's series are gone. docs/runbook.md, Cutover checklist, says what clears each." % cutoverLag,
        g.tableTargets([m('migration:cutover_blockers')]),
        ['migration'],
        [['blocker', 'Blocker', 'none', g.steps(['red', null]), g.blockers]],
        10,
        6,
        sort=['migration', false],
        links=[{ title: 'Cutover checklist', url: g.runbookURL('cutover-checklist'), targetBlank: true }],
      ),
      g.stat(
        'Exporter',
        'Whether Prometheus scrapes mongosync_exporter (up). Down or No data: every figure here is unknown and the migration alerts are blind (alerts MongosyncExporterDown, MongosyncExporterAbsent).',
        'none',
        g.instant([[g.sel('up', []), '{{instance}}']]),
        4,
        6,
        thresholds=g.steps(['red', null]),
        mapping=g.up,
      ),
      g.stat(
        'Can write',
        'Whether the application may write to the destination: canWrite of the coordinator, the only instance whose value is valid (recording rule migration:mongosync_can_write:coordinator). No is normal before the commit; after it, alert MongosyncCommittedNotWritable. Empty until the coordinator is known.',
        'none',
        g.instant([[m('migration:mongosync_can_write:coordinator'), '{{migration}}']]),
        4,
        6,
        thresholds=g.neutral,
        mapping=g.yesNoNormal,
      ),
    ],
  );

  local migration = g.row(
    'Migration $migration',
    [
      g.stat(
        'State',
        'State of each instance of the migration (mongosync_state): RUNNING green, PAUSED orange, COMMITTING purple, COMMITTED dark green, IDLE grey. The instances of one migration should agree.',
        'none',
        g.tableTargets([i('mongosync_state') + ' == 1']),
        5,
        thresholds=g.neutral,
        mapping=g.mongosyncStates,
        field='state',
        display='${__data.fields.mongosync}',
      ),
      g.stat(
        'Phase',
        'Phase of each instance (mongosync_phase, from the progress field info): collection copy, change event application, waiting for commit to complete, commit completed.',
        'none',
        g.tableTargets([i('mongosync_phase') + ' == 1']),
        5,
        thresholds=g.neutral,
        mapping=g.mongosyncPhases,
        field='phase',
        display='${__data.fields.mongosync}',
      ),
      g.stat(
        'Can commit',
        "Whether every instance can commit (recording rule migration:mongosync_can_commit:min; an unreadable instance counts as no). No is normal until the copy is done and mongosync has caught up. mongosync 1.21+ refuses to commit while its lag or the embedded verifier's is above 30 s.",
        'none',
        g.instant([[m('migration:mongosync_can_commit:min'), '{{migration}}']]),
        3,
        thresholds=g.neutral,
        mapping=g.yesNoNormal,
      ),
      g.gauge(
        'Copy progress',
        'Collection copy progress of the migration: bytes copied by all instances over the global estimate (recording rule migration:mongosync_collection_copy_progress:ratio). May exceed 100% before mongosync 1.21.',
        'percentunit',
        g.instant([[m('migration:mongosync_collection_copy_progress:ratio'), '{{migration}}']]),
        3,
      ),
      g.stat(
        'Copy ETA',
        'Time left in the collection copy at the recent copy rate: remaining share over the derivative of the copy progress. No data while the copy does not progress.',
        'dtdurations',
        g.instant([['clamp_min(1 - %s, 0) / (deriv(%s[$__rate_interval]) > 0)' % [m('migration:mongosync_collection_copy_progress:ratio'), m('migration:mongosync_collection_copy_progress:ratio')], '{{migration}}']]),
        2,
        thresholds=g.neutral,
        color='value',
      ),
      g.stat(
        'Lag',
        "How far the migration's slowest instance is behind the source (recording rule migration:mongosync_lag_seconds:max). Yellow from %d s (mongosync 1.21+ cannot commit), orange from %d s (alert MongosyncLagHigh while it grows), red from 600 s. No data in IDLE and PAUSED." % [cutoverLag, lagWarning],
        's',
        g.instant([[m('migration:mongosync_lag_seconds:max'), '{{migration}}']]),
        3,
        thresholds=lagTh,
      ),
      g.stat(
        'Oplog time remaining',
        "The migration's shortest estimate of the source oplog time left before entries mongosync still needs are overwritten (recording rule migration:mongosync_oplog_time_remaining_seconds:min; 1.19+). Orange below %s, red below %s (alert MongosyncOplogTimeRemainingLow, which pages). No data until mongosync has checked." % [p.human(config.oplogTimeRemainingWarningSeconds), p.human(config.oplogTimeRemainingCriticalSeconds)],
        's',
        g.instant([[m('migration:mongosync_oplog_time_remaining_seconds:min'), '{{migration}}']]),
        3,
        thresholds=otrTh,
      ),
      g.timeseries(
        'Copy progress',
        'Collection copy progress of the migration over time (0-100%).',
        'percentunit',
        g.ranged([[m('migration:mongosync_collection_copy_progress:ratio'), '{{migration}}']]),
        8,
        fill=10,
        min=0,
      ),
      g.timeseries(
        'Copy rate',
        "Bytes copied per second by each instance: the derivative of mongosync_collection_copy_estimated_copied_bytes (a gauge), stacked to the migration's rate.",
        'Bps',
        g.ranged([['sum by (mongosync) (deriv(%s[$__rate_interval]))' % [i('mongosync_collection_copy_estimated_copied_bytes')], '{{mongosync}}']]),
        8,
        fill=10,
        stack=true,
      ),
      g.timeseries(
        'Events applied',
        'Change events applied per second by each instance during change event application (rate of mongosync_events_applied_total, approximate; resets on restart).',
        'eps',
        g.ranged([['sum by (mongosync) (rate(%s[$__rate_interval]))' % [i('mongosync_events_applied_total')], '{{mongosync}}']]),
        8,
        fill=10,
        stack=true,
      ),
      g.timeseries(
        'Lag',
        'Lag of each instance behind the source: overall (lag.overallLagSeconds, or lagTimeSeconds before 1.21), CRUD and DDL (1.21+). Lines at %d s (commit refused), %d s (alert MongosyncLagHigh, while the lag grows) and 600 s. A high lag that falls is the normal catch-up after the copy.' % [cutoverLag, lagWarning],
        's',
        g.ranged([
          [i('mongosync_lag_seconds'), '{{mongosync}} overall'],
          [i('mongosync_crud_lag_seconds'), '{{mongosync}} CRUD'],
          [i('mongosync_ddl_lag_seconds'), '{{mongosync}} DDL'],
        ]),
        12,
        thresholds=lagTh,
        lines=true,
      ),
      g.timeseries(
        'Change event catch-up estimate',
        "mongosync's estimate of the time until change event application catches up with the source (1.14+). Absent while lag is not decreasing or outside change event application.",
        's',
        g.ranged([[i('mongosync_cea_catchup_estimated_seconds'), '{{mongosync}}']]),
        6,
      ),
      g.timeseries(
        'Oplog time remaining',
        "mongosync's estimate of the time before the source oplog overwrites entries it still needs (1.19+; coarse: 900 s means less than 15 minutes, 259200 s more than 72 hours). Red below %s (alert critical), orange below %s (warning)." % [p.human(config.oplogTimeRemainingCriticalSeconds), p.human(config.oplogTimeRemainingWarningSeconds)],
        's',
        g.ranged([[i('mongosync_oplog_time_remaining_seconds'), '{{mongosync}}']]),
        6,
        thresholds=otrTh,
        lines=true,
      ),
    ],
    repeat='migration',
  );

  local by = 'job, instance, migration, mongosync';

  local embedded(side) =
    local phase = g.sel('mongosync_verification_phase', g.labels.mongosync, ',cluster_role="%s"' % side);
    'max by (%s, %s) (label_replace(%s == 1, "%s", "$1", "phase", "(.*)"))' % [by, side, phase, side];

  local instances = g.row(
    'Instances',
    [
      g.table(
        'Instances',
        "Every mongosync instance at the last scrape, one row each: readable (mongosync_up), state, phase, change event stage, canCommit, canWrite (only the coordinator's is valid), lag, warnings, a failed ping to either cluster, the embedded verifier's phase on each side, the source oplog time left and the share of indexes built. Coloured as the alerts and the cutover blockers judge them. The time series of one instance are in its row below.",
        g.tableTargets([
          i('mongosync_up'),
          'max by (%s, state) (%s == 1)' % [by, i('mongosync_state')],
          'max by (%s, phase) (%s == 1)' % [by, i('mongosync_phase')],
          'max by (%s, stage) (%s == 1)' % [by, i('mongosync_cea_stage')],
          i('mongosync_can_commit'),
          i('mongosync_can_write'),
          i('mongosync_lag_seconds'),
          i('mongosync_warnings'),
          'max by (%s) (%s)' % [by, i('mongosync_ping_failed')],
          embedded('source'),
          embedded('destination'),
          i('mongosync_oplog_time_remaining_seconds'),
          '%s / %s' % [i('mongosync_index_build_indexes_built'), i('mongosync_index_build_indexes_to_build')],
        ]),
        ['migration', 'mongosync'],
        [
          ['#A', 'Readable', 'none', g.neutral, g.yesNoGood],
          ['state', 'State', 'none', g.neutral, g.mongosyncStates],
          ['phase', 'Phase', 'none', g.neutral, g.mongosyncPhases],
          ['stage', 'Change event stage', 'none', g.neutral, g.ceaStages],
          ['#E', 'Can commit', 'none', g.neutral, g.yesNoNormal],
          ['#F', 'Can write', 'none', g.neutral, g.yesNoNormal],
          ['#G', 'Lag', 's', lagTh, null],
          ['#H', 'Warnings', 'none', g.steps(['green', null, 'orange', 1]), null],
          ['#I', 'Ping', 'none', g.neutral, [['0', 'OK', 'green'], ['1', 'Failed', 'red']]],
          ['source', 'Embedded verifier, source', 'none', g.neutral, g.embeddedPhases],
          ['destination', 'Embedded verifier, destination', 'none', g.neutral, g.embeddedPhases],
          ['#L', 'Oplog time remaining', 's', otrTh, null],
          ['#M', 'Indexes built', 'percentunit', g.steps(['blue', null, 'green', 1]), null],
        ],
        24,
        8,
        sort=['mongosync', false],
        hide='BCDJK',
      ),
    ],
  );

  local instance = g.row(
    'Instance $mongosync',
    [
      g.timeseries(
        'Ping latency',
        "Latency of mongosync's pings to each cluster (1.17+). Absent below 1 ms and while pings fail.",
        's',
        g.ranged([[i('mongosync_ping_latency_seconds'), '{{cluster_role}}']]),
        8,
        fill=10,
      ),
      g.timeseries(
        'Index builds',
        'Index builds after the data copy (1.19+, with buildIndexes afterDataCopy or excludeHashedAfterCopy): indexes and collections done against the totals.',
        'short',
        g.ranged([
          [i('mongosync_index_build_indexes_built'), 'indexes built'],
          [i('mongosync_index_build_indexes_to_build'), 'indexes to build'],
          [i('mongosync_index_build_collections_finished'), 'collections finished'],
          [i('mongosync_index_build_collections_to_build'), 'collections to build'],
        ]),
        8,
      ),
      g.timeseries(
        'Embedded verifier lag',
        'Lag of the embedded verifier on each side. Lines at %d s (mongosync 1.21+ refuses commit) and %d s (alert MongosyncEmbeddedVerifierLagHigh, while it grows).' % [cutoverLag, config.embeddedVerifierLagWarningSeconds],
        's',
        g.ranged([[i('mongosync_verification_lag_seconds'), '{{cluster_role}}']]),
        8,
        thresholds=g.steps(['green', null, 'yellow', cutoverLag, 'orange', config.embeddedVerifierLagWarningSeconds]),
        lines=true,
      ),
      g.timeseries(
        'Embedded verifier documents',
        'Documents hashed by the embedded verifier on each side against its estimate of the documents to hash.',
        'short',
        g.ranged([
          [i('mongosync_verification_documents_hashed'), '{{cluster_role}} hashed'],
          [i('mongosync_verification_documents_estimated'), '{{cluster_role}} estimated'],
        ]),
        12,
      ),
      g.timeseries(
        'Embedded verifier collections',
        'Collections scanned by the embedded verifier on each side against the collections to scan.',
        'short',
        g.ranged([
          [i('mongosync_verification_collections_scanned'), '{{cluster_role}} scanned'],
          [i('mongosync_verification_collections_to_scan'), '{{cluster_role}} to scan'],
        ]),
        12,
      ),
    ],
    repeat='mongosync',
    collapsed=true,
  );

  local exporter = g.row(
    'mongosync_exporter',
    [
      g.stat(
        'Scrapers',
        "Whether each of the exporter's scrapers finished within the scrape deadline (mongosync_exporter_collector_success). Alert: MongosyncExporterCollectorFailed.",
        'none',
        g.instant([[g.sel('mongosync_exporter_collector_success', []), '{{instance}} {{collector}}']]),
        6,
        thresholds=g.neutral,
        mapping=[['0', 'Late', 'red'], ['1', 'OK', 'green']],
      ),
      g.stat(
        'Configuration',
        "Whether the last load of the exporter's config file was applied (mongosync_exporter_config_last_reload_successful). Alert: MongosyncExporterConfigReloadFailed.",
        'none',
        g.instant([[g.sel('mongosync_exporter_config_last_reload_successful', []), '{{instance}}']]),
        6,
        thresholds=g.neutral,
        mapping=[['0', 'Refused', 'red'], ['1', 'Applied', 'green']],
      ),
      g.stat(
        'Configuration loaded',
        'When the configuration in force was loaded.',
        'dateTimeFromNow',
        g.instant([[g.sel('mongosync_exporter_config_last_reload_success_timestamp_seconds', []) + ' * 1000', '{{instance}}']]),
        6,
        thresholds=g.neutral,
        color='value',
      ),
      g.stat(
        'Version',
        'Version of each exporter (mongosync_exporter_build_info).',
        'none',
        g.instant([[g.sel('mongosync_exporter_build_info', []), '{{instance}} {{version}}']]),
        6,
        thresholds=g.neutral,
        text='name',
        color='value',
      ),
      g.timeseries(
        'Scrape duration',
        "Time each scraper took in the last scrape (mongosync_exporter_collector_duration_seconds); compare with the job's scrape_timeout.",
        's',
        g.ranged([[g.sel('mongosync_exporter_collector_duration_seconds', []), '{{instance}} {{collector}}']]),
        24,
        fill=10,
      ),
    ],
    collapsed=true,
  );

  g.dashboard(
    g.uids.overview,
    'MongoDB migration overview',
    'mongosync migrations: the cutover verdict and its blockers, state, phase, commit readiness, copy progress, lag, oplog headroom, every instance in one table, index builds, embedded verifier. Needs the recording rules of alerts/recording.yml.',
    ['mongodb', 'mongosync', 'migration'],
    [
      g.targetVariable('job', 'Job', 'label_values(mongosync_up, job)'),
      g.targetVariable('instance', 'Exporter', 'label_values(mongosync_up{job=~"$job"}, instance)'),
      g.variable('migration', 'Migration', 'label_values(mongosync_up{job=~"$job",instance=~"$instance"}, migration)'),
      g.variable('mongosync', 'Instance', 'label_values(mongosync_up{job=~"$job",instance=~"$instance",migration=~"$migration"}, mongosync)'),
    ],
    [cutover, migration, instances, instance, exporter],
    clusterSelector='mongosync_up',
    annotations=[
      g.changeAnnotation('State changes', 'mongosync_state', 'state', g.labels.mongosync, 'purple', '{{mongosync}}: {{state}}'),
      g.changeAnnotation('Phase changes', 'mongosync_phase', 'phase', g.labels.mongosync, 'blue', '{{mongosync}}: {{phase}}'),
    ],
  )
