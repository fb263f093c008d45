// Migration-wide figures of mongosync.
function(config) {
  name: 'mongosync.recording',
  rules: [
    {
      record: 'migration:mongosync_collection_copy_progress:ratio',
      comment:: |||
        Copy progress of a migration, 0 to 1. Copied bytes are per instance (summed);
        the total is one global estimate repeated on every instance (max, never sum).
        Can exceed 1 before mongosync 1.21 (retried copies count twice).
      |||,
      expr: |||
        sum by (job, instance, migration) (mongosync_collection_copy_estimated_copied_bytes)
        / on (job, instance, migration)
        max by (job, instance, migration) (mongosync_collection_copy_estimated_total_bytes)
      |||,
    },
    {
      record: 'migration:mongosync_lag_seconds:max',
      comment:: 'The migration is as far behind as its slowest instance.',
      expr: 'max by (job, instance, migration) (mongosync_lag_seconds)',
    },
    {
      record: 'migration:mongosync_can_commit:min',
      comment:: |||
        1 only when every instance can commit. An instance the exporter cannot read
        (mongosync_up 0, so no mongosync_can_commit) counts as 0: it has not agreed.
      |||,
      expr: |||
        min by (job, instance, migration) (
          mongosync_can_commit
          or on (job, instance, migration, mongosync)
          (mongosync_up == 0)
        )
      |||,
    },
    {
      record: 'migration:mongosync_can_write:coordinator',
      comment:: |||
        canWrite of the coordinator, the only instance whose value is valid: the
        instance whose mongosync_id equals its coordinator_id; or the migration's only
        instance when it reports coordinatorID "" (mongosync's reply when it runs alone).
        Absent while a migration of several instances does not know its coordinator
        (coordinatorID is null at start-up).
      |||,
      expr: |||
        max by (job, instance, migration) (
          mongosync_can_write
          and on (job, instance, migration, mongosync)
          (
            (
              mongosync_info
              and on (job, instance, migration, mongosync, mongosync_id, coordinator_id)
              label_replace(mongosync_info, "coordinator_id", "$1", "mongosync_id", "(.+)")
            )
            or on (job, instance, migration, mongosync)
            (
              mongosync_info{coordinator_id=""}
              and on (job, instance, migration)
              (count by (job, instance, migration) (mongosync_up) == 1)
            )
          )
        )
      |||,
    },
    {
      record: 'migration:mongosync_oplog_time_remaining_seconds:min',
      comment:: |||
        Every instance's estimate of the source oplog time it has left; the migration's is
        the shortest: when one instance's oplog rolls past it, the migration fails.
      |||,
      expr: 'min by (job, instance, migration) (mongosync_oplog_time_remaining_seconds)',
    },
  ],
}
