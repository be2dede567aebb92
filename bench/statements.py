#!/usr/bin/python3
"""Turn the statements ducha sent for one request of each kind into pgbench scripts.

    bench/statements.py EVENTS OUTDIR NAME=LO:HI:ID:FIRST:END ...

EVENTS is what bench/pgproxy.py wrote while a one-thread ducha behind it answered requests:
the messages of its connection to PostgreSQL. Lines FIRST to END - 1 are the request of workload
NAME (bench/run counts the lines before and after it), an earlier request of the same kind
having prepared what the server prepares once per connection. Each statement is named by how it
was sent:

    prepared  Parse with a name (once per connection, before), then Bind and Execute
    unnamed   Parse of the unnamed statement with Bind and Execute: planned for its values each time
    simple    Query (the simple protocol)

and the statements between two Syncs went to the server together, in one round trip.

For each NAME this writes OUTDIR/NAME.pgbench, a script for pgbench -M prepared:

  - a parameter whose value is ID becomes :id, with \\set id random(LO, HI);
  - a NULL parameter becomes the literal NULL (pgbench cannot send a NULL);
  - any other parameter becomes a variable :pK_N whose value (the one captured) bench/run
    passes with -D;
  - the statements of one pipeline (more than one between two Syncs, or a simple-protocol
    message of several statements) become a \\startpipeline ... \\endpipeline: one round
    trip in pgbench too;

and OUTDIR/NAME.json: {"defines": ["pK_N=value", ...], "custom_plans": true when ducha sent a
statement that reads tables unprepared, with parameters (bench/run then runs the script with
plan_cache_mode = force_custom_plan, so that it is planned for its values each time as the
server's is), "statements": [{"how", "pipeline", "sql", "params"}]}. Exits 1 when a workload's
statements are missing.
"""
import json
import os
import re
import sys


def split_simple(sql):
    """Statements of a simple-protocol message, split at semicolons outside quotes."""
    parts, cur, quote = [], [], None
    for ch in sql:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == ';':
            parts.append(''.join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append(''.join(cur).strip())
    return [p for p in parts if p]


def read_events(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def statements_of(events, first, end):
    """The statements of events[first:end], each with the pipeline (group) it went in."""
    names = {}  # (conn, statement name) -> sql, from every Parse before end
    for e in events[:first]:
        if e['type'] == 'parse':
            names[(e['conn'], e['name'])] = e['sql']
    out, group, bound = [], 0, None
    for e in events[first:end]:
        t = e['type']
        if t == 'error':
            sys.exit('bench/statements.py: the proxy could not read a message: %s' % e['error'])
        if t == 'parse':
            names[(e['conn'], e['name'])] = e['sql']
        elif t == 'bind':
            key = (e['conn'], e['name'])
            if key not in names:
                sys.exit('bench/statements.py: Bind of a statement never parsed: %r' % (e['name'],))
            bound = {'how': 'prepared' if e['name'] else 'unnamed', 'sql': names[key],
                     'params': e['params']}
        elif t == 'execute':
            if bound is None:
                sys.exit('bench/statements.py: Execute without Bind')
            bound['pipeline'] = group
            # the ping of a connection that was idle for a second (src/db.c) is not the request's
            if not (bound['sql'] == 'SELECT 1' and not bound['params']):
                out.append(bound)
            bound = None
        elif t == 'sync':
            group += 1
        elif t == 'query':
            group += 1
            out.append({'how': 'simple', 'sql': e['sql'], 'params': [], 'pipeline': group})
            group += 1
    return out


PARAM = re.compile(r'\$(\d+)\b')
PGBENCH_VAR = re.compile(r'(?<!:):[A-Za-z_]')


def script(name, statements, lo, hi, ident):
    lines = ['-- %s: the statements ducha sends for one request (captured by bench/pgproxy.py)' % name,
             '\\set id random(%d, %d)' % (lo, hi)]
    defines = []
    groups = []
    for st in statements:
        if groups and groups[-1][0] == st['pipeline']:
            groups[-1][1].append(st)
        else:
            groups.append((st['pipeline'], [st]))
    for _, members in groups:
        body = []
        for st in members:
            k = statements.index(st) + 1
            if PGBENCH_VAR.search(PARAM.sub('', st['sql'])):
                sys.exit('bench/statements.py: %s: a statement holds ":name", which pgbench would read as a '
                         'variable: %s' % (name, st['sql'][:120]))
            if st['how'] == 'simple':
                body += [p + ';' for p in split_simple(st['sql'])]
                continue

            def repl(m, k=k, st=st):
                n = int(m.group(1))
                if n > len(st['params']):
                    sys.exit('bench/statements.py: %s: no value captured for $%d' % (name, n))
                v = st['params'][n - 1]
                if v is None:
                    return 'NULL'
                if isinstance(v, dict):
                    sys.exit('bench/statements.py: %s: a binary parameter' % name)
                if v == str(ident):
                    return ':id'
                var = 'p%d_%d' % (k, n)
                if not any(d.startswith(var + '=') for d in defines):
                    defines.append('%s=%s' % (var, v))
                return ':' + var
            body.append(PARAM.sub(repl, st['sql']) + ';')
        if len(body) > 1:
            lines += ['\\startpipeline'] + body + ['\\endpipeline']
        else:
            lines += body
    return '\n'.join(lines) + '\n', defines


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    events = read_events(sys.argv[1])
    outdir = sys.argv[2]
    failed = False
    for spec in sys.argv[3:]:
        name, rng = spec.split('=', 1)
        lo, hi, ident, first, end = (int(x) for x in rng.split(':'))
        statements = statements_of(events, first, end)
        if not statements:
            print('bench/statements.py: nothing captured for %s' % name, file=sys.stderr)
            failed = True
            continue
        text, defines = script(name, statements, lo, hi, ident)
        if ':id' not in text and lo != hi:
            print('bench/statements.py: %s: no parameter had the value %d' % (name, ident), file=sys.stderr)
            failed = True
        with open(os.path.join(outdir, name + '.pgbench'), 'w', encoding='utf-8') as f:
            f.write(text)
        custom = any(s['how'] == 'unnamed' and s['params'] and re.search(r'\bFROM\b', s['sql'], re.I)
                     for s in statements)
        with open(os.path.join(outdir, name + '.json'), 'w', encoding='utf-8') as f:
            json.dump({'defines': defines, 'custom_plans': custom, 'statements': statements}, f,
                      ensure_ascii=False, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
