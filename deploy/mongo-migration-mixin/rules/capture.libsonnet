// Capture figures, from the collector's own metrics and from the heartbeats.
function(config) {
  name: 'oplog_capture.recording',
  rules: [
    {
      record: 'source_cluster:oplog_capture_lag:seconds',
      comment:: |||
        Capture lag from the collector's own metrics, true at the scrape to the
        millisecond (time() - oplog_capture_checkpoint_timestamp_seconds would add the
        time from the scrape to this evaluation); it advances on a quiet source too.
      |||,
      expr: 'oplog_capture_lag_seconds',
    },
    {
      record: 'source_cluster:oplog_capture_window:seconds',
      comment:: |||
        Store window: from the oldest event in the store up to the checkpoint (everything
        up to it is stored, even on a quiet source whose newest event is old). A gap inside
        it makes it overstate what a restore can reach: see the recoverable window.
      |||,
      expr: 'oplog_capture_checkpoint_timestamp_seconds - oplog_capture_store_oldest_timestamp_seconds',
    },
    {
      record: 'source_cluster:oplog_capture_recoverable_window:seconds',
      comment:: |||
        Recoverable window: from where the store holds every event (after the last gap: a
        reset, a lost resume token) up to the checkpoint. A restore to T works for T from
        recoverable_since to the checkpoint. OplogCaptureWindowBelowRetention uses it.
      |||,
      expr: 'oplog_capture_checkpoint_timestamp_seconds - oplog_capture_recoverable_since_timestamp_seconds',
    },
    {
      record: 'source_cluster:oplog_capture_resume_headroom:seconds',
      comment:: |||
        Resume headroom: how far the checkpoint is ahead of the oldest entry the source's
        oplog still holds (on a sharded source, the shard whose oldest entry is newest
        binds). At 0 the saved position has left the oplog and capture cannot resume.
      |||,
      expr: |||
        oplog_capture_checkpoint_timestamp_seconds
        - on (job, instance, source_cluster)
        max by (job, instance, source_cluster) (oplog_capture_source_oplog_oldest_timestamp_seconds)
      |||,
    },
    {
      record: 'source_cluster:oplog_collector_lag:seconds',
      comment:: |||
        The same two figures from the heartbeat documents (either collector, read by
        mongosync_exporter): the old UI's "GAP", and the window. last_oplog_time_utc is
        this project's collector's checkpoint (the old collector's newest saved event).
      |||,
      expr: 'time() - oplog_collector_last_oplog_timestamp_seconds',
    },
    {
      record: 'source_cluster:oplog_collector_window:seconds',
      expr: 'oplog_collector_last_oplog_timestamp_seconds - oplog_collector_first_oplog_timestamp_seconds',
    },
    {
      record: 'source_cluster:oplog_collector_heartbeat_age:seconds',
      comment:: 'Age of the newest heartbeat.',
      expr: 'time() - oplog_collector_last_report_timestamp_seconds',
    },
  ],
}
