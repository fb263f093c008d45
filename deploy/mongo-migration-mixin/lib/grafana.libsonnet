// Plain-jsonnet builders of the dashboards' parts. Every panel of one kind has one structure:
// a right-now panel (stat, gauge, bar gauge, table) runs instant queries and says "No data" in
// red when its source is gone; a time series runs range queries. Panels are placed on the
// 24-column grid by layout(): give a width and a height, not a position.
//
// (import 'grafana.libsonnet')(config) binds them to the mixin's _config: the cluster
// label, the thresholds, the runbook, the dashboards' tags.
function(config) {
  local g = self,
  local p = (import 'promql.libsonnet')(config),

  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // ---- queries -------------------------------------------------------------------------

  // The labels every query of an area filters on, after job and instance; each has its
  // dashboard variable of the same name.
  labels:: {
    migration: ['migration'],
    mongosync: ['migration', 'mongosync'],
    verifier: ['migration', 'verifier'],
    source: ['source_cluster'],
    heartbeat: ['source_cluster', 'metadata'],
  },

  // The cluster label's matcher, first in every selector of a multi-cluster render.
  local clusterMatchers = if config.showMultiCluster then ['%s=~"$cluster"' % config.clusterLabel] else [],

  // sel(metric, labels, extra): metric{job=~"$job",instance=~"$instance",<label>=~"$<label>"...<extra>};
  // job and instance name the variables that filter those two labels.
  sel(metric, labels, extra='', job='job', instance='instance')::
    local matchers = clusterMatchers + ['job=~"$%s"' % job, 'instance=~"$%s"' % instance]
                     + ['%s=~"$%s"' % [l, l] for l in labels];
    '%s{%s%s}' % [metric, std.join(',', matchers), extra],

  // withClusterMatcher('label_values(<selector>, <label>)'): the query with the cluster
  // matcher first in its selector.
  local withClusterMatcher(query) =
    local inner = std.substr(query, std.length('label_values('), std.length(query));
    local brace = std.findSubstr('{', inner);
    local comma = std.findSubstr(',', inner);
    assert std.startsWith(query, 'label_values(') : 'a variable query is not label_values(...): ' + query;
    'label_values(' + (
      if brace != [] && brace[0] < comma[0] then
        std.substr(inner, 0, brace[0] + 1) + clusterMatchers[0]
        + (if inner[brace[0] + 1] == '}' then '' else ',') + std.substr(inner, brace[0] + 1, std.length(inner))
      else
        std.substr(inner, 0, comma[0]) + '{' + clusterMatchers[0] + '}' + std.substr(inner, comma[0], std.length(inner))
    ),

  // ---- targets -------------------------------------------------------------------------

  target(expr, legend, ref, instant, table=false):: {
    datasource: g.datasource,
    editorMode: 'code',
    expr: p.clustered(expr),
    legendFormat: legend,
    range: !instant,
    instant: instant,
    refId: ref,
  } + (if table then { format: 'table' } else {}),

  local ref(i) = std.char(std.codepoint('A') + i),

  // instant([[expr, legend], ...]): instant queries A, B, ...
  instant(pairs):: [g.target(pairs[i][0], pairs[i][1], ref(i), true) for i in std.range(0, std.length(pairs) - 1)],
  // ranged([[expr, legend], ...]): range queries A, B, ...
  ranged(pairs):: [g.target(pairs[i][0], pairs[i][1], ref(i), false) for i in std.range(0, std.length(pairs) - 1)],
  // tableTargets([expr, ...]): instant queries in table format, for tables and for stats
  // that show a label's value.
  tableTargets(exprs):: [g.target(exprs[i], '', ref(i), true, table=true) for i in std.range(0, std.length(exprs) - 1)],

  // ---- colours and mappings ------------------------------------------------------------

  noData:: { type: 'special', options: { match: 'null', result: { text: 'No data', color: 'red', index: 0 } } },

  // panel + needs(text): what a panel that needs configuration says without data, such as
  // 'No data: is api_url set?', in red on a right-now panel. Grafana shows the field's
  // noValue only where no mapping gives a text: the null mapping keeps its colour, not its
  // text.
  needs(text):: {
    fieldConfig+: {
      defaults+: {
        noValue: text,
        mappings: [
          if m == g.noData then { type: 'special', options: { match: 'null', result: { color: 'red', index: 0 } } } else m
          for m in super.mappings
        ],
      },
    },
  },

  // runbookURL(anchor): a section of the runbook, by the pattern of the alerts' runbook_url.
  runbookURL(anchor):: config.runbookURLPattern % anchor,

  // values([[value, text, colour], ...]): a value mapping, after the No data mapping.
  values(m):: {
    type: 'value',
    options: { [m[i][0]]: { text: m[i][1], color: m[i][2], index: i + 1 } for i in std.range(0, std.length(m) - 1) },
  },

  // steps([colour, null, colour, value, ...]): absolute thresholds.
  steps(pairs):: {
    mode: 'absolute',
    steps: [{ color: pairs[i], value: pairs[i + 1] } for i in std.range(0, std.length(pairs) - 1) if i % 2 == 0],
  },

  neutral:: g.steps(['text', null]),

  fixed(color):: { mode: 'fixed', fixedColor: color },

  override(name, props, matcher='byName'):: {
    matcher: { id: matcher, options: name },
    properties: [{ id: prop[0], value: prop[1] } for prop in props],
  },

  // Value mappings by meaning.
  yesNoGood:: [['0', 'No', 'red'], ['1', 'Yes', 'green']],
  yesNoNormal:: [['0', 'No', 'text'], ['1', 'Yes', 'green']],  // "No" is normal before the cutover
  up:: [['0', 'Down', 'red'], ['1', 'Up', 'green']],
  readable:: [['0', 'Unreadable', 'red'], ['1', 'Readable', 'green']],
  local same(v, color) = [v, v, color],
  mongosyncStates:: [
    same('INITIALIZING', 'blue'),
    same('IDLE', 'text'),
    same('RUNNING', 'green'),
    same('PAUSED', 'orange'),
    same('COMMITTING', 'purple'),
    same('COMMITTED', 'dark-green'),
    same('REVERSING', 'purple'),
    same('other', 'red'),
  ],
  mongosyncPhases:: [
    same('collection copy', 'blue'),
    same('change event application', 'green'),
    same('waiting for commit to complete', 'purple'),
    same('commit completed', 'dark-green'),
    same('other', 'red'),
  ],
  ceaStages:: [same('collection copy drain', 'blue'), same('steady state', 'green'), same('other', 'red')],
  embeddedPhases:: [
    same('not started', 'text'),
    same('initial hashing', 'blue'),
    same('stream hashing', 'green'),
    same('other', 'red'),
  ],
  verifierPhases:: [
    ['not_started', 'not started', 'text'],
    same('initializing', 'blue'),
    ['check', 'initial check', 'blue'],
    ['recheck', 'rechecking', 'blue'],
    same('idle', 'text'),
    same('other', 'red'),
  ],
  captureStates:: [
    same('starting', 'orange'),
    same('running', 'green'),
    ['retrying_connection', 'retrying connection', 'orange'],
    same('error', 'red'),
    ['error_resume_token_lost', 'resume token lost', 'red'],
    same('stopping', 'orange'),
    same('stopped', 'orange'),
    ['resetting_oplog_store', 'resetting', 'orange'],
    same('standby', 'blue'),
    ['store_unavailable', 'store unavailable', 'red'],
    ['foreign_writer', 'foreign writer', 'red'],
  ],
  heartbeatStatuses:: g.captureStates + [
    ['pending_registration', 'pending registration', 'blue'],
    ['error_max_retries_reached', 'max retries reached', 'red'],
    ['error_stopped_unexpectedly', 'stopped unexpectedly', 'red'],
    ['stopped_orphaned', 'stopped orphaned', 'orange'],
    same('other', 'red'),
  ],
  blockers:: [
    ['unreadable', 'Instance or verifier unreadable', 'red'],
    ['cannot_commit', 'mongosync cannot commit yet', 'red'],
    ['lag_high', 'Lag above %d s' % config.cutoverMaxLagSeconds, 'red'],
    ['warnings', 'mongosync reports warnings', 'red'],
    ['index_builds_pending', 'Index builds pending', 'red'],
    ['embedded_verifier_not_ready', 'Embedded verifier not ready', 'red'],
    ['verifier_mismatches', 'Verifier found mismatches', 'red'],
    ['verifier_not_done', 'Verifier not done', 'red'],
  ],

  // ---- panels --------------------------------------------------------------------------

  fieldDefaults(unit, thresholds, mappings, colorMode='thresholds', extra={}):: {
    unit: unit,
    color: { mode: colorMode },
    thresholds: thresholds,
    mappings: mappings,
  } + extra,

  local panel(type, title, desc, w, h) = {
    w:: w,
    h:: h,
    type: type,
    title: title,
    description: desc,
    datasource: g.datasource,
  },

  local reduceLast(fields='', values=false) = { calcs: ['lastNotNull'], fields: fields, values: values },

  // A right-now figure: instant queries, No data in red. field: show that label's value
  // (with tableTargets) instead of the number.
  stat(title,
       desc,
       unit,
       targets,
       w,
       h=4,
       thresholds=null,
       mapping=null,
       text='auto',
       color='background',
       field=null,
       display=null,
       overrides=[],
       links=[],
       noValue=null)::
    panel('stat', title, desc, w, h) {
      fieldConfig: {
        defaults: g.fieldDefaults(
          unit,
          if thresholds == null then g.steps(['green', null]) else thresholds,
          [g.noData] + (if mapping == null then [] else [g.values(mapping)]),
        ) + (if display == null then {} else { displayName: display }),
        overrides: overrides,
      },
      targets: targets,
      options: {
        reduceOptions: reduceLast(if field == null then '' else '/^%s$/' % field, field != null),
        orientation: 'auto',
        textMode: text,
        colorMode: color,
        graphMode: 'none',
        justifyMode: 'auto',
        wideLayout: true,
      },
      links: links,
    } + (if noValue == null then {} else g.needs(noValue)),

  gauge(title, desc, unit, targets, w, h=4, thresholds=null, min=0, max=1)::
    panel('gauge', title, desc, w, h) {
      fieldConfig: {
        defaults: g.fieldDefaults(
          unit,
          if thresholds == null then g.steps(['blue', null, 'green', 1]) else thresholds,
          [g.noData],
          extra={ min: min, max: max },
        ),
        overrides: [],
      },
      targets: targets,
      options: {
        reduceOptions: reduceLast(),
        orientation: 'auto',
        showThresholdLabels: false,
        showThresholdMarkers: true,
      },
      links: [],
    },

  barGauge(title, desc, unit, targets, w, h=8, thresholds=null, overrides=[])::
    panel('bargauge', title, desc, w, h) {
      fieldConfig: {
        defaults: g.fieldDefaults(unit, if thresholds == null then g.steps(['blue', null]) else thresholds, [g.noData]),
        overrides: overrides,
      },
      targets: targets,
      options: {
        reduceOptions: reduceLast(),
        orientation: 'horizontal',
        displayMode: 'basic',
        showUnfilled: true,
        valueMode: 'color',
      },
      links: [],
    },

  // A right-now table: instant queries in table format, merged on their labels. keys: the
  // label columns first; cols: [[source, name, unit, thresholds, mapping], ...], each column
  // coloured by meaning, where source is a query's value ('#B') or a label; hide: the
  // queries read for a label only ('BC').
  table(title, desc, targets, keys, cols, w, h=8, sort=null, links=[], hide='')::
    local multi = std.length(targets) > 1;
    local fieldOf(src) = if std.startsWith(src, '#') then (if multi then 'Value #' + std.substr(src, 1, 1) else 'Value') else src;
    local overrides = [
      g.override(c[1], [
                         ['unit', c[2]],
                         ['custom.cellOptions', { type: 'color-background' }],
                       ] + (if c[3] != null then [['thresholds', c[3]]] else [])
                       + (if c[4] != null then [['mappings', [g.values(c[4])]]] else []))
      for c in cols
    ];
    local exclude = { Time: true, __name__: true, job: true, instance: true }
                    + { [if multi then 'Value #' + r else 'Value']: true for r in std.stringChars(hide) };
    local order = { [keys[i]]: i for i in std.range(0, std.length(keys) - 1) }
                  + { [fieldOf(cols[i][0])]: std.length(keys) + i for i in std.range(0, std.length(cols) - 1) };
    local rename = { [fieldOf(c[0])]: c[1] for c in cols };
    panel('table', title, desc, w, h) {
      fieldConfig: {
        defaults: g.fieldDefaults('none', g.neutral, [g.noData], extra={
          custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: false },
        }),
        overrides: overrides,
      },
      targets: targets,
      options: {
        showHeader: true,
        cellHeight: 'sm',
        sortBy: if sort == null then [] else [{ displayName: sort[0], desc: sort[1] }],
        footer: { show: false, reducer: ['sum'], fields: '', countRows: false },
      },
      transformations: (if multi then [{ id: 'merge', options: {} }] else []) + [
        { id: 'organize', options: { excludeByName: exclude, indexByName: order, renameByName: rename } },
      ],
      links: links,
    },

  timeseries(title,
             desc,
             unit,
             targets,
             w,
             h=8,
             thresholds=null,
             lines=false,
             stack=false,
             fill=0,
             min=null,
             max=null,
             overrides=[],
             noValue=null)::
    panel('timeseries', title, desc, w, h) {
      fieldConfig: {
        defaults: g.fieldDefaults(
          unit,
          if thresholds == null then g.steps(['green', null]) else thresholds,
          [],
          colorMode='palette-classic',
          extra={
            custom: {
              drawStyle: 'line',
              lineWidth: 1,
              fillOpacity: fill,
              showPoints: 'never',
              spanNulls: false,
              axisPlacement: 'auto',
              stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
              thresholdsStyle: { mode: if lines then 'dashed' else 'off' },
            },
          } + (if min == null then {} else { min: min }) + (if max == null then {} else { max: max }),
        ),
        overrides: overrides,
      },
      targets: targets,
      options: {
        legend: { calcs: ['lastNotNull', 'max'], displayMode: 'table', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
      links: [],
    } + (if noValue == null then {} else g.needs(noValue)),

  row(title, panels, repeat=null, collapsed=false):: {
    title: title,
    panels: panels,
    repeat: repeat,
    collapsed: collapsed,
  },

  // layout(rows): the rows and their panels on the 24-column grid, numbered from 1 in order.
  // A panel that does not fit on the line starts the next one; a collapsed row holds its
  // panels and takes one line.
  layout(rows)::
    local place(panels, y0, id0) = std.foldl(
      function(acc, p)
        local wrap = acc.x + p.w > 24;
        local x = if wrap then 0 else acc.x;
        local y = if wrap then acc.y + acc.rowh else acc.y;
        local rowh = if wrap then 0 else acc.rowh;
        {
          x: x + p.w,
          y: y,
          rowh: std.max(rowh, p.h),
          id: acc.id + 1,
          placed: acc.placed + [p { id: acc.id + 1, gridPos: { h: p.h, w: p.w, x: x, y: y } }],
        },
      panels,
      { x: 0, y: y0, rowh: 0, id: id0, placed: [] },
    );
    std.foldl(
      function(acc, r)
        local rowID = acc.id + 1;
        local placed = place(r.panels, acc.y + 1, rowID);
        local row = {
          type: 'row',
          title: r.title,
          collapsed: r.collapsed,
          id: rowID,
          gridPos: { h: 1, w: 24, x: 0, y: acc.y },
          panels: if r.collapsed then placed.placed else [],
        } + (if r.repeat != null then { repeat: r.repeat } else {});
        {
          out: acc.out + [row] + (if r.collapsed then [] else placed.placed),
          y: if r.collapsed then acc.y + 1 else placed.y + placed.rowh,
          id: placed.id,
        },
      rows,
      { out: [], y: 0, id: 0 },
    ).out,

  // ---- variables, links, annotations, dashboards ---------------------------------------

  // A variable of the values its query (label_values(<selector>, <label>)) finds, in a
  // multi-cluster render among the clusters selected. Variables of the job and instance
  // labels have no custom all value (allValue null): All is then the values the query
  // finds, so that `up{job=~"$job"}` selects the dashboard's own targets, not every target.
  variable(name, label, query, allValue='.*', inCluster=config.showMultiCluster)::
    local q = if inCluster then withClusterMatcher(query) else query;
    {
      name: name,
      label: label,
      type: 'query',
      datasource: g.datasource,
      definition: q,
      query: { qryType: 1, query: q, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
      current: { selected: true, text: ['All'], value: ['$__all'] },
      hide: 0,
      includeAll: true,
      allValue: allValue,
      multi: true,
      options: [],
      refresh: 2,
      regex: '',
      sort: 1,
      skipUrlSync: false,
    },

  // targetVariable: a variable of the job or instance label, without custom all value.
  targetVariable(name, label, query):: g.variable(name, label, query, allValue=null),

  datasourceVariable:: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    hide: 0,
    includeAll: false,
    multi: false,
    options: [],
    refresh: 1,
    regex: '',
    skipUrlSync: false,
  },

  // The link to the other dashboards of the mixin: those with its tags, with the time
  // range and every variable. Variables of one name mean the same on every dashboard, so
  // what a user picked carries over; a variable the target lacks is ignored.
  local tagLink = {
    title: 'MongoDB migration',
    type: 'dashboards',
    tags: config.dashboardTags,
    asDropdown: false,
    includeVars: true,
    keepTime: true,
    targetBlank: false,
    icon: 'external link',
    tooltip: '',
    url: '',
  },

  builtinAnnotation:: {
    builtIn: 1,
    datasource: { type: 'grafana', uid: '-- Grafana --' },
    enable: true,
    hide: true,
    iconColor: 'rgba(0, 211, 255, 1)',
    name: 'Annotations & Alerts',
    type: 'dashboard',
  },

  // An annotation at each change of a state-set's value.
  changeAnnotation(name, metric, label, labels, color, title)::
    local s = g.sel(metric, labels);
    {
      datasource: g.datasource,
      enable: true,
      hide: false,
      iconColor: color,
      name: name,
      expr: '%s == 1 unless %s offset 1m == 1' % [s, s],
      step: '1m',
      titleFormat: title,
      textFormat: '',
      tagKeys: label,
      useValueForTime: false,
    },

  // A dashboard: its tags after the mixin's (config.dashboardTags, by which the dashboards
  // link to each other), the data source variable first, then in a multi-cluster render a
  // cluster variable of the values of the cluster label on clusterSelector's series.
  dashboard(uid, title, desc, tags, variables, rows, annotations=[], clusterSelector=null):: {
    annotations: { list: [g.builtinAnnotation] + annotations },
    description: desc,
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [tagLink],
    liveNow: false,
    panels: g.layout(rows),
    refresh: config.dashboardRefresh,
    schemaVersion: 39,
    tags: config.dashboardTags + tags,
    templating: {
      list: [g.datasourceVariable]
            + (if config.showMultiCluster then [
                 g.variable('cluster', 'Cluster', 'label_values(%s, %s)' % [clusterSelector, config.clusterLabel], inCluster=false),
               ] else [])
            + variables,
    },
    time: { from: config.dashboardPeriod, to: 'now' },
    timepicker: {},
    timezone: config.dashboardTimezone,
    title: title,
    uid: uid,
    version: 1,
    weekStart: '',
  },

  uids:: {
    overview: 'mongo-migration-overview',
    verification: 'mongo-migration-verification',
    capture: 'mongo-oplog-capture',
  },

}
