#!/usr/bin/python3
"""The ducha binary: --help, configuration errors, migrate/seed idempotence, user and token
creation, signals."""

import glob
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, DATABASE_URL, DUCHA_BIN, DUCHA_SRC, Server, check, ctx, db, db_int, eq,  # noqa: E402
                     expect_status, free_port, main, make_user, run_cli, seed_data, skip, sql_str, tail, test)

VARIABLES = [("DATABASE_URL", None), ("DUCHA_LISTEN", "127.0.0.1:8080"), ("DUCHA_THREADS", "8"),
             ("DUCHA_MAX_CONNECTIONS", "4096"), ("DUCHA_IDLE_TIMEOUT", "30"), ("DUCHA_BODY_LIMIT", "1048576"),
             ("DUCHA_STATEMENT_TIMEOUT", "800"), ("DUCHA_CORS_ORIGINS", None), ("DUCHA_LOG_LEVEL", "info"),
             ("DUCHA_TIMEZONE", "Asia/Shanghai"), ("DUCHA_SEED_FILE", "data/inspection-form.json"),
             ("DUCHA_OPENAPI_FILE", "openapi.yaml"), ("DUCHA_PER_IP_CONNECTIONS", "64"),
             ("DUCHA_REQUEST_TIMEOUT", "10"), ("DUCHA_BODY_MIN_RATE", "1024"), ("DUCHA_MAX_STREAMS", "32"),
             ("DUCHA_SHUTDOWN_GRACE", "5"), ("DUCHA_DRAIN_TIMEOUT", "20"), ("DUCHA_PREPARED_STATEMENTS", "1"), ("DUCHA_REPORT_TIMEOUT", "10000"), ("DUCHA_TOKEN_CACHE_SECONDS", "5"),
             ("DUCHA_AUDIT_KEY_FILE", None), ("DUCHA_METRICS_LISTEN", "127.0.0.1:9464"),
             ("DUCHA_LOG_FORMAT", "auto")]


def serve_with(env, timeout=10):
    """Run `ducha serve` with extra env; returns (rc or None if still running, output)."""
    e = dict(os.environ)
    e["DUCHA_LISTEN"] = "127.0.0.1:%d" % free_port()
    e.setdefault("DUCHA_JOBS", "none")  # no background jobs in the shared database (test_worker.py runs them)
    e.setdefault("DUCHA_METRICS_LISTEN", "off")  # servers of other test files may run at the same time
    for k, v in env.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    with tempfile.TemporaryFile() as f:
        p = subprocess.Popen([DUCHA_BIN, "serve"], env=e, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=DUCHA_SRC)
        deadline = time.monotonic() + timeout
        while p.poll() is None and time.monotonic() < deadline:
            f.seek(0)
            if b"listening on" in f.read():
                break
            time.sleep(0.05)
        rc = p.poll()
        if rc is None:
            p.kill()
            p.wait()
        f.seek(0)
        return rc, f.read().decode("utf-8", "replace")


@test
def help_lists_every_variable_with_its_default():
    p = run_cli(["--help"], timeout=10)
    eq(p.returncode, 0, "--help exit status")
    text = p.stdout + p.stderr
    names = [v for v, _ in VARIABLES]
    for name, default in VARIABLES:
        m = re.search(r"(?<![A-Z_])%s(?![A-Z_])" % name, text)
        check(m, "--help does not mention %s" % name)
        if default is None:
            continue
        # the text from this variable to the next variable's name
        rest = text[m.end():]
        nxt = [rest.find(n) for n in names if n != name and rest.find(n) >= 0]
        seg = rest[:min(nxt)] if nxt else rest
        check(default in seg, "--help does not give %s's default %r near it: %r" % (name, default, seg[:200]))
    for sub in ("serve", "migrate", "seed", "user create", "token create"):
        check(sub in text, "--help does not mention %r" % sub)


@test
def version():
    p = run_cli(["--version"], timeout=10)
    eq(p.returncode, 0, "--version exit status")
    check((p.stdout + p.stderr).strip(), "--version printed nothing")


@test
def bad_configuration_exits_2_naming_every_bad_value():
    rc, out = serve_with({"DUCHA_THREADS": "abc", "DUCHA_BODY_LIMIT": "-1"})
    eq(rc, 2, "exit status (output: %r)" % out[-500:])
    for name in ("DUCHA_THREADS", "DUCHA_BODY_LIMIT"):
        check(name in out, "the message does not name %s: %r" % (name, out[-500:]))
    check("listening on" not in out, "it started listening anyway")


@test
def every_bad_variable_is_named_at_once():
    bad = {"DUCHA_THREADS": "-2", "DUCHA_MAX_CONNECTIONS": "many", "DUCHA_IDLE_TIMEOUT": "x",
           "DUCHA_BODY_LIMIT": "1MB", "DUCHA_STATEMENT_TIMEOUT": "-5", "DUCHA_LOG_LEVEL": "loud",
           "DUCHA_LISTEN": "nonsense", "DUCHA_PER_IP_CONNECTIONS": "-3", "DUCHA_TIMEZONE": "Mars/Olympus_Mons"}
    e = dict(bad)
    rc, out = serve_with(e)
    eq(rc, 2, "exit status (output: %r)" % out[-800:])
    missing = [k for k in bad if k not in out]
    check(not missing, "the message does not name %s: %r" % (missing, out[-800:]))


