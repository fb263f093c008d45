// The cutover verdict.
function(config)
  // One series per migration (value 1, label blocker) while the blocker is present.
  local blocker(name, expr, comment=null) = {
    record: 'migration:cutover_blockers',
    [if comment != null then 'comment']:: comment,
    expr: expr,
    labels: { blocker: name },
  };
  {
    name: 'migration.cutover',
    comment:: |||
      The cutover verdict: one series per blocker present (value 1, label `blocker`), and
      migration:cutover_ready, 1 only when a migration has none. A blocker is present
      unless the data says it is not: an instance that cannot be read, or whose canCommit
      is missing, blocks. Verifiers count for the migration their `migration` label names
      (exporter.verifiers[].migration); a migration without one is judged without a
      verifier. Thresholds are knobs (docs/runbook.md, "Cutover checklist"). One group, in
      this order: the verdict reads the blockers of the same evaluation.
    |||,
    rules: [
      blocker('unreadable', |||
        group by (job, instance, migration) (
          mongosync_up == 0
          or
          migration_verifier_up{migration!=""} == 0
        )
      |||),
      blocker('cannot_commit', |||
        group by (job, instance, migration) (
          mongosync_up == 1
          unless on (job, instance, migration, mongosync)
          mongosync_can_commit == 1
        )
      |||),
      blocker(
        'lag_high',
        'group by (job, instance, migration) (mongosync_lag_seconds > %(cutoverMaxLagSeconds)d)' % config,
        comment=|||
          _config.cutoverMaxLagSeconds, 30 s: mongosync 1.21+ refuses to commit above it;
          older versions do not check.
        |||,
      ),
      blocker('warnings', 'group by (job, instance, migration) (mongosync_warnings > 0)'),
      blocker('index_builds_pending', |||
        group by (job, instance, migration) (
          mongosync_index_build_indexes_built
          < on (job, instance, migration, mongosync)
          mongosync_index_build_indexes_to_build
        )
      |||),
      blocker(
        'embedded_verifier_not_ready',
        |||
          group by (job, instance, migration) (
            mongosync_verification_phase{phase!="stream hashing"} == 1
            or
            (
              mongosync_verification_lag_seconds > %(cutoverMaxLagSeconds)d
              and on (job, instance, migration, mongosync, cluster_role)
              mongosync_verification_phase{phase="stream hashing"} == 1
            )
          )
        ||| % config,
        comment=|||
          The embedded verifier, where it is on (some phase is 1): a side not yet in stream
          hashing, or more than _config.cutoverMaxLagSeconds behind in it (1.21+ refuses to
          commit above 30 s).
        |||,
      ),
      blocker('verifier_mismatches', 'group by (job, instance, migration) (migration_verifier_mismatches{migration!=""} > 0)'),
      blocker('verifier_not_done', |||
        group by (job, instance, migration) (
          migration_verifier_up{migration!=""} == 1
          unless on (job, instance, verifier)
          migration_verifier_done == 1
        )
      |||),
      {
        record: 'migration:cutover_ready',
        comment:: |||
          1 for a migration without blockers, 0 with any (from any exporter: blockers are
          matched on the migration's name alone), absent when its exporter is not scraped.
        |||,
        expr: |||
          (
            group by (job, instance, migration) (mongosync_up)
            unless on (migration)
            migration:cutover_blockers
          )
          or on (job, instance, migration)
          (
            group by (job, instance, migration) (mongosync_up) * 0
          )
        |||,
      },
    ],
  }
