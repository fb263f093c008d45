// The dashboards. A panel whose description names an alert of this mixin links to the
// alert's runbook section (_config.runbookURLPattern), after the panel's own links.
{
  local config = $._config,
  local alerts = std.set([rule.alert for group in $.prometheusAlerts.groups for rule in group.rules]),

  // Where text first names word as a word, not inside a longer name; -1 if nowhere.
  // (std.split runs natively: std.findSubstr would cost seconds over every description.)
  local mention(text, word) =
    local letter(c) = std.member('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_', c);
    local parts = std.split(text, word);
    local last = std.length(parts) - 1;
    local at = [
      std.foldl(function(n, part) n + std.length(part) + std.length(word), parts[0:k], 0) + std.length(parts[k])
      for k in std.range(0, last - 1)
      if (if parts[k] == '' then k == 0 else !letter(parts[k][std.length(parts[k]) - 1]))
         && (if parts[k + 1] == '' then k + 1 == last else !letter(parts[k + 1][0]))
    ];
    if at == [] then -1 else at[0],

  local withRunbooks(panel) =
    panel + (
      if std.objectHas(panel, 'description') then {
        local named = [[mention(panel.description, alert), alert] for alert in alerts],
        // In the order the description names them.
        links+: [
          { title: 'Runbook: ' + m[1], url: config.runbookURLPattern % std.asciiLower(m[1]), targetBlank: true }
          for m in std.sort([m for m in named if m[0] >= 0], function(m) m[0])
        ],
      } else {}
    ) + (
      if std.objectHas(panel, 'panels') then { panels: [withRunbooks(p) for p in panel.panels] } else {}
    ),

  local dashboard(d) = d { panels: [withRunbooks(p) for p in d.panels] },

  grafanaDashboards+:: {
    'mongo-migration-overview.json': dashboard((import 'overview.libsonnet')(config)),
    'mongo-migration-verification.json': dashboard((import 'verification.libsonnet')(config)),
    'mongo-oplog-capture.json': dashboard((import 'capture.libsonnet')(config)),
  },
}
