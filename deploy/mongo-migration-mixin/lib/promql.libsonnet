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
      // The positions of the '(' that open a non-empty grouping list.
      local opens = [
        i + 1
        for i in std.findSubstr(' (', expr)
        if i >= 2
           && std.member(['by', 'on'], expr[i - 2:i])
           && (i == 2 || !ident(expr[i - 3]))
           && i + 2 < std.length(expr) && expr[i + 2] != ')'
      ];
      local cuts = [-1] + opens;
      std.join(config.clusterLabel + ', ', [
        expr[cuts[k] + 1:(if k + 1 < std.length(cuts) then cuts[k + 1] + 1 else std.length(expr))]
        for k in std.range(0, std.length(cuts) - 1)
      ]),

  // dur(seconds): a duration as Prometheus writes it, in the largest unit that divides it:
  // 86400 is 1d, 1800 is 30m, 90 is 90s.
  dur(seconds)::
    local units = [['d', 86400], ['h', 3600], ['m', 60]];
    local fits = [u for u in units if seconds % u[1] == 0];
    if seconds == 0 then '0s'
    else if fits == [] then '%ds' % seconds
    else '%d%s' % [seconds / fits[0][1], fits[0][0]],
}
