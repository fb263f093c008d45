// The mongo-migration mixin: alerting rules (prometheusAlerts), recording rules
// (prometheusRules) and Grafana dashboards (grafanaDashboards) for mongosync_exporter and
// oplog_collector, configured by _config (config.libsonnet).
(import 'config.libsonnet')
+ (import 'alerts/alerts.libsonnet')
+ (import 'rules/rules.libsonnet')
+ (import 'dashboards/dashboards.libsonnet')
