// How the repository writes what the mixin renders (render.jsonnet): dashboards as JSON with
// sorted keys and two-space indentation, rule files as YAML that keeps each group's and each
// rule's `comment::` as a YAML comment. A vendoring user needs neither: std.manifestJsonEx and
// std.manifestYamlDoc serve the same data.
{
  // json(value): JSON, keys sorted, indented by two spaces, `[]` and `{}` when empty, with a
  // final newline.
  json(value)::
    local render(v, indent) =
      local inner = indent + '  ';
      local type = std.type(v);
      if type == 'object' then
        local keys = std.objectFields(v);
        if std.length(keys) == 0 then '{}'
        else '{\n' + std.join(',\n', [inner + std.escapeStringJson(k) + ': ' + render(v[k], inner) for k in keys]) + '\n' + indent + '}'
      else if type == 'array' then
        if std.length(v) == 0 then '[]'
        else '[\n' + std.join(',\n', [inner + render(x, inner) for x in v]) + '\n' + indent + ']'
      else if type == 'string' then std.escapeStringJson(v)
      else std.manifestJson(v);  // numbers (shortest form), booleans, null
    render(value, '') + '\n',

  // ruleFile(header, file): a Prometheus rule file ({groups: [...]}) as YAML, the header and
  // each group's and rule's hidden `comment` field as comments, a blank line between rules.
  ruleFile(header, file)::
    local comment(text, indent) =
      std.join('', [indent + (if line == '' then '#' else '# ' + line) + '\n' for line in std.split(std.rstripChars(text, '\n'), '\n')]);
    local commentOf(o, indent) = if std.objectHasAll(o, 'comment') then comment(o.comment, indent) else '';
    local rule(r) = mapping(r, ['record', 'alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'], '      - ', '        ');
    local group(g) =
      commentOf(g, '  ')
      + mapping(g, ['name', 'interval', 'limit'], '  - ', '    ')
      + '    rules:\n'
      + std.join('\n', [commentOf(r, '      ') + rule(r) for r in g.rules]);
    comment(header, '') + 'groups:\n' + std.join('\n', [group(g) for g in file.groups]),

  // mapping(o, order, first, indent): the fields of o (those of order first, in that order,
  // then the rest sorted; `rules` is left to the caller), one per line; the first line
  // starts with `first` (a list item's dash), the others with indent.
  local mapping(o, order, first, indent) =
    local present = [k for k in order if std.objectHas(o, k)];
    local keys = present + std.sort([k for k in std.objectFields(o) if !std.member(order, k) && k != 'rules']);
    std.join('', [
      (if i == 0 then first else indent) + field(keys[i], o[keys[i]], indent)
      for i in std.range(0, std.length(keys) - 1)
    ]),

  local field(key, value, indent) =
    if std.type(value) == 'object' then
      key + ':\n' + mapping(value, ['summary', 'description', 'runbook_url'], indent + '  ', indent + '  ')
    else key + ': ' + scalar(value, indent),

  // A string is written plain when YAML reads it back as the same string, in single quotes
  // when it is one line that could be read otherwise, and as a literal block (|) when it has
  // several lines.
  local scalar(v, indent) =
    if std.type(v) != 'string' then std.manifestJson(v) + '\n'
    else if std.member(v, '\n') then block(v, indent)
    else if plain(v) then v + '\n'
    else "'" + std.strReplace(v, "'", "''") + "'\n",

  local block(s, indent) =
    local body = std.rstripChars(s, '\n');
    local trailing = std.length(s) - std.length(body);
    assert trailing <= 1 : 'a multi-line string ends with more than one newline: %s' % s;
    assert !std.startsWith(body, ' ') : 'a multi-line string starts with a space: %s' % s;
    (if trailing == 1 then '|' else '|-') + '\n'
    + std.join('', [(if line == '' then '' else indent + '  ' + line) + '\n' for line in std.split(body, '\n')]),

  local plain(s) =
    local first = s[0];
    local last = s[std.length(s) - 1];
    local numberLike = std.all([std.member('0123456789+-.eE_:', c) for c in std.stringChars(s)]);
    s != ''
    && !std.member('-?:,[]{}#&*!|>\'"%@` \t', first)
    && last != ' ' && last != ':'
    && std.length(std.split(s, ': ')) == 1
    && std.length(std.split(s, ' #')) == 1
    && !std.member(s, '\t')
    && !numberLike
    && !std.member(['true', 'false', 'yes', 'no', 'on', 'off', 'null', 'y', 'n'], std.asciiLower(s))
    && !std.member(['0x', '0o', '0b'], std.asciiLower(std.substr(s, 0, 2))),
}