@test
def each_bad_variable_alone_exits_2():
    for k, v in (("DUCHA_LOG_LEVEL", "verbose"), ("DUCHA_LISTEN", "127.0.0.1:99999"), ("DUCHA_THREADS", "1.5"),
                 ("DUCHA_BODY_LIMIT", "12abc"), ("DUCHA_TIMEZONE", "Not/AZone")):
        rc, out = serve_with({k: v})
        eq(rc, 2, "%s=%r exit status (output: %r)" % (k, v, out[-300:]))
        check(k in out, "%s not named: %r" % (k, out[-300:]))


@test
def missing_database_url_exits_2():
    rc, out = serve_with({"DATABASE_URL": None})
    eq(rc, 2, "exit status without DATABASE_URL (output: %r)" % out[-300:])
    check("DATABASE_URL" in out, "not named: %r" % out[-300:])


@test
def unknown_subcommand_fails():
    p = run_cli(["frobnicate"], timeout=10)
    check(p.returncode != 0, "unknown subcommand exited 0")
    check(p.stderr.strip(), "no message on stderr")
    p = run_cli(["user", "create", "--username"], timeout=10)
    check(p.returncode != 0, "user create with a missing value exited 0")


@test
def migrate_twice_is_a_no_op():
    before = db_int("select count(*) from schema_migrations")
    check(before > 0, "schema_migrations is empty")
    files = glob.glob(os.path.join(DUCHA_SRC, "migrations", "*.sql"))
    if files:
        eq(before, len(files), "schema_migrations rows vs migrations/*.sql files")
    p = run_cli(["migrate"])
    eq(p.returncode, 0, "migrate exit status: %s" % tail(p.stderr))
    eq(db_int("select count(*) from schema_migrations"), before, "rows after a second migrate")


@test
def concurrent_migrate_and_seed_are_safe():
    procs = [subprocess.Popen([DUCHA_BIN, cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=DUCHA_SRC)
             for cmd in ("migrate", "migrate", "seed", "seed", "seed")]
    for p, cmd in zip(procs, ("migrate", "migrate", "seed", "seed", "seed")):
        out, err = p.communicate(timeout=60)
        eq(p.returncode, 0, "concurrent %s exit status: %s" % (cmd, tail(err.decode("utf-8", "replace"), 5)))
    _check_seed_counts()


def _check_seed_counts():
    names = [d["name"] for d in seed_data()["departments"]]
    arr = "array[%s]" % ",".join(sql_str(n) for n in names)
    eq(db_int("select count(*) from departments where parent_id is null and name = any(%s)" % arr), 22,
       "seed departments")
    eq(db_int("select count(distinct name) from departments where parent_id is null and name = any(%s)" % arr), 22)
    eq(db_int("select count(*) from checklists where code = 'default' and version = 1"), 1, "seed checklist")
    eq(db_int("select count(*) from tasks where checklist_id = (select id from checklists where code = 'default' "
              "and version = 1)"), 38, "seed tasks")


@test
def seed_twice_does_not_duplicate():
    _check_seed_counts()
    p = run_cli(["seed"])
    eq(p.returncode, 0, "seed exit status: %s" % tail(p.stderr))
    p = run_cli(["seed"])
    eq(p.returncode, 0, "seed exit status: %s" % tail(p.stderr))
    _check_seed_counts()


# Databases are made as the schema owner when the suite knows it (the service's role may not).
OWNER_URL = os.environ.get("DUCHA_MIGRATION_DATABASE_URL") or DATABASE_URL


def _other_db_url(name):
    if re.match(r"^postgres(ql)?://", OWNER_URL):
        u = urllib.parse.urlsplit(OWNER_URL)
        return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))
    return re.sub(r"dbname\s*=\s*\S+", "", OWNER_URL) + " dbname=" + name


def _with_database(name, create_sql, fn):
    try:
        db("drop database if exists %s" % name, url=OWNER_URL)
        db(create_sql, url=OWNER_URL)
    except Exception as exc:
        skip("cannot create a database: %s" % str(exc)[:200])
    try:
        fn(_other_db_url(name))
    finally:
        try:
            db("drop database if exists %s with (force)" % name, url=OWNER_URL)
        except Exception:
            pass


@test
def migrate_and_seed_a_fresh_database():
    name = "ducha_t_%s_fresh" % ctx.prefix

    def go(url):
        env = {"DATABASE_URL": url, "DUCHA_MIGRATION_DATABASE_URL": None}
        p = run_cli(["migrate"], env=env)
        eq(p.returncode, 0, "migrate on a fresh database: %s" % tail(p.stderr))
        p = run_cli(["seed"], env=env)
        eq(p.returncode, 0, "seed on a fresh database: %s" % tail(p.stderr))
        eq(db("select count(*) from departments", url=url), "22", "departments in a fresh database")
        eq(db("select count(*) from tasks", url=url), "38", "tasks in a fresh database")
        eq(db("select count(*) from checklists", url=url), "1")
    _with_database(name, "create database %s template template0 encoding 'UTF8' lc_collate 'C.UTF-8' "
                         "lc_ctype 'C.UTF-8'" % name, go)


