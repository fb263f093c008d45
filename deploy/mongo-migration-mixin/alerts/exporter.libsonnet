// mongosync_exporter itself.
function(config) {
  name: 'mongosync-exporter',
  comment:: '--- mongosync_exporter itself --------------------------------------------------------',
  rules: [
    {
      alert: 'MongosyncExporterDown',
      comment:: |||
        Knobs: the exporter's scrape job (_config.mongosyncExporterSelector, the job_name of
        your scrape config); down for 5m. Critical: every migration alert is blind meanwhile,
        and the dashboards' verdicts show No data.
      |||,
      expr: 'up{%(mongosyncExporterSelector)s} == 0' % config,
      'for': '5m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Prometheus cannot scrape mongosync_exporter.',
        description: 'Prometheus has failed to scrape mongosync_exporter {{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes; the mongosync, verifier and heartbeat alerts cannot fire meanwhile.',
      },
    },
    {
      alert: 'MongosyncExporterAbsent',
      comment:: |||
        Knob: 10m without any exporter's series. Silent while MongosyncExporterDown can
        say the same (the job is scraped and down): this one is for a job renamed, a
        target dropped by service discovery, a scrape config removed.
      |||,
      expr: |||
        absent(mongosync_exporter_build_info)
        unless on ()
        (up{%(mongosyncExporterSelector)s} == 0)
      ||| % config,
      'for': '10m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Prometheus has no series of mongosync_exporter.',
        description: 'No mongosync_exporter_build_info series has reached Prometheus for 10 minutes: no exporter is scraped under any job name, so no migration, verifier or heartbeat alert can fire.',
      },
    },
    {
      alert: 'MongosyncExporterCollectorFailed',
      comment:: 'Knob: 10m of failed scrapes of one scraper.',
      expr: 'mongosync_exporter_collector_success == 0',
      'for': '10m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A scraper of mongosync_exporter does not finish within the scrape deadline.',
        description: 'The {{ $labels.collector }} scraper of mongosync_exporter {{ $labels.instance }} has not finished within the scrape deadline for 10 minutes; its series are partial or missing.',
      },
    },
    {
      alert: 'MongosyncExporterConfigReloadFailed',
      comment:: 'Knob: 5m with a refused configuration.',
      expr: 'mongosync_exporter_config_last_reload_successful == 0',
      'for': '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'mongosync_exporter refused its configuration file.',
        description: 'mongosync_exporter {{ $labels.instance }} refused its configuration file at the last reload and still runs the previous one.',
      },
    },
  ],
}
