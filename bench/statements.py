#!/usr/bin/python3
"""Turn the statements ducha sent for one request of each kind into pgbench scripts.

    bench/statements.py POSTGRESQL_LOG OUTDIR NAME=LO:HI:ID ...

bench/run sets log_min_duration_statement = 0 and log_line_prefix = '%m [%p] %a|' on its
throwaway cluster, and for each workload NAME sends `SELECT 'bench-capture-begin:NAME'` from
psql, one request (with id ID), and `SELECT 'bench-capture-end:NAME'`. Between the two markers,
the lines of the connections whose application_name is ducha are that request's statements,
in order, each with how it was sent:

    execute sN: ...        a statement ducha prepared once per connection (db_exec, db_row)
    execute <unnamed>: ... sent with PQexecParams, planned for its values each time (db_query)
    statement: ...         the simple protocol (BEGIN and the caller's settings, in one message)

For each NAME this writes OUTDIR/NAME.pgbench, a script for pgbench -M prepared:

  - a parameter whose value is ID becomes :id, with \\set id random(LO, HI);
  - a NULL parameter becomes the literal NULL (pgbench cannot send a NULL);
  - any other parameter becomes a variable :pK_N whose value (the one captured) bench/run
    passes with -D;
  - a simple-protocol message of several statements (one round trip in ducha) becomes a
    \\startpipeline ... \\endpipeline of its statements: one round trip in pgbench too;

and OUTDIR/NAME.json: {"defines": ["pK_N=value", ...], "custom_plans": true when ducha sent a
statement with parameters unnamed (bench/run then runs the script with
plan_cache_mode = force_custom_plan, so that it is planned for its values each time, as the
server's is), "statements": [{"how", "sql", "params"}]}. Exits 1 when a workload's markers or
statements are missing.
"""
import json
import os
import re
import sys

LINE = re.compile(r'^\S+ \S+ \S+ \[(\d+)\] ([^|]*)\|(\w+):\s+(.*)$')
DURATION = re.compile(r'^duration: [0-9.]+ ms\s+(execute ([^:]+)|statement): (.*)$', re.S)
MARKER = re.compile(r"bench-capture-(begin|end):([A-Za-z0-9_]+)")


def parse_params(text):
    """'$1 = '5', $2 = NULL' -> {1: '5', 2: None}"""
    out, i, n = {}, 0, len(text)
    while i < n:
        m = re.compile(r'\s*,?\s*\$(\d+) = ').match(text, i)
        if not m:
            break
        k, i = int(m.group(1)), m.end()
        if text.startswith('NULL', i):
            out[k] = None
            i += 4
            continue
        if text[i] != "'":
            sys.exit('bench/statements.py: cannot read the parameters: %r' % text[i:i + 40])
        i += 1
        val = []
        while True:
            j = text.index("'", i)
            val.append(text[i:j])
            if text.startswith("''", j):
                val.append("'")
                i = j + 2
                continue
            i = j + 1
            break
        out[k] = ''.join(val)
    return out


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


def read_log(path):
    """[(pid, app, level, message)], continuation lines joined to their entry"""
    entries = []
    with open(path, encoding='utf-8', errors='replace') as f:
        for raw in f:
            raw = raw.rstrip('\n')
            m = LINE.match(raw)
            if m:
                entries.append([m.group(1), m.group(2), m.group(3), m.group(4)])
            elif entries and raw.startswith('\t'):
                entries[-1][3] += '\n' + raw[1:]
    return entries


def capture(entries):
    """{name: [statement, ...]} between the markers"""
    found, current = {}, None
    for i, (pid, app, level, msg) in enumerate(entries):
        mk = MARKER.search(msg) if app != 'ducha' else None
        if mk:
            current = mk.group(2) if mk.group(1) == 'begin' else None
            if current:
                found[current] = []
            continue
        if current is None or app != 'ducha' or level != 'LOG':
            continue
        d = DURATION.match(msg)
        if not d:
            continue
        how = 'simple' if d.group(1) == 'statement' else (
            'unnamed' if d.group(2) == '<unnamed>' else 'prepared')
        params = {}
        nxt = entries[i + 1] if i + 1 < len(entries) else None
        if nxt and nxt[0] == pid and nxt[2] == 'DETAIL' and nxt[3].startswith('parameters: '):
            params = parse_params(nxt[3][len('parameters: '):])
        found[current].append({'how': how, 'sql': d.group(3), 'params': params})
    return found


PARAM = re.compile(r'\$(\d+)\b')
PGBENCH_VAR = re.compile(r'(?<!:):[A-Za-z_]')


def script(name, statements, lo, hi, ident):
    lines = ['-- %s: the statements ducha sends for one request, captured from its PostgreSQL log' % name,
             '\\set id random(%d, %d)' % (lo, hi)]
    defines = []
    for k, st in enumerate(statements, 1):
        if PGBENCH_VAR.search(PARAM.sub('', st['sql'])):
            sys.exit('bench/statements.py: %s: a statement holds ":name", which pgbench would read as a '
                     'variable: %s' % (name, st['sql'][:120]))
        if st['how'] == 'simple':
            parts = split_simple(st['sql'])
            if len(parts) > 1:
                lines.append('\\startpipeline')
                lines += [p + ';' for p in parts]
                lines.append('\\endpipeline')
            else:
                lines.append(parts[0] + ';')
            continue

        def repl(m, k=k, st=st):
            n = int(m.group(1))
            if n not in st['params']:
                sys.exit('bench/statements.py: %s: no value captured for $%d' % (name, n))
            v = st['params'][n]
            if v is None:
                return 'NULL'
            if v == str(ident):
                return ':id'
            var = 'p%d_%d' % (k, n)
            if not any(d.startswith(var + '=') for d in defines):
                defines.append('%s=%s' % (var, v))
            return ':' + var
        lines.append(PARAM.sub(repl, st['sql']) + ';')
    return '\n'.join(lines) + '\n', defines


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    entries = read_log(sys.argv[1])
    outdir = sys.argv[2]
    found = capture(entries)
    failed = False
    for spec in sys.argv[3:]:
        name, rng = spec.split('=', 1)
        lo, hi, ident = (int(x) for x in rng.split(':'))
        statements = found.get(name)
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
        custom = any(s['how'] == 'unnamed' and s['params'] for s in statements)
        with open(os.path.join(outdir, name + '.json'), 'w', encoding='utf-8') as f:
            json.dump({'defines': defines, 'custom_plans': custom, 'statements': statements}, f,
                      ensure_ascii=False, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