@test
def migrate_refuses_a_database_with_another_collation():
    name = "ducha_t_%s_latin" % ctx.prefix

    def go(url):
        p = run_cli(["migrate"], env={"DATABASE_URL": url, "DUCHA_MIGRATION_DATABASE_URL": None})
        check(p.returncode != 0, "migrate accepted a database with collation C")
        check(p.stderr.strip(), "no message")
        check("collat" in p.stderr.lower() or "c.utf-8" in p.stderr.lower(),
              "the message does not mention the collation: %r" % tail(p.stderr, 3))
    _with_database(name, "create database %s template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'" % name, go)


@test
def migrate_without_database_fails_cleanly():
    p = run_cli(["migrate"], env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:%d/none?connect_timeout=2" % free_port()})
    check(p.returncode != 0, "migrate against no database exited 0")
    check(p.returncode not in (-11, -6, 134, 139), "migrate crashed: %d" % p.returncode)
    check(p.stderr.strip(), "no message")


@test
def users_and_tokens():
    user, token = make_user("viewer")
    check(re.match(r"^dch_[A-Za-z0-9_-]{43}$", token), "token %r" % token)
    p = run_cli(["token", "create", "--user", user])
    eq(p.returncode, 0)
    t2 = p.stdout.strip()
    check(t2 != token, "two tokens are equal")
    for table in db("select tablename from pg_tables where schemaname = 'public' and tablename like '%token%'").split():
        dump = db("select coalesce(string_agg(t::text, ' '), '') from %s t" % table)
        check(token not in dump and token[4:] not in dump, "the token is stored in clear text in %s" % table)
    p = run_cli(["user", "create", "--username", user, "--role", "viewer", "--password-stdin"], stdin="pw-secret-2")
    check(p.returncode != 0, "a duplicate username was accepted")
    p = run_cli(["user", "create", "--username", user + "x", "--role", "emperor", "--password-stdin"], stdin="pw-secret-2")
    check(p.returncode != 0, "role emperor was accepted")
    p = run_cli(["token", "create", "--user", "no_such_user_" + ctx.prefix])
    check(p.returncode != 0, "a token for an unknown user was created")
    eq(p.stdout.strip(), "", "stdout of a failed token create")


def _serve():
    return Server().start()


@test
def sigterm_during_serve_exits_0():
    _, token = make_user("admin")
    srv = _serve()
    r = srv.client(token).get(API + "/departments?limit=1")
    expect_status(r, 200)
    check("listening on http://127.0.0.1:%d" % srv.port in srv.output(),
          "no 'listening on http://127.0.0.1:%d' on stderr: %r" % (srv.port, tail(srv.output(), 5)))
    rc = srv.stop(signal.SIGTERM)
    eq(rc, 0, "exit status after SIGTERM; output:\n%s" % tail(srv.output(), 30))


@test
def sigint_during_serve_exits_0():
    srv = _serve()
    rc = srv.stop(signal.SIGINT)
    eq(rc, 0, "exit status after SIGINT; output:\n%s" % tail(srv.output(), 30))


@test
def sigterm_with_idle_keep_alive_connection_is_prompt():
    _, token = make_user("admin")
    srv = _serve()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", API + "/departments?limit=1", headers={"Authorization": "Bearer " + token})
    resp = conn.getresponse()
    resp.read()
    eq(resp.status, 200)
    # a second, half-sent request: the connection stays open
    raw = socket.create_connection(("127.0.0.1", srv.port))
    raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    rc = srv.stop(signal.SIGTERM, timeout=5)
    took = time.monotonic() - t0
    conn.close()
    raw.close()
    check(rc is not None, "still running %.1f s after SIGTERM with an idle keep-alive connection open" % took)
    eq(rc, 0, "exit status; output:\n%s" % tail(srv.output(), 30))


@test
def sigterm_while_requests_are_in_flight():
    _, token = make_user("admin")
    srv = _serve()
    import threading
    results = []

    def worker():
        for _ in range(20):
            try:
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
                c.request("GET", API + "/departments?limit=50", headers={"Authorization": "Bearer " + token})
                r = c.getresponse()
                r.read()
                results.append(r.status)
                c.close()
            except OSError:
                results.append("refused")
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.15)
    rc = srv.stop(signal.SIGTERM)
    for t in threads:
        t.join()
    eq(rc, 0, "exit status; output:\n%s" % tail(srv.output(), 30))
    bad = [x for x in results if x not in (200, "refused", 503)]
    check(not bad, "unexpected answers during shutdown: %s" % bad)


if __name__ == "__main__":
    main(start_server=False)
