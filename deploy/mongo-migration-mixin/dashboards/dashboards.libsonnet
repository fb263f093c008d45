{
  grafanaDashboards+:: {
    'mongo-migration-overview.json': (import 'overview.libsonnet')($._config),
    'mongo-migration-verification.json': (import 'verification.libsonnet')($._config),
    'mongo-oplog-capture.json': (import 'capture.libsonnet')($._config),
  },
}
