"""Test harness for the ducha HTTP API integration tests.

Each test file imports this module, declares tests with @test and calls main().
The file then prints TAP: one `ok N - name` / `not ok N - name` line per test,
diagnostics as `# ...` lines, and the plan `1..N` at the end. A crash of the
harness itself prints `Bail out!`.

Environment:
  DUCHA_BIN     the ducha executable
  DATABASE_URL  the PostgreSQL database the server and the tests use
  DUCHA_SRC     the repository root (for openapi.yaml and data/)
  DUCHA_TEST_NO_SPEC=1  skip OpenAPI response validation (for diagnosis only)
  DUCHA_MIGRATION_DATABASE_URL  the schema owner's connection (db_owner(); tamper tests)
"""

import copy
import datetime as _dt
import http.client
import json as _json
import os
import random
import re
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

try:
    import yaml
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker, RefResolver
except ImportError as exc:  # pragma: no cover
    print("Bail out! missing python module: %s (apt-get install python3-yaml python3-jsonschema, "
          "and run with /usr/bin/python3)" % exc)
    sys.exit(1)

_NO = object()

DUCHA_BIN = os.environ.get("DUCHA_BIN", "")
DATABASE_URL = os.environ.get("DATABASE_URL", "")
OWNER_DATABASE_URL = os.environ.get("DUCHA_MIGRATION_DATABASE_URL", "")
DUCHA_SRC = os.environ.get("DUCHA_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
API = "/api/v1"

def _problem_types():
    """{slug: HTTP status} of every problem type, from src/problem_types.def (the one list)."""
    with open(os.path.join(DUCHA_SRC, "src", "problem_types.def"), encoding="utf-8") as f:
        return {m.group(2): int(m.group(1)) for m in re.finditer(r'^PROBLEM\(ST_\w+, (\d+), "([a-z-]+)"', f.read(), re.M)}


SLUG_STATUS = _problem_types()

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
GENERATED_ID_RE = re.compile(r"^[0-9a-f]{32}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
UTC_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


class TestFailure(AssertionError):
    pass


class TestSkip(Exception):
    pass


# --------------------------------------------------------------------------------------------
# context shared by the tests of one file

class _Ctx:
    def __init__(self):
        self.server = None        # the Server started by main()
        self.admin = None         # Client with an admin token
        self.prefix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        self.file_tag = re.sub(r"[^a-z0-9]", "", os.path.splitext(os.path.basename(sys.argv[0]))[0].lower())[:20]
        self.exchanges = []       # last HTTP exchanges of the current test (diagnostics)
        self.spec_errors = []     # OpenAPI mismatches of the current test
        self.auto_errors = []     # convention violations noticed on any response of the current test
        self.counter = 0
        self.setup_notes = []

    def uniq(self, label="x"):
        """A name unique to this run of this file."""
        self.counter += 1
        return "%s-%s%s-%d" % (label, self.file_tag[:6], self.prefix, self.counter)


ctx = _Ctx()


# --------------------------------------------------------------------------------------------
# assertions

def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def eq(actual, expected, msg=""):
    if actual != expected:
        a = _short(actual)
        e = _short(expected)
        raise TestFailure("%s%sexpected %s, got %s" % (msg, ": " if msg else "", e, a))


def _short(v, n=600):
    try:
        s = _json.dumps(v, ensure_ascii=False, sort_keys=True) if not isinstance(v, (bytes, str)) else repr(v)
    except Exception:
        s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def skip(reason):
    raise TestSkip(reason)


def expect_status(r, status, msg=""):
    if r.status != status:
        raise TestFailure("%s%s %s: expected status %d, got %d: %s" % (
            msg + ": " if msg else "", r.method, r.path, status, r.status, _body_excerpt(r)))


def expect_problem(r, status, slug=None, pointers=None, exact_pointers=False, slugs=None):
    """Check r is an RFC 9457 problem with the given status and type slug (or one of `slugs`).
    pointers: pointers that must appear in errors[] (all of them)."""
    expect_status(r, status)
    ct = (r.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    eq(ct, "application/problem+json", "%s %s Content-Type" % (r.method, r.path))
    b = r.json
    check(isinstance(b, dict), "problem body is not an object: %s" % _body_excerpt(r))
    allowed = set(slugs or ([slug] if slug else []))
    if allowed:
        check(b.get("type") in {"urn:ducha:problem:" + s for s in allowed},
              "problem type %r, expected %s" % (b.get("type"), " or ".join("urn:ducha:problem:" + s for s in sorted(allowed))))
    eq(b.get("status"), status, "problem status member")
    check(isinstance(b.get("title"), str) and b.get("title"), "problem title missing")
    rid = r.headers.get("X-Request-Id")
    if "request_id" in b:
        eq(b.get("request_id"), rid, "problem request_id vs X-Request-Id")
    else:
        raise TestFailure("problem has no request_id")
    if "instance" in b:
        check(isinstance(b["instance"], str) and b["instance"].split("?")[0] == r.path.split("?")[0],
              "problem instance %r, expected %r" % (b.get("instance"), r.path.split("?")[0]))
    if b.get("type") != "urn:ducha:problem:invalid-transition":
        check("allowed_transitions" not in b, "allowed_transitions present on a %s problem" % b.get("type"))
    if pointers is not None:
        errs = b.get("errors")
        check(isinstance(errs, list) and errs, "problem has no errors[]: %s" % _short(b))
        got = []
        for e in errs:
            check(isinstance(e, dict) and isinstance(e.get("pointer"), str) and isinstance(e.get("message"), str)
                  and e.get("message"), "bad errors[] entry: %s" % _short(e))
            got.append(e["pointer"])
        for p in pointers:
            check(p in got, "errors[] lacks pointer %r (has %s)" % (p, got))
        if exact_pointers:
            eq(sorted(got), sorted(pointers), "errors[] pointers")
    return b


def pointers_of(r):
    b = r.json if isinstance(r.json, dict) else {}
    return [e.get("pointer") for e in (b.get("errors") or []) if isinstance(e, dict)]


def _body_excerpt(r, n=500):
    if r.json is not None:
        return _short(r.json, n)
    try:
        s = r.body.decode("utf-8", "replace")
    except Exception:
        s = repr(r.body)
    return repr(s[:n])


# --------------------------------------------------------------------------------------------
# processes

def run_cli(args, stdin=None, env=None, timeout=60, check_rc=False):
    """Run DUCHA_BIN with args; returns CompletedProcess (text)."""
    e = dict(os.environ)
    if env:
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
    p = subprocess.run([DUCHA_BIN] + list(args), input=stdin, env=e, capture_output=True, text=True,
                       timeout=timeout, cwd=DUCHA_SRC)
    if check_rc and p.returncode != 0:
        raise TestFailure("ducha %s exited %d: %s" % (" ".join(args), p.returncode, tail(p.stderr)))
    return p


def tail(text, lines=25):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    ls = (text or "").rstrip("\n").split("\n")
    return "\n".join(ls[-lines:])


def db(sql, url=None):
    """Run one SQL statement with psql -Atc and return its output (stripped)."""
    p = subprocess.run(["psql", url or DATABASE_URL, "-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
    if p.returncode != 0:
        raise TestFailure("psql failed for %r: %s" % (sql, p.stderr.strip()))
    return p.stdout.strip()


def db_int(sql):
    return int(db(sql) or "0")


def db_try(sql, url=None):
    """Run SQL with psql; returns (returncode, stdout, stderr) without raising."""
    p = subprocess.run(["psql", url or DATABASE_URL, "-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def cli_token(app_url, username, role="admin"):
    """A bearer token of a new user made with the command line in the database at app_url."""
    env = {"DATABASE_URL": app_url}
    run_cli(["user", "create", "--username", username, "--role", role, "--password-stdin"],
            stdin="pw-secret-1", env=env, check_rc=True)
    return run_cli(["token", "create", "--user", username], env=env, check_rc=True).stdout.strip().split()[-1]


def stop_all(servers, dbs=(), strict=False):
    """Stops the servers a file started and drops the databases it made. strict (its last test):
    each server still running must exit 0 on SIGTERM, which a sanitizer's report would spoil."""
    for srv in servers:
        if srv.alive():
            rc = srv.stop()
            if strict:
                eq(rc, 0, "exit status; output:\n%s" % tail(srv.output(), 20))
    for name in dbs:
        drop_database(name)


def scrape_metrics(port):
    """(status, content type, text) of GET /metrics on the metrics listener at port."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        return r.status, r.getheader("Content-Type") or "", r.read().decode("utf-8")
    finally:
        c.close()


def url_for(base, name):
    """base (a postgresql:// URL) with database name."""
    u = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def fresh_database(name):
    """A new, empty database like the README's (UTF8, C.UTF-8, the schema owner's): its owner's
    and the service role's URLs. A file whose test would disturb the shared database (locks,
    subscriptions, restores) works in one of its own."""
    owner = OWNER_DATABASE_URL or DATABASE_URL
    db("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, url=url_for(owner, "postgres"))
    db("CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'" % name,
       url=url_for(owner, "postgres"))
    return url_for(owner, name), url_for(DATABASE_URL, name)


def own_database(name):
    """fresh_database, migrated and seeded."""
    owner_url, app_url = fresh_database(name)
    for cmd in (["migrate"], ["seed"]):
        p = run_cli(cmd, env={"DATABASE_URL": app_url, "DUCHA_MIGRATION_DATABASE_URL": owner_url})
        eq(p.returncode, 0, "%s: %s" % (cmd[0], tail(p.stderr)))
    return owner_url, app_url


def drop_database(name):
    """Drops what fresh_database made, whoever is still connected; quietly."""
    try:
        db("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, url=url_for(OWNER_DATABASE_URL or DATABASE_URL, "postgres"))
    except Exception:  # noqa: BLE001
        pass


def db_owner(sql):
    """db() as the schema owner (DUCHA_MIGRATION_DATABASE_URL); skips the test when it is not set.
    Several statements in one string run in one transaction."""
    if not OWNER_DATABASE_URL:
        raise TestSkip("DUCHA_MIGRATION_DATABASE_URL is not set")
    p = subprocess.run(["psql", OWNER_DATABASE_URL, "-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
    if p.returncode != 0:
        raise TestFailure("psql (owner) failed for %r: %s" % (sql[:300], p.stderr.strip()))
    return p.stdout.strip()


class PsqlSession:
    """One long-lived psql process for many quick queries (a psql start costs ~30 ms).
    q(sql) returns the unaligned output like db(); an SQL error raises TestFailure."""

    def __init__(self, url=None):
        self.url = url or DATABASE_URL
        self.proc = None
        self.n = 0

    def _start(self):
        self.proc = subprocess.Popen(["psql", self.url, "-X", "-At", "-q"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     bufsize=1, env=dict(os.environ, PGCONNECT_TIMEOUT="5"))

    def q(self, sql):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.n += 1
        marker = "__ducha_end_%d_%s__" % (self.n, ctx.prefix)
        try:
            self.proc.stdin.write(sql.strip().rstrip(";") + ";\n\\echo " + marker + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self.close()
            raise TestFailure("psql session died: %s" % exc)
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                self.close()
                raise TestFailure("psql session ended unexpectedly: %s" % "\n".join(lines)[-500:])
            line = line.rstrip("\n")
            if line == marker:
                break
            lines.append(line)
        errors = [x for x in lines if x.startswith(("ERROR:", "FATAL:", "psql:"))]
        if errors:
            raise TestFailure("psql failed for %r: %s" % (sql[:300], " | ".join(lines)[:800]))
        return "\n".join(lines).strip()

    def close(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A `ducha serve` process on a free port."""

    def __init__(self, extra_env=None, database_url=None):
        self.extra_env = dict(extra_env or {})
        self.database_url = database_url
        self.proc = None
        self.port = None
        self.errfile = None
        self.stopped_rc = None

    def start(self, wait=10.0):
        last = ""
        for attempt in range(3):
            self.port = free_port()
            env = dict(os.environ)
            env.setdefault("DUCHA_SHUTDOWN_GRACE", "0")  # tests that drain set their own
            env.setdefault("DUCHA_JOBS", "none")  # background jobs run where a test asks (test_worker.py)
            env.setdefault("DUCHA_METRICS_LISTEN", "off")  # test_metrics.py listens on a port of its own
            env.setdefault("DUCHA_LOG_FORMAT", "text")  # the tests read the text log; test_logs.py the JSON one
            env.update(self.extra_env)
            env["DUCHA_LISTEN"] = "127.0.0.1:%d" % self.port
            if self.database_url:
                env["DATABASE_URL"] = self.database_url
            if "DUCHA_OPENAPI_FILE" not in env and os.path.exists(os.path.join(DUCHA_SRC, "openapi.yaml")):
                env["DUCHA_OPENAPI_FILE"] = os.path.join(DUCHA_SRC, "openapi.yaml")
            if "DUCHA_SEED_FILE" not in env and os.path.exists(os.path.join(DUCHA_SRC, "data", "inspection-form.json")):
                env["DUCHA_SEED_FILE"] = os.path.join(DUCHA_SRC, "data", "inspection-form.json")
            self.errfile = tempfile.TemporaryFile()
            self.proc = subprocess.Popen([DUCHA_BIN, "serve"], env=env, stdin=subprocess.DEVNULL,
                                         stdout=self.errfile, stderr=subprocess.STDOUT, cwd=DUCHA_SRC)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                    c.request("GET", "/healthz")
                    resp = c.getresponse()
                    resp.read()
                    c.close()
                    if resp.status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            last = self.output()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("server did not answer GET /healthz within %.0f s; output:\n%s" % (wait, tail(last)))
            if "in use" not in last.lower():
                break
        raise RuntimeError("server exited with %s before answering /healthz; output:\n%s" % (
            self.proc.returncode, tail(last)))

    def output(self):
        if not self.errfile:
            return ""
        self.errfile.seek(0)
        return self.errfile.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Signal the server and wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.stopped_rc = None
                return None
        self.stopped_rc = self.proc.returncode
        return self.stopped_rc

    def client(self, token=None):
        return Client(self.port, token)


def run_concurrently(fns, join=120):
    """Run the callables at once (released together by a barrier); return their results in order
    (an exception where one raised)."""
    results = [None] * len(fns)
    barrier = threading.Barrier(len(fns))

    def one(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fns[i]()
        except Exception as exc:  # noqa: BLE001
            results[i] = exc
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join)
    return results


_EXTRA_SERVERS = []


def extra_server(extra_env=None, database_url=None):
    """A started Server of the test's own beside ctx.server; main() stops it at the end if the
    test did not."""
    srv = Server(extra_env, database_url=database_url).start()
    _EXTRA_SERVERS.append(srv)
    return srv


def make_user(role="admin", department_id=None, username=None, password="pw-secret-1"):
    """Create a user through the CLI and return (username, token)."""
    username = username or ("t_%s_%s_%d" % (ctx.file_tag[:10], ctx.prefix, random.randrange(10 ** 9)))
    args = ["user", "create", "--username", username, "--role", role, "--password-stdin"]
    if department_id is not None:
        args += ["--department-id", str(department_id)]
    run_cli(args, stdin=password, check_rc=True)
    p = run_cli(["token", "create", "--user", username], check_rc=True)
    m = re.search(r"dch_[A-Za-z0-9_-]{43}", p.stdout)
    token = m.group(0) if m else p.stdout.strip().split()[-1]
    return username, token


# --------------------------------------------------------------------------------------------
# OpenAPI

class Spec:
    def __init__(self, path):
        with open(path, "rb") as f:
            raw = yaml.safe_load(f)
        self.raw = raw
        ver = str(raw.get("openapi", ""))
        self.doc = _convert_nullable(copy.deepcopy(raw)) if ver.startswith("3.0") else raw
        self.prefixes = [""]
        for s in raw.get("servers") or []:
            u = urllib.parse.urlparse(str(s.get("url", "")))
            p = u.path.rstrip("/")
            if p and p not in self.prefixes:
                self.prefixes.append(p)
        self.templates = []
        for tpath, item in (self.doc.get("paths") or {}).items():
            parts = tpath.strip("/").split("/") if tpath.strip("/") else []
            self.templates.append((tpath, parts, item))
        self.resolver = RefResolver(base_uri="", referrer=self.doc)
        self.format_checker = _format_checker()
        self._validators = {}

    def operations(self):
        """[(METHOD, path template)] of every operation (OPTIONS/HEAD excluded)."""
        out = []
        for tpath, _, item in self.templates:
            for m in item:
                if m.lower() in ("get", "put", "post", "delete", "patch", "trace"):
                    out.append((m.upper(), tpath))
        return out

    def find_template(self, path):
        path = path.split("?")[0]
        best = None
        for prefix in self.prefixes:
            if prefix and not (path == prefix or path.startswith(prefix + "/")):
                continue
            rel = path[len(prefix):] if prefix else path
            segs = rel.strip("/").split("/") if rel.strip("/") else []
            for tpath, parts, item in self.templates:
                if len(parts) != len(segs):
                    continue
                literal = 0
                ok = True
                for p, s in zip(parts, segs):
                    if p.startswith("{") and p.endswith("}"):
                        if s == "":
                            ok = False
                            break
                    elif p == s:
                        literal += 1
                    else:
                        ok = False
                        break
                if ok and (best is None or literal > best[0]):
                    best = (literal, tpath, item)
        return best

    def resolve(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 20:
            _, node = self.resolver.resolve(node["$ref"])
            seen += 1
        return node

    def validate(self, method, path, status, ctype, body_bytes, parsed):
        """Return a list of error strings (empty when the response matches the spec)."""
        found = self.find_template(path)
        if not found:
            return ["openapi.yaml has no path matching %s" % path.split("?")[0]]
        _, tpath, item = found
        op = item.get(method.lower())
        if not isinstance(op, dict):
            return ["openapi.yaml has no %s operation for %s" % (method, tpath)]
        responses = op.get("responses") or {}
        resp = responses.get(str(status))
        if resp is None:
            resp = responses.get("%dXX" % (status // 100)) or responses.get("%dxx" % (status // 100))
        if resp is None:
            resp = responses.get("default")
        if resp is None:
            return ["openapi.yaml: %s %s does not document status %d" % (method, tpath, status)]
        resp = self.resolve(resp)
        content = resp.get("content") or {}
        if not content:
            if body_bytes:
                return ["%s %s %d: spec documents no body, server sent %d bytes" % (method, tpath, status, len(body_bytes))]
            return []
        ct = (ctype or "").split(";")[0].strip().lower()
        media = None
        for k, v in content.items():
            if k.lower() == ct:
                media = v
                break
        if media is None:
            for k, v in content.items():
                kl = k.lower()
                if kl.endswith("/*") and ct.startswith(kl[:-1]) or kl == "*/*":
                    media = v
                    break
        if media is None:
            return ["%s %s %d: Content-Type %r is not documented (spec has %s)" % (
                method, tpath, status, ct, ", ".join(content))]
        schema = (media or {}).get("schema")
        if schema is None or not ct.endswith("json"):
            return []
        if parsed is _NO:
            return ["%s %s %d: body is not valid JSON" % (method, tpath, status)]
        key = (tpath, method, str(status), ct)
        v = self._validators.get(key)
        if v is None:
            v = Draft202012Validator(schema, resolver=self.resolver, format_checker=self.format_checker)
            self._validators[key] = v
        errs = sorted(v.iter_errors(parsed), key=lambda e: list(e.absolute_path))
        out = []
        for e in errs[:4]:
            where = "/" + "/".join(str(x) for x in e.absolute_path)
            out.append("%s %s %d: response does not match openapi.yaml at %s: %s" % (
                method, tpath, status, where, e.message[:300]))
        return out

    def problem_schema(self):
        # RFC 9457 problem details; not "Problem", which is the domain's 存在问题
        schemas = ((self.doc.get("components") or {}).get("schemas") or {})
        for name in ("ProblemDetails", "ProblemDetail", "Error"):
            if name in schemas:
                return {"$ref": "#/components/schemas/" + name}
        for name, sch in schemas.items():
            props = (sch or {}).get("properties") or {}
            if {"type", "title", "status"} <= set(props):
                return {"$ref": "#/components/schemas/" + name}
        return None

    def validate_problem(self, parsed):
        s = self.problem_schema()
        if s is None or parsed is _NO:
            return []
        v = Draft202012Validator(s, resolver=self.resolver, format_checker=self.format_checker)
        return ["problem body does not match components/schemas/Problem at /%s: %s" % (
            "/".join(str(x) for x in e.absolute_path), e.message[:300]) for e in v.iter_errors(parsed)][:3]


def _convert_nullable(node):
    if isinstance(node, list):
        return [_convert_nullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _convert_nullable(v) for k, v in node.items()}
    if node.get("nullable") is True:
        node.pop("nullable")
        if "type" in node and "$ref" not in node:
            t = node["type"]
            node["type"] = (t if isinstance(t, list) else [t]) + ["null"]
            if "enum" in node and None not in node["enum"]:
                node["enum"] = list(node["enum"]) + [None]
        else:
            return {"anyOf": [node, {"type": "null"}]}
    return node


def _format_checker():
    fc = FormatChecker(formats=())

    @fc.checks("date", raises=ValueError)
    def _date(v):
        if not isinstance(v, str):
            return True
        if not DATE_RE.match(v):
            return False
        _dt.date.fromisoformat(v)
        return True

    @fc.checks("date-time", raises=ValueError)
    def _datetime(v):
        if not isinstance(v, str):
            return True
        return bool(DATETIME_RE.match(v))

    return fc


_spec = None
_spec_error = None


def spec():
    global _spec, _spec_error
    if _spec is None and _spec_error is None:
        try:
            _spec = Spec(os.path.join(DUCHA_SRC, "openapi.yaml"))
        except Exception as exc:
            _spec_error = "cannot load %s/openapi.yaml: %s" % (DUCHA_SRC, exc)
    if _spec_error:
        raise TestFailure(_spec_error)
    return _spec


# --------------------------------------------------------------------------------------------
# HTTP client

class Resp:
    def __init__(self, method, path, status, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers
        self.body = body
        self.json = None
        self._parsed = _NO
        ct = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        self.ctype = ct
        if body and (ct.endswith("json")):
            try:
                self.json = _json.loads(body.decode("utf-8"))
                self._parsed = self.json
            except (ValueError, UnicodeDecodeError):
                self.json = None

    def h(self, name):
        return self.headers.get(name)

    @property
    def etag(self):
        return self.headers.get("ETag")

    def __repr__(self):
        return "<%s %s -> %d>" % (self.method, self.path, self.status)


class Client:
    def __init__(self, port, token=None, host="127.0.0.1", source=None):
        self.port = port
        self.host = host
        self.token = token
        self.source = source      # local address to connect from (e.g. "127.0.0.7"), None: any

    def with_token(self, token):
        return Client(self.port, token, self.host, self.source)

    def from_address(self, source):
        """The same client connecting from another local address (any 127.x.y.z works on Linux)."""
        return Client(self.port, self.token, self.host, source)

    def req(self, method, path, json=_NO, body=None, headers=None, token=_NO, ctype=_NO,
            validate=True, timeout=15, if_match=None):
        """Send one request. json: a value to send as JSON; body: raw bytes/str.
        validate: True (match openapi.yaml), 'problem' (only the problem schema) or False."""
        hdrs = {}
        tok = self.token if token is _NO else token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        if json is not _NO:
            body = _json.dumps(json, ensure_ascii=False).encode("utf-8")
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None:
            if ctype is _NO:
                hdrs["Content-Type"] = "application/json"
            elif ctype is not None:
                hdrs["Content-Type"] = ctype
        elif ctype not in (_NO, None):
            hdrs["Content-Type"] = ctype
        if if_match is not None:
            hdrs["If-Match"] = if_match
        for k, v in (headers or {}).items():
            if v is None:
                hdrs.pop(k, None)
            else:
                hdrs[k] = v
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                          source_address=(self.source, 0) if self.source else None)
        try:
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for k, v in hdrs.items():
                    conn.putheader(k, v)
                if body is not None:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders()
                if body:
                    conn.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (e.g. 413) before reading the whole body
            try:
                resp = conn.getresponse()
                rbody = resp.read()
            except (TimeoutError, socket.timeout):
                raise TestFailure("%s %s: no response within %.1f s" % (method, path, timeout))
            except (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead) as exc:
                raise TestFailure("%s %s (Content-Type %r, %d body bytes): the server closed the connection "
                                  "without a complete response (%s)" % (
                                      method, path, hdrs.get("Content-Type"), len(body or b""), exc.__class__.__name__))
            r = Resp(method, path, resp.status, resp.headers, rbody)
        finally:
            conn.close()
        r.elapsed = time.monotonic() - t0
        r.req_headers = hdrs
        r.req_body = body
        ctx.exchanges.append(r)
        del ctx.exchanges[:-6]
        self._auto_checks(r, validate)
        return r

    def _auto_checks(self, r, validate):
        rid = r.headers.get("X-Request-Id")
        if not rid or not REQUEST_ID_RE.match(rid):
            ctx.auto_errors.append("%s %s -> %d: missing or bad X-Request-Id %r" % (r.method, r.path, r.status, rid))
        if r.ctype.endswith("json") and r.body and r._parsed is _NO:
            ctx.auto_errors.append("%s %s -> %d: body is not valid JSON" % (r.method, r.path, r.status))
        if r.status >= 500 and r.status not in (503, 504):
            ctx.auto_errors.append("%s %s -> %d (server error): %s" % (r.method, r.path, r.status, _body_excerpt(r)))
        if os.environ.get("DUCHA_TEST_NO_SPEC") == "1" or not validate:
            return
        try:
            sp = spec()
        except TestFailure as exc:
            ctx.spec_errors.append(str(exc))
            return
        if validate == "problem":
            if r.ctype == "application/problem+json":
                ctx.spec_errors.extend(sp.validate_problem(r._parsed))
            return
        ctx.spec_errors.extend(sp.validate(r.method, r.path, r.status, r.headers.get("Content-Type"),
                                           r.body, r._parsed))

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, json=_NO, **kw):
        return self.req("POST", path, json=json, **kw)

    def patch(self, path, json=_NO, **kw):
        return self.req("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)

    # convenience: expect success and return the parsed body
    def ok(self, method, path, status=None, **kw):
        r = self.req(method, path, **kw)
        want = status or {"POST": 201, "DELETE": 204}.get(method, 200)
        expect_status(r, want)
        return r.json

    def list_all(self, path, limit=200, max_pages=100):
        """Follow next_cursor; returns all items."""
        out = []
        sep = "&" if "?" in path else "?"
        url = "%s%slimit=%d" % (path, sep, limit)
        for _ in range(max_pages):
            r = self.get(url)
            expect_status(r, 200)
            out.extend(r.json["data"])
            nc = r.json.get("next_cursor")
            if not nc:
                return out
            url = "%s%slimit=%d&cursor=%s" % (path, sep, limit, urllib.parse.quote(nc, safe=""))
        raise TestFailure("more than %d pages at %s" % (max_pages, path))


def qs(**params):
    return urllib.parse.urlencode(params)


# --------------------------------------------------------------------------------------------
# domain helpers

def today(tzname=None):
    tzname = tzname or os.environ.get("DUCHA_TIMEZONE") or "Asia/Shanghai"
    try:
        import zoneinfo
        tz = zoneinfo.ZoneInfo(tzname)
    except Exception:
        tz = _dt.timezone(_dt.timedelta(hours=8))
    return _dt.datetime.now(tz).date()


def day(offset):
    return (today() + _dt.timedelta(days=offset)).isoformat()


def seed_data():
    for p in (os.path.join(DUCHA_SRC, "data", "inspection-form.json"),
              os.path.join(DUCHA_SRC, "..", "shared", "seed", "inspection-form.json"),
              "/work/shared/seed/inspection-form.json"):
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                return _json.load(f)
    raise TestFailure("seed file inspection-form.json not found")


_cache = {}


def seed_dept_id(name, client=None):
    key = ("dept", name)
    if key not in _cache:
        c = client or ctx.admin
        r = c.get(API + "/departments?" + qs(q=name, limit=200))
        expect_status(r, 200)
        ids = [d["id"] for d in r.json["data"] if d["name"] == name and d.get("parent_id") is None]
        check(len(ids) == 1, "seed department %s: found %d" % (name, len(ids)))
        _cache[key] = ids[0]
    return _cache[key]


def seed_checklist(client=None):
    """The seed checklist (code default, version 1)."""
    if "checklist" not in _cache:
        c = client or ctx.admin
        found = [x for x in c.list_all(API + "/checklists?code=default") if x.get("version") == 1]
        check(len(found) == 1, "checklist default version 1: found %d" % len(found))
        _cache["checklist"] = found[0]
    return _cache["checklist"]


def mk_dept(name=None, client=None, **fields):
    c = client or ctx.admin
    body = {"name": name or ctx.uniq("部门")}
    body.update(fields)
    r = c.post(API + "/departments", json=body)
    expect_status(r, 201, "create department")
    return r.json


def mk_inspection(target_id=None, client=None, **fields):
    c = client or ctx.admin
    if target_id is None:
        target_id = mk_dept(client=c)["id"]
    body = {"target_department_id": target_id, "inspected_on": "2026-03-15", "title": ctx.uniq("督察")}
    body.update(fields)
    r = c.post(API + "/inspections", json=body)
    expect_status(r, 201, "create inspection")
    return r.json


def items_of(inspection_id, client=None):
    c = client or ctx.admin
    return c.list_all(API + "/inspections/%d/items" % inspection_id)


def mk_problem(item_id, description=None, client=None, **fields):
    c = client or ctx.admin
    body = {"description": description or ctx.uniq("问题")}
    body.update(fields)
    r = c.post(API + "/items/%d/problems" % item_id, json=body)
    expect_status(r, 201, "create problem")
    return r.json


def mk_rect(problem_id, responsible_id, measure=None, client=None, **fields):
    c = client or ctx.admin
    body = {"measure": measure or ctx.uniq("措施"), "responsible_department_id": responsible_id}
    body.update(fields)
    r = c.post(API + "/problems/%d/rectifications" % problem_id, json=body)
    expect_status(r, 201, "create rectification")
    return r.json


# --------------------------------------------------------------------------------------------
# registry and runner

_TESTS = []


def test(fn_or_name=None):
    """Register a test. Use @test or @test("name")."""
    if callable(fn_or_name):
        _TESTS.append((fn_or_name.__name__, fn_or_name))
        return fn_or_name

    def deco(fn):
        _TESTS.append((fn_or_name or fn.__name__, fn))
        return fn
    return deco


def _out(line=""):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _diag(text):
    for line in str(text).rstrip("\n").split("\n"):
        _out("# " + line)


def note(text):
    """A TAP comment printed even when the test passes (figures worth keeping)."""
    _diag(text)


def _describe_exchange(r):
    lines = ["> %s %s" % (r.method, r.path)]
    for k in ("Content-Type", "If-Match", "Idempotency-Key", "Origin", "X-Request-Id"):
        if k in r.req_headers:
            lines.append(">   %s: %s" % (k, r.req_headers[k]))
    if r.req_body:
        b = r.req_body[:300]
        lines.append(">   body: %s%s" % (b.decode("utf-8", "replace"), "...(%d bytes)" % len(r.req_body) if len(r.req_body) > 300 else ""))
    lines.append("< %d (%.3f s)%s" % (r.status, r.elapsed, "".join(
        "  %s: %s" % (k, r.headers.get(k)) for k in ("Content-Type", "ETag", "Location") if r.headers.get(k))))
    if r.body:
        lines.append("<   body: %s" % _body_excerpt(r, 400))
    return "\n".join(lines)


class _Runner:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def result(self, name, ok, diag=None, skip_reason=None):
        self.n += 1
        if skip_reason is not None:
            _out("ok %d - %s # SKIP %s" % (self.n, name, skip_reason))
            return
        _out("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        if not ok:
            self.failed += 1
        if diag:
            _diag(diag)

    def run_one(self, name, fn):
        ctx.exchanges = []
        ctx.spec_errors = []
        ctx.auto_errors = []
        problems = []
        show_exchanges = False
        t0 = time.monotonic()
        try:
            fn()
        except TestSkip as exc:
            self.result(name, True, skip_reason=str(exc))
            return
        except TestFailure as exc:
            problems.append(str(exc))
            frame = traceback.extract_tb(exc.__traceback__)
            frame = [f for f in frame if os.path.basename(f.filename) != "harness.py"] or frame
            problems.append("at %s:%d" % (os.path.basename(frame[-1].filename), frame[-1].lineno))
            show_exchanges = True
        except Exception:
            problems.append("exception:\n" + traceback.format_exc(limit=6))
            show_exchanges = True
        if ctx.auto_errors:
            problems.extend("convention: " + e for e in _dedup(ctx.auto_errors)[:8])
            show_exchanges = True
        if ctx.spec_errors:
            problems.extend("openapi: " + e for e in _dedup(ctx.spec_errors)[:8])
        if show_exchanges and ctx.exchanges:
            problems.append("last requests:")
            problems.extend(_describe_exchange(r) for r in ctx.exchanges[-3:])
        dt = time.monotonic() - t0
        if dt > 5:
            problems.append("(slow test: %.1f s)" % dt)
        self.result(name, not any(p for p in problems if not p.startswith("(slow")), "\n".join(problems) or None)


def _dedup(xs):
    seen = []
    for x in xs:
        if x not in seen:
            seen.append(x)
    return seen


def setup_database():
    """migrate + seed (both idempotent). Returns a list of problems (empty when fine)."""
    notes = []
    p = run_cli(["migrate"])
    if p.returncode != 0:
        raise RuntimeError("ducha migrate exited %d:\n%s" % (p.returncode, tail(p.stderr + p.stdout)))
    env = {}
    if "DUCHA_SEED_FILE" not in os.environ and os.path.exists(os.path.join(DUCHA_SRC, "data", "inspection-form.json")):
        env["DUCHA_SEED_FILE"] = os.path.join(DUCHA_SRC, "data", "inspection-form.json")
    p = run_cli(["seed"], env=env)
    if p.returncode != 0:
        notes.append("ducha seed exited %d (run concurrently with other test files):\n%s" % (
            p.returncode, tail(p.stderr + p.stdout, 10)))
        time.sleep(1.0)
        p = run_cli(["seed"], env=env)
        if p.returncode != 0:
            raise RuntimeError("ducha seed exited %d:\n%s" % (p.returncode, tail(p.stderr + p.stdout)))
    return notes


def main(server_env=None, start_server=True, setup_db=True):
    """Run the registered tests of the calling file and print TAP."""
    try:
        _run_file(server_env, start_server, setup_db)
    finally:
        for srv in _EXTRA_SERVERS:
            if srv.alive():
                srv.stop()


def _run_file(server_env, start_server, setup_db):
    runner = _Runner()
    try:
        for var in ("DUCHA_BIN", "DATABASE_URL"):
            if not os.environ.get(var):
                _out("Bail out! %s is not set" % var)
                sys.exit(1)
        if not os.access(DUCHA_BIN, os.X_OK):
            _out("Bail out! DUCHA_BIN %s is not executable" % DUCHA_BIN)
            sys.exit(1)
        if setup_db:
            try:
                notes = setup_database()
            except Exception as exc:
                _out("Bail out! %s" % str(exc).replace("\n", " | ")[:2000])
                sys.exit(1)
            runner.result("setup: migrate and seed succeed", not notes, "\n".join(notes) or None)
        if start_server:
            try:
                ctx.server = Server(server_env).start()
            except Exception as exc:
                _out("Bail out! cannot start server: %s" % str(exc).replace("\n", " | ")[:2000])
                sys.exit(1)
            try:
                _, token = make_user("admin")
            except Exception as exc:
                ctx.server.stop()
                _out("Bail out! cannot create the admin user/token: %s" % str(exc).replace("\n", " | ")[:2000])
                sys.exit(1)
            ctx.admin = ctx.server.client(token)
        for name, fn in _TESTS:
            runner.run_one(name, fn)
        if start_server:
            srv = ctx.server
            was_alive = srv.alive()
            rc = srv.stop()
            out = srv.output()
            ok = was_alive and rc == 0
            diag = None
            if not ok:
                diag = ("server had already exited (rc %s) before SIGTERM" % rc if not was_alive else
                        "server exit status after SIGTERM: %s" % ("killed after timeout" if rc is None else rc))
                diag += "\nserver output (tail):\n" + tail(out, 40)
            runner.result("server exits 0 on SIGTERM (no sanitizer reports)", ok, diag)
        _out("1..%d" % runner.n)
    except SystemExit:
        raise
    except BaseException:
        _out("Bail out! harness crashed: " + traceback.format_exc().replace("\n", " | ")[-1500:])
        if ctx.server and ctx.server.alive():
            ctx.server.stop()
        sys.exit(1)
    sys.exit(0)
