// PromQL helpers bound to the mixin's _config: (import 'promql.libsonnet')(config).
function(config) {
  // clustered(expr): expr with the cluster label first in every `by (...)` and `on (...)`
  // list when showMultiCluster is set, so that the rules and the dashboards' aggregations
  // keep clusters apart where one Prometheus (or a Thanos or Mimir ruler) sees several.
  // `on ()` stays empty: it joins on nothing. The sources write `by (` and `on (` with one
  // space; the mixin's tests check that every grouping of a clustered render has the label.
  clustered(expr)::
    if !config.showMultiCluster then expr
    else
      local ident(c) = std.member('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:', c);
      // The text between one ' (' and the next; a grouping list opens where the text
      // before ends with the keyword `by` or `on` and the list is not empty.
      local parts = std.split(expr, ' (');
      local opensList(before, after) =
        local n = std.length(before);
        n >= 2 && std.member(['by', 'on'], before[n - 2:n]) && (n == 2 || !ident(before[n - 3]))
        && after != '' && after[0] != ')';
      parts[0] + std.join('', [
        ' (' + (if opensList(parts[k - 1], parts[k]) then config.clusterLabel + ', ' else '') + parts[k]
        for k in std.range(1, std.length(parts) - 1)
      ]),

  // human(seconds): a duration in words for descriptions, in the largest unit that divides
  // it: 86400 is 1 day, 1800 is 30 minutes, 90 is 90 s.
  human(seconds)::
    local units = [['day', 86400], ['hour', 3600], ['minute', 60]];
    local fits = [u for u in units if seconds % u[1] == 0];
    if seconds == 0 || fits == [] then '%d s' % seconds
    else
      local n = seconds / fits[0][1];
      '%d %s%s' % [n, fits[0][0], if n == 1 then '' else 's'],

  // dur(seconds): a duration as Prometheus writes it, in the largest unit that divides it:
  // 86400 is 1d, 1800 is 30m, 90 is 90s.
  dur(seconds)::
    local units = [['d', 86400], ['h', 3600], ['m', 60]];
    local fits = [u for u in units if seconds % u[1] == 0];
    if seconds == 0 then '0s'
    else if fits == [] then '%ds' % seconds
    else '%d%s' % [seconds / fits[0][1], fits[0][0]],
}
