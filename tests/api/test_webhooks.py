#!/usr/bin/python3
"""Webhooks (issue 12): subscriptions (/webhooks, admin only, the secret write-only), the outbox
written in the change's transaction, and the delivery loop (DUCHA_JOBS=webhooks) that POSTs each
event, signed (X-Ducha-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>), to a receiver
of this file's own: a ThreadingHTTPServer on 127.0.0.1 that records every request and answers as
each test tells it (200, 500, a redirect, too slowly, a 10 MB body).

Deliveries run in the background and every webhook sees every change of its database, so this
file works in a database of its own (as test_reports.py does) with servers of its own: the main
one allows 127.0.0.1 (DUCHA_WEBHOOK_ALLOW) and retries fast; one without the allow-list for the
SSRF refusals; one that gives up after 2 s. Only one server at a time runs the delivery loop.
Each test subscribes with a path of its own on the receiver and deletes its subscriptions when
done, so one test's retries never reach another's records."""

import datetime as _dt
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, DATETIME_RE, Server, TestFailure, check, ctx, day, db, eq,  # noqa: E402
                     expect_problem, expect_status, free_port, items_of, main, mk_dept, mk_inspection, mk_problem,
                     mk_rect, note, own_database, run_cli, scrape_metrics, skip, stop_all, tail, test)
from harness import Draft202012Validator, pointers_of, spec  # noqa: E402
from lifecycle_helpers import make_pdf, upload  # noqa: E402

EVENT_TYPES = ["inspection.created", "inspection.submitted", "inspection.closed", "inspection.reopened",
               "inspection.published", "inspection.unpublished", "rectification.status_changed",
               "rectification.reassigned", "rectification.deadline_changed", "rectification.overdue",
               "rectification.escalated", "rectification.urged", "evidence.added", "audit.checkpoint"]
WEBHOOK_KEYS = sorted(["id", "url", "events", "description", "active", "secret_rotated_at",
                       "previous_secret_valid_until", "created_by", "created_at", "updated_at"])
DELIVERY_KEYS = sorted(["id", "webhook_id", "event_id", "event_type", "status", "attempts", "redelivery_of",
                        "created_at", "next_attempt_at", "last_attempt_at", "delivered_at", "failed_at",
                        "response_status", "response_excerpt", "error", "duration_ms"])
BODY_KEYS = sorted(["id", "type", "occurred_at", "resource_type", "resource_id", "href", "resource", "change"])
CHANGE_KEYS = sorted(["action", "audit_event_id", "actor_id", "request_id", "before", "after"])
RESOURCE_KEYS = {
    "inspection": sorted(["id", "title", "status", "checklist_id", "batch_id", "target_department_id", "inspected_on",
                          "published", "published_at", "submitted_at", "closed_at", "version"]),
    "rectification": sorted(["id", "problem_id", "item_id", "inspection_id", "measure", "responsible_department_id",
                             "deadline", "status", "urge_count", "version"]),
    "evidence": sorted(["id", "rectification_id", "item_id", "filename", "content_type", "size", "sha256",
                        "uploaded_at"]),
    "audit_checkpoint": sorted(["seq", "created_at", "key_id", "signature"]),
}
HREF = {"inspection": API + "/inspections/", "rectification": API + "/rectifications/",
        "evidence": API + "/evidence/", "audit_checkpoint": API + "/audit-events/checkpoints/"}

OVERLAP_S = 60
SLEEP_S = 4.0  # the receiver's answer in "sleep" mode comes this late (the timeout is 1 s)
BASE_ENV = {"DUCHA_JOBS": "webhooks", "DUCHA_WEBHOOK_RETRY_BASE_MS": "200", "DUCHA_WEBHOOK_RETRY_FOR": "30",
            "DUCHA_WEBHOOK_TIMEOUT_MS": "1000", "DUCHA_WEBHOOK_SECRET_OVERLAP": str(OVERLAP_S)}
ALLOW_ENV = dict(BASE_ENV, DUCHA_WEBHOOK_ALLOW="127.0.0.1/32")
MERGE = "application/merge-patch+json"

# signing key of the audit checkpoints (audit.checkpoint events); this database is ours alone
KEY_DIR = tempfile.mkdtemp(prefix="ducha-wh-key-")
KEY_FILE = os.path.join(KEY_DIR, "audit.key")
with os.fdopen(os.open(KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as _f:
    _f.write(b"ducha webhook test audit key; not a secret: 0123456789abcdef")

state = {"servers": [], "dbs": [], "receivers": []}


# --------------------------------------------------------------------------------------------
# the receiver

class Receiver:
    """An HTTP server on 127.0.0.1 that records every request (path, headers, raw body, time) and
    answers by the first path segment's mode: ok (200), 500, redirect (302 to /<tag>-target),
    sleep (SLEEP_S, well past DUCHA_WEBHOOK_TIMEOUT_MS, then 200), huge (200 with a 10 MB body)."""

    def __init__(self, port=None):
        self.lock = threading.Lock()
        self.records = []
        self.modes = {}
        self.port = port or free_port()
        self.httpd = None
        state["receivers"].append(self)
        self.start()

    def url(self, tag):
        return "http://127.0.0.1:%d/%s" % (self.port, tag)

    def set_mode(self, tag, mode):
        with self.lock:
            self.modes[tag] = mode

    def mode_of(self, path):
        tag = path.split("?")[0].strip("/").split("/")[0]
        with self.lock:
            return self.modes.get(tag, "ok")

    def start(self):
        recv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request a connection: a stopped receiver takes none

            def log_message(self, *args):
                pass

            def _read_body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n > 0 else b""

            def _answer(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def _handle(self):
                body = self._read_body()
                rec = {"method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "header_list": list(self.headers.items()),
                       "body": body, "time": time.time(), "mono": time.monotonic()}
                with recv.lock:
                    recv.records.append(rec)
                mode = recv.mode_of(self.path)
                try:
                    if mode == "500":
                        self._answer(500, b"boom: the receiver is broken")
                    elif mode == "redirect":
                        tag = self.path.split("?")[0].strip("/").split("/")[0]
                        self._answer(302, b"moved", {"Location": recv.url(tag + "-target")})
                    elif mode == "sleep":
                        time.sleep(SLEEP_S)
                        self._answer(200, b"too late")
                    elif mode == "huge":
                        size = 10 * 1024 * 1024
                        self.send_response(200)
                        self.send_header("Content-Type", "text/plain")
                        self.send_header("Content-Length", str(size))
                        self.send_header("Connection", "close")
                        self.end_headers()
                        chunk = b"x" * 65536
                        for _ in range(size // len(chunk)):
                            self.wfile.write(chunk)
                    else:
                        self._answer(200, b"ok")
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

            do_POST = _handle
            do_GET = _handle
            do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        """Close the listening socket: connections to the port are refused until start()."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def got(self, tag):
        """The requests that came to /<tag> (and below it)."""
        with self.lock:
            return [r for r in self.records if r["path"].split("?")[0].strip("/").split("/")[0] == tag]


def receiver():
    if "recv" not in state:
        state["recv"] = Receiver()
    return state["recv"]


# --------------------------------------------------------------------------------------------
# signatures and event bodies

def sig_parts(header):
    """(t, [v1, ...]) of an X-Ducha-Signature header."""
    check(header, "no X-Ducha-Signature header")
    t, v1 = None, []
    for part in header.split(","):
        k, sep, v = part.strip().partition("=")
        check(sep, "X-Ducha-Signature part %r is not key=value (header %r)" % (part, header))
        if k == "t":
            check(t is None, "two t= in %r" % header)
            t = v
        elif k == "v1":
            v1.append(v)
    check(t is not None and re.match(r"^\d+$", t), "X-Ducha-Signature has no t=<unix seconds>: %r" % header)
    check(abs(int(t) - time.time()) <= 300, "t=%s is not within 5 minutes of now (%d)" % (t, time.time()))
    check(v1, "X-Ducha-Signature has no v1=: %r" % header)
    for v in v1:
        check(re.match(r"^[0-9a-f]{64}$", v), "v1=%r is not 64 lower-case hex digits" % v)
    return t, v1


def sign(secret, t, body):
    return hmac.new(secret.encode("utf-8"), t.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def signed_by(rec, secret):
    """Does any v1 of the request's signature match HMAC-SHA256(secret, "<t>.<raw body>")?"""
    t, v1 = sig_parts(rec["headers"].get("x-ducha-signature"))
    want = sign(secret, t, rec["body"])
    return any(hmac.compare_digest(v, want) for v in v1)


_event_validator = []


def event_schema_errors(body):
    """What openapi.yaml's components/schemas/WebhookEvent says is wrong with a delivered body."""
    if os.environ.get("DUCHA_TEST_NO_SPEC") == "1":
        return []
    if not _event_validator:
        sp = spec()
        if "WebhookEvent" not in ((sp.doc.get("components") or {}).get("schemas") or {}):
            return ["openapi.yaml has no components/schemas/WebhookEvent"]
        _event_validator.append(Draft202012Validator({"$ref": "#/components/schemas/WebhookEvent"},
                                                     resolver=sp.resolver, format_checker=sp.format_checker))
    return ["at /%s: %s" % ("/".join(str(x) for x in e.absolute_path), e.message[:200])
            for e in _event_validator[0].iter_errors(body)][:4]


def check_post(rec, secret):
    """The request is a delivery as the contract has it, signed with `secret`; returns its body."""
    h = rec["headers"]
    eq(rec["method"], "POST", "method of the delivery")
    eq((h.get("content-type") or "").split(";")[0].strip().lower(), "application/json", "Content-Type")
    eq(h.get("user-agent"), "ducha-webhooks/1", "User-Agent")
    check(signed_by(rec, secret), "X-Ducha-Signature %r does not sign the body with the secret (body %r)" % (
        h.get("x-ducha-signature"), rec["body"][:200]))
    try:
        body = json.loads(rec["body"].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TestFailure("delivery body is not JSON (%s): %r" % (exc, rec["body"][:300]))
    check(isinstance(body, dict), "delivery body is not an object")
    eq(sorted(body), BODY_KEYS, "members of the event body")
    errs = event_schema_errors(body)
    check(not errs, "the delivered event does not match openapi.yaml's WebhookEvent: %s" % "; ".join(errs))
    eq(h.get("x-ducha-event"), body["type"], "X-Ducha-Event vs body type")
    eq(h.get("x-ducha-event-id"), str(body["id"]), "X-Ducha-Event-Id vs body id")
    check(re.match(r"^\d+$", h.get("x-ducha-delivery") or ""), "X-Ducha-Delivery %r" % h.get("x-ducha-delivery"))
    check(body["type"] in EVENT_TYPES, "unknown event type %r" % body["type"])
    check(isinstance(body["id"], int) and body["id"] > 0, "event id %r" % body["id"])
    check(isinstance(body["occurred_at"], str) and DATETIME_RE.match(body["occurred_at"]),
          "occurred_at %r" % body["occurred_at"])
    rt = body["resource_type"]
    check(rt in HREF, "resource_type %r" % rt)
    check(isinstance(body["resource_id"], int), "resource_id %r" % body["resource_id"])
    eq(body["href"], HREF[rt] + str(body["resource_id"]), "href")
    if body["resource"] is not None:
        check(isinstance(body["resource"], dict), "resource is an object or null")
        eq(sorted(body["resource"]), RESOURCE_KEYS[rt], "members of the %s snapshot" % rt)
        eq(body["resource"].get("seq" if rt == "audit_checkpoint" else "id"), body["resource_id"],
           "the snapshot's id vs resource_id")
    ch = body["change"]
    check(isinstance(ch, dict), "change is an object")
    eq(sorted(ch), CHANGE_KEYS, "members of change")
    check(isinstance(ch["action"], str) and ch["action"], "change.action")
    check(isinstance(ch["audit_event_id"], int), "change.audit_event_id")
    return body


# --------------------------------------------------------------------------------------------
# the database, the servers and the users

def own_db():
    name = "ducha_t_%s_webhooks" % ctx.prefix
    state["dbs"].append(name)
    state["owner_url"], state["app_url"] = own_database(name)
    return state["owner_url"], state["app_url"]


def cli_user(username, role, department_id=None):
    """(user id, token) of a user made with the CLI in our database."""
    env = {"DATABASE_URL": state["app_url"], "DUCHA_MIGRATION_DATABASE_URL": state["owner_url"]}
    args = ["user", "create", "--username", username, "--role", role, "--password-stdin"]
    if department_id is not None:
        args += ["--department-id", str(department_id)]
    run_cli(args, stdin="pw-secret-1", env=env, check_rc=True)
    out = run_cli(["token", "create", "--user", username], env=env, check_rc=True).stdout
    m = re.search(r"dch_[A-Za-z0-9_-]{43}", out)
    token = m.group(0) if m else out.strip().split()[-1]
    uid = int(db("SELECT id FROM users WHERE username = '%s'" % username, url=state["owner_url"]))
    return uid, token


def start_server(env):
    """Stop the server we are on (if any), start one with env on our database, and make it the
    one ctx.server / ctx.admin and the helpers use. A metrics listener of its own."""
    cur = ctx.server
    if cur is not None and cur.alive():
        rc = cur.stop()
        check(rc == 0, "the server before exits 0 on SIGTERM (got %s): %s" % (rc, tail(cur.output(), 15)))
    mport = free_port()
    e = dict(env)
    e.setdefault("DUCHA_METRICS_LISTEN", "127.0.0.1:%d" % mport)
    e.setdefault("DUCHA_AUDIT_KEY_FILE", KEY_FILE)
    srv = Server(e, database_url=state["app_url"]).start()
    srv.metrics_port = mport
    state["servers"].append(srv)
    ctx.server = srv
    ctx.admin = Private(srv.client(state["tok_admin"]))
    return srv


def main_server():
    """The server with the allow-list and fast retries (started again when another ran)."""
    srv = ctx.server
    if srv is None or not srv.alive() or getattr(srv, "kind", None) != "main":
        srv = start_server(ALLOW_ENV)
        srv.kind = "main"
    return srv


def admin2():
    """A second admin: the four-eyes rule wants another person to close what one submitted."""
    return Private(ctx.server.client(state["tok_admin2"]))


def setup():
    state["cache_missing"] = []
    if "app_url" in state:
        return
    own_db()
    state["admin_id"], state["tok_admin"] = cli_user("wh_admin", "admin")
    state["admin2_id"], state["tok_admin2"] = cli_user("wh_admin2", "admin")
    receiver()
    main_server()


# --------------------------------------------------------------------------------------------
# subscriptions and deliveries

def new_secret(label="s"):
    return ("whsec-%s-%s-" % (label, ctx.prefix) + "0123456789abcdefghij")[:60]


def subscribe(tag, events, secret=None, client=None, **fields):
    """POST /webhooks for the receiver's /<tag>; returns (webhook, secret)."""
    secret = secret or new_secret(tag)
    body = {"url": receiver().url(tag), "events": events, "secret": secret}
    body.update(fields)
    r = (client or ctx.admin).post(API + "/webhooks", json=body)
    expect_status(r, 201, "subscribe %s" % tag)
    state.setdefault("subs", []).append(r.json["id"])
    return r.json, secret


def unsubscribe(wid):
    r = ctx.admin.get(API + "/webhooks/%d" % wid)
    if r.status == 404:
        return
    expect_status(r, 200)
    expect_status(ctx.admin.delete(API + "/webhooks/%d" % wid, if_match=r.etag), 204, "delete webhook %d" % wid)


def unsubscribe_all():
    for wid in state.pop("subs", []):
        unsubscribe(wid)


def deliveries(wid, status=None):
    path = API + "/webhooks/%d/deliveries" % wid
    if status:
        path += "?status=" + status
    return ctx.admin.list_all(path)


def delivery(did):
    r = ctx.admin.get(API + "/webhook-deliveries/%d" % did)
    expect_status(r, 200)
    return r.json


def wait_for(fn, timeout, what, interval=0.05):
    """Poll fn until it returns something truthy; its value, or TestFailure with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TestFailure("after %.1f s still waiting for %s (last: %s)" % (timeout, what, str(last)[:600]))
        time.sleep(interval)


def wait_delivered(wid, n, timeout=10):
    """Wait until webhook wid has n deliveries, all delivered; returns them."""
    def done():
        ds = deliveries(wid)
        return ds if len(ds) >= n and all(d["status"] == "delivered" for d in ds) else None
    try:
        return wait_for(done, timeout, "%d delivered deliveries of webhook %d" % (n, wid), interval=0.1)
    except TestFailure:
        raise TestFailure("webhook %d: expected %d delivered deliveries, the log has: %s" % (
            wid, n, json.dumps(deliveries(wid), ensure_ascii=False)[:1500]))


def by_event(recs):
    out = {}
    for rec in recs:
        out.setdefault(rec["headers"].get("x-ducha-event-id"), []).append(rec)
    return out


def no_store(r):
    """Note a webhook endpoint's response without Cache-Control: no-store (checked at the test's end)."""
    if "no-store" not in [x.strip().lower() for x in (r.h("Cache-Control") or "").split(",")]:
        state.setdefault("cache_missing", []).append("%s %s -> %d (Cache-Control %r)" % (
            r.method, re.sub(r"/\d+", "/{id}", r.path.split("?")[0]), r.status, r.h("Cache-Control")))
    return r


class Private:
    """A Client whose responses from the webhook endpoints have their Cache-Control noted (no_store)."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        f = getattr(self.client, name)
        if name not in ("req", "get", "post", "patch", "delete"):
            return f

        def wrapped(*args, **kw):
            r = f(*args, **kw)
            if "/webhook" in r.path.split("?")[0]:
                no_store(r)
            return r
        return wrapped


def all_private():
    """Every webhook endpoint answered with Cache-Control: no-store (the contract: R_PRIVATE)."""
    missing = sorted(set(state.pop("cache_missing", [])))
    check(not missing, "webhook responses without Cache-Control: no-store:\n  " + "\n  ".join(missing))


def no_secret_in(r, secret, keys=True):
    """Neither the secret's text nor (keys) a member named "secret" anywhere in r's body."""
    check(secret.encode("utf-8") not in (r.body or b""), "%s %s shows the secret" % (r.method, r.path))
    if not keys:
        return

    def walk(v, where):
        if isinstance(v, dict):
            check("secret" not in v, "%s %s has a member \"secret\" at %s" % (r.method, r.path, where or "/"))
            for k, x in v.items():
                walk(x, where + "/" + k)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, "%s/%d" % (where, i))
    walk(r.json, "")


# --------------------------------------------------------------------------------------------
# changes

class Case:
    """An inspection of fresh units, started, with one problem and `n` rectifications, submitted
    unless told otherwise (through the server we are on, as the admin)."""

    def __init__(self, n=1, submit=True):
        c = ctx.admin
        self.target = mk_dept(client=c)
        self.resp = mk_dept(client=c)
        self.other = mk_dept(client=c)
        self.insp = mk_inspection(self.target["id"], client=c)
        self.iid = self.insp["id"]
        expect_status(c.post(API + "/inspections/%d/start" % self.iid, json={}), 200, "start the inspection")
        self.item = items_of(self.iid, client=c)[0]
        self.problem = mk_problem(self.item["id"], client=c)
        self.rects = [mk_rect(self.problem["id"], self.resp["id"], client=c, deadline=day(30)) for _ in range(n)]
        self.rids = [x["id"] for x in self.rects]
        if submit:
            self.submitted = ok(c.post(API + "/inspections/%d/submit" % self.iid, json={}), "submit the inspection")


def ok(r, what, status=200):
    expect_status(r, status, what)
    return r.json


def urge(rid, client=None, request_id=None):
    h = {"X-Request-Id": request_id} if request_id else None
    return ok((client or ctx.admin).post(API + "/rectifications/%d/urge" % rid, json={}, headers=h), "urge %d" % rid)


def evidence(rid, client=None):
    name = ctx.uniq("佐证") + ".pdf"
    r = upload(client or ctx.admin, "/rectifications/%d/evidence" % rid, make_pdf(), name, "application/pdf")
    return ok(r, "upload evidence to %d" % rid, 201)


# --------------------------------------------------------------------------------------------
# tests

@test
def setup_own_database_receiver_and_server():
    setup()
    r = ctx.admin.get(API + "/webhooks")
    expect_status(r, 200, "the webhooks exist on this build")


@test
def subscriptions_crud_validation_and_admin_only():
    setup()
    main_server()
    a = ctx.admin
    secret = new_secret("crud")
    body = {"url": receiver().url("crud"), "events": ["rectification.urged", "inspection.created"],
            "secret": secret, "description": "测试订阅"}
    r = a.post(API + "/webhooks", json=body)
    expect_status(r, 201, "create")
    w = r.json
    state.setdefault("subs", []).append(w["id"])
    eq(sorted(w), WEBHOOK_KEYS, "members of Webhook")
    eq(r.h("Location"), API + "/webhooks/%d" % w["id"], "Location")
    check(r.etag, "ETag on 201")
    eq((w["url"], w["events"], w["description"], w["active"], w["secret_rotated_at"],
        w["previous_secret_valid_until"], w["created_by"]),
       (body["url"], body["events"], "测试订阅", True, None, None, state["admin_id"]), "the webhook as created")
    no_secret_in(r, secret)
    g = a.get(API + "/webhooks/%d" % w["id"])
    expect_status(g, 200)
    eq(g.json, w, "GET /webhooks/{id}")
    check(g.etag, "ETag on GET")
    no_secret_in(g, secret)

    # a list, in pages, ordered by id, with the total
    others = [subscribe("crud%d" % i, ["evidence.added"])[0]["id"] for i in range(2)]
    lst = a.get(API + "/webhooks?limit=2&include_total=true")
    expect_status(lst, 200)
    no_secret_in(lst, secret)
    eq(lst.json.get("total"), 3, "total")
    eq([x["id"] for x in lst.json["data"]], [w["id"], others[0]], "first page, by id ascending")
    check(lst.json.get("next_cursor"), "next_cursor on a full first page")
    nxt = a.get(API + "/webhooks?limit=2&cursor=" + urllib.parse.quote(lst.json["next_cursor"], safe=""))
    expect_status(nxt, 200)
    eq([x["id"] for x in nxt.json["data"]], [others[1]], "second page")
    check(not nxt.json.get("next_cursor"), "no next_cursor on the last page")

    # validation: every case is tried, the wrong answers reported together at the end
    wrong = []

    def bad(b, pointer, path=API + "/webhooks", method="post", **kw):
        r = getattr(a, method)(path, json=b, **kw)
        try:
            expect_problem(r, 400, "validation-failed")
            ps = pointers_of(r)
            check(pointer in ps or (pointer == "/events" and any(x.startswith("/events/") for x in ps)),
                  "expected errors[] at %s, got %s" % (pointer, ps))
            check("database" not in (r.json.get("detail") or "").lower(),
                  "the detail shows the database's message: %r" % r.json.get("detail"))
        except TestFailure as exc:
            wrong.append("%s %s %s: %s (detail %r)" % (method.upper(), path, json.dumps(b, ensure_ascii=False)[:160],
                                                       exc, (r.json or {}).get("detail")))
        return r
    ok_body = {"url": receiver().url("crud"), "events": ["rectification.urged"], "secret": new_secret("v")}
    bad(dict(ok_body, bogus=1), "/bogus")
    bad(dict(ok_body, events=["rectification.urged", "no.such.event"]), "/events/1")
    bad(dict(ok_body, events=["nope"]), "/events/0")
    bad(dict(ok_body, events=[]), "/events")
    bad(dict(ok_body, events="rectification.urged"), "/events")
    bad(dict(ok_body, events=["rectification.urged", "rectification.urged"]), "/events")
    bad(dict(ok_body, events=EVENT_TYPES + ["x%d" % i for i in range(7)]), "/events")
    bad(dict(ok_body, secret="short-secret-23-chars-x"[:23]), "/secret")
    bad(dict(ok_body, secret="x" * 257), "/secret")
    bad({k: v for k, v in ok_body.items() if k != "secret"}, "/secret")
    bad({k: v for k, v in ok_body.items() if k != "url"}, "/url")
    bad(dict(ok_body, url="ftp://127.0.0.1:%d/x" % receiver().port), "/url")
    bad(dict(ok_body, url="http://user:pass@127.0.0.1:%d/x" % receiver().port), "/url")
    bad(dict(ok_body, url="http://127.0.0.1:%d/x#frag" % receiver().port), "/url")
    bad(dict(ok_body, url="not a url"), "/url")
    bad(dict(ok_body, url="http://127.0.0.1:%d/" % receiver().port + "a" * 2000), "/url")
    bad(dict(ok_body, description=""), "/description")
    bad(dict(ok_body, active="yes"), "/active")
    eq(a.get(API + "/webhooks?include_total=true").json.get("total"), 3, "nothing was made by the refusals")
    # the same rules on PATCH
    p = API + "/webhooks/%d" % w["id"]
    for field, value, pointer in (("events", [], "/events"), ("events", ["bad.type"], "/events/0"),
                                  ("secret", "short", "/secret"), ("url", "ftp://127.0.0.1/x", "/url"),
                                  ("description", "", "/description"), ("bogus", True, "/bogus"),
                                  ("active", None, "/active"), ("url", None, "/url")):
        bad({field: value}, pointer, path=p, method="patch", ctype=MERGE, if_match=a.get(p).etag)

    # PATCH: If-Match required, events change, the ETag moves
    expect_problem(a.patch(p, json={"events": ["evidence.added"]}, ctype=MERGE), 428, "precondition-required")
    expect_problem(a.patch(p, json={"events": ["evidence.added"]}, ctype=MERGE, if_match='"999"'), 412,
                   "precondition-failed")
    r = a.patch(p, json={"events": ["evidence.added", "audit.checkpoint"], "description": None, "active": False},
                ctype=MERGE, if_match=g.etag)
    expect_status(r, 200, "PATCH events")
    no_secret_in(r, secret)
    eq((r.json["events"], r.json["description"], r.json["active"]),
       (["evidence.added", "audit.checkpoint"], None, False), "patched")
    check(r.etag and r.etag != g.etag, "the ETag changes with a PATCH (%r, %r)" % (g.etag, r.etag))
    eq(r.json["secret_rotated_at"], None, "no rotation without a new secret")
    eq(a.get(p).json, r.json, "GET after PATCH")

    # deliveries of a webhook: empty; of an unknown one: 404; unknown delivery: 404
    eq(deliveries(w["id"]), [], "no deliveries yet")
    expect_status(a.get(API + "/webhooks/%d/deliveries?status=pending" % w["id"]), 200, "status filter")
    expect_problem(a.get(API + "/webhooks/%d/deliveries?status=bogus" % w["id"]), 400)
    expect_problem(a.get(API + "/webhooks/999999999/deliveries"), 404, "not-found")
    expect_problem(a.get(API + "/webhook-deliveries/999999999"), 404, "not-found")
    expect_problem(a.post(API + "/webhook-deliveries/999999999/redeliver", json={}), 404, "not-found")

    # the audit trail knows of the webhook, never of its secret
    au = a.get(API + "/audit-events?entity_type=webhook&entity_id=%d" % w["id"])
    expect_status(au, 200)
    check(len(au.json["data"]) >= 2, "audit events of the webhook (create, update): %s" % au.json["data"])
    no_secret_in(au, secret, keys=False)
    au_all = a.get(API + "/audit-events?entity_type=webhook&limit=200")
    expect_status(au_all, 200)
    no_secret_in(au_all, secret, keys=False)

    # DELETE: If-Match required, then gone
    expect_problem(a.delete(p), 428, "precondition-required")
    cur = a.get(p)
    expect_status(a.delete(p, if_match=cur.etag), 204, "DELETE")
    expect_problem(a.get(p), 404, "not-found")
    expect_problem(a.get(API + "/webhooks/%d/deliveries" % w["id"]), 404, "not-found")

    # admins only
    dept = mk_dept(client=a)
    _, dtok = cli_user("wh_dept_%s" % ctx.prefix, "department", dept["id"])
    d = ctx.server.client(dtok)
    expect_problem(d.get(API + "/webhooks"), 403, "forbidden")
    expect_problem(d.post(API + "/webhooks", json=ok_body), 403, "forbidden")
    expect_problem(d.get(API + "/webhooks/%d" % others[0]), 403, "forbidden")
    _, itok = cli_user("wh_insp_%s" % ctx.prefix, "inspector")
    expect_problem(ctx.server.client(itok).get(API + "/webhooks"), 403, "forbidden")
    expect_problem(ctx.server.client().get(API + "/webhooks"), 401, "unauthorized")
    unsubscribe_all()
    missing = sorted(set(state.pop("cache_missing", [])))
    if missing:
        wrong.append("webhook responses without Cache-Control: no-store: " + "; ".join(missing))
    check(not wrong, "%d case(s) answered wrongly:\n  %s" % (len(wrong), "\n  ".join(wrong)))


SSRF_URLS = ["http://127.0.0.1:9/x", "http://localhost:9/", "http://10.0.0.1/", "http://192.168.1.1/",
             "http://172.16.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]:9/", "http://[fe80::1]/",
             "http://0.0.0.0/", "http://100.64.0.1/", "http://[::ffff:127.0.0.1]/", "http://2130706433/",
             "http://[::]/", "http://224.0.0.1/", "http://[fc00::1]/", "http://172.31.255.254/"]


@test
def ssrf_addresses_are_refused_at_registration_and_at_delivery():
    setup()
    main_server()
    a = ctx.admin
    recv = receiver()
    body = {"events": ["rectification.urged"], "secret": new_secret("ssrf")}
    # the allow-list server takes 127.0.0.1, and only that
    r = a.post(API + "/webhooks", json=dict(body, url="http://127.0.0.1:%d/" % recv.port))
    expect_status(r, 201, "127.0.0.1 with DUCHA_WEBHOOK_ALLOW=127.0.0.1/32")
    unsubscribe(r.json["id"])
    for url in ("http://10.0.0.1/", "http://[::1]:9/", "http://169.254.169.254/"):
        expect_problem(a.post(API + "/webhooks", json=dict(body, url=url)), 400, "validation-failed",
                       pointers=["/url"])
    # registered while allowed; the change is then made on a server without the allow-list
    case = Case()
    w, _ = subscribe("refused", ["rectification.urged"])
    srv = start_server(BASE_ENV)  # no DUCHA_WEBHOOK_ALLOW; the delivery loop runs
    srv.kind = "no-allow"
    a = ctx.admin
    total = a.get(API + "/webhooks?include_total=true").json.get("total")
    for url in SSRF_URLS + ["http://127.0.0.1:%d/" % recv.port]:
        r = a.post(API + "/webhooks", json=dict(body, url=url))
        if r.status != 400:
            raise TestFailure("POST /webhooks with url %s: expected 400 at /url, got %d: %s" % (
                url, r.status, r.body[:300]))
        expect_problem(r, 400, "validation-failed", pointers=["/url"])
    p = API + "/webhooks/%d" % w["id"]
    expect_problem(a.patch(p, json={"url": "http://10.1.2.3/"}, ctype=MERGE, if_match=a.get(p).etag), 400,
                   "validation-failed", pointers=["/url"])
    eq(a.get(API + "/webhooks?include_total=true").json.get("total"), total, "no webhook made by the refusals")
    urge(case.rids[0])
    d = wait_for(lambda: [x for x in deliveries(w["id"]) if x["attempts"] >= 1 and x["error"]], 10,
                 "an attempt at the delivery")[0]
    check(d["error"] and d["error"].startswith("refused"), "the error of a refused address: %r" % d["error"])
    check("127.0.0.1" in d["error"], "the error names the address: %r" % d["error"])
    eq((d["status"], d["response_status"]), ("pending", None), "refused: retried later, no HTTP status")
    check(d["next_attempt_at"], "next_attempt_at of a pending delivery")
    time.sleep(0.3)
    eq(recv.got("refused"), [], "the receiver got nothing")
    unsubscribe_all()
    main_server()


@test
def every_event_arrives_once_signed():
    setup()
    main_server()
    a = ctx.admin
    recv = receiver()
    me = state["admin_id"]
    c = Case(n=1, submit=False)
    # c's inspection was made before the subscription: the created event comes from a second one
    w, secret = subscribe("all", list(EVENT_TYPES))
    insp = mk_inspection(c.target["id"], client=a)
    rid = c.rids[0]
    expected = []   # (type, resource_id, check(body), request id)

    def exp(etype, res_id, fn=None, rq=None):
        expected.append((etype, res_id, fn or (lambda b: None), rq))

    def status_is(s):
        return lambda b: eq(b["resource"]["status"], s, "resource.status of %s" % b["type"])
    exp("inspection.created", insp["id"], status_is(insp["status"]))
    rq = "wh-submit-%s" % ctx.prefix
    r = a.post(API + "/inspections/%d/submit" % c.iid, json={}, headers={"X-Request-Id": rq})
    expect_status(r, 200, "submit")
    exp("inspection.submitted", c.iid, status_is("submitted"), rq)
    rq = "wh-urge-%s" % ctx.prefix
    urge(rid, request_id=rq)
    exp("rectification.urged", rid, lambda b: eq((b["resource"]["urge_count"], b["resource"]["status"]),
                                                 (1, "pending"), "urge_count, status"), rq)
    ok(a.post(API + "/rectifications/%d/extend" % rid, json={"deadline": day(45), "reason": "延期"}), "extend")
    exp("rectification.deadline_changed", rid, lambda b: eq(b["resource"]["deadline"], day(45), "deadline"))
    ok(a.post(API + "/rectifications/%d/reassign" % rid,
              json={"responsible_department_id": c.other["id"], "reason": "职责调整"}), "reassign")
    exp("rectification.reassigned", rid,
        lambda b: eq(b["resource"]["responsible_department_id"], c.other["id"], "responsible_department_id"))
    ok(a.post(API + "/rectifications/%d/start" % rid, json={}), "start")
    ev = evidence(rid)
    exp("evidence.added", ev["id"], lambda b: eq((b["resource"]["rectification_id"], b["resource"]["sha256"],
                                                  b["resource"]["size"]), (rid, ev["sha256"], ev["size"]), "evidence"))
    ok(a.post(API + "/rectifications/%d/submit" % rid, json={}), "submit the rectification")
    ok(admin2().post(API + "/rectifications/%d/close" % rid, json={"opinion": "同意销号"}), "close")
    for before, after in (("pending", "in_progress"), ("in_progress", "submitted"), ("submitted", "closed")):
        def chk(b, before=before, after=after):
            eq(b["resource"]["status"], after, "status_changed snapshot")
            eq((b["change"]["before"] or {}).get("status"), before, "change.before.status")
            eq((b["change"]["after"] or {}).get("status"), after, "change.after.status")
        exp("rectification.status_changed", rid, chk)
    exp("inspection.closed", c.iid, status_is("closed"))
    ok(a.post(API + "/inspections/%d/publish" % c.iid, json={}), "publish")
    exp("inspection.published", c.iid, lambda b: eq(b["resource"]["published"], True, "published"))
    ok(a.post(API + "/inspections/%d/unpublish" % c.iid, json={}), "unpublish")
    exp("inspection.unpublished", c.iid, lambda b: eq(b["resource"]["published"], False, "published"))
    ok(a.post(API + "/inspections/%d/reopen" % c.iid, json={"reason": "复核发现记录有误"}), "reopen")
    exp("inspection.reopened", c.iid, status_is("in_progress"))
    cp = a.post(API + "/audit-events/checkpoints", json={})
    expect_status(cp, 201, "an audit checkpoint")
    exp("audit.checkpoint", cp.json["seq"], lambda b: eq(b["resource"]["signature"], cp.json["signature"], "signature"))

    n = len(expected)
    try:
        wait_for(lambda: len(by_event(recv.got("all"))) >= n, 15, "%d events at the receiver" % n)
    except TestFailure:
        raise TestFailure("expected %d events, the receiver got %s; the log has %s" % (
            n, sorted(x["headers"].get("x-ducha-event") for x in recv.got("all")),
            [(d["event_type"], d["status"], d["attempts"], d["error"]) for d in deliveries(w["id"])]))
    time.sleep(0.5)  # a second arrival would come now
    got = by_event(recv.got("all"))
    bodies = []
    for eid, recs in got.items():
        check(len(recs) == 1, "event %s arrived %d times (deliveries %s)" % (
            eid, len(recs), [x["headers"].get("x-ducha-delivery") for x in recs]))
        bodies.append(check_post(recs[0], secret))
    eq(len(bodies), n, "events at the receiver (types: %s)" % sorted(b["type"] for b in bodies))
    left = list(bodies)
    wrong = []  # what is wrong with an event, reported after the log's checks
    for etype, res_id, fn, rq in expected:
        cands = [b for b in left if b["type"] == etype and b["resource_id"] == res_id]
        check(cands, "no %s for %d among %s" % (etype, res_id, [(b["type"], b["resource_id"]) for b in left]))
        errors = []
        for b in cands:
            try:
                check(b["resource"] is not None, "%s of %s %d: resource is null, yet the record exists (the snapshot"
                      " at the change, per the contract)" % (etype, b["resource_type"], res_id))
                fn(b)
                if rq:
                    eq(b["change"]["request_id"], rq, "change.request_id")
                if etype != "audit.checkpoint":
                    eq(b["change"]["actor_id"], state["admin2_id"] if b["change"]["action"] == "close" else me,
                       "change.actor_id")
                left.remove(b)
                break
            except TestFailure as exc:
                errors.append(str(exc))
        else:
            wrong.append("%s of %d: %s" % (etype, res_id, "; ".join(errors)))
            left.remove(cands[0])
    eq(left, [], "events nobody expected")
    # the log: each delivered at the first attempt with HTTP 200, and GET one gives the event
    ds = wait_delivered(w["id"], n)
    eq(len(ds), n, "deliveries in the log")
    for d in ds:
        eq(sorted(d), DELIVERY_KEYS, "members of WebhookDelivery")
        eq((d["webhook_id"], d["status"], d["attempts"], d["response_status"], d["error"], d["redelivery_of"],
            d["next_attempt_at"], d["failed_at"]),
           (w["id"], "delivered", 1, 200, None, None, None, None), "delivery %d" % d["id"])
        check(d["delivered_at"] and d["last_attempt_at"] and isinstance(d["duration_ms"], int),
              "delivered_at, last_attempt_at, duration_ms: %s" % d)
        eq(d["response_excerpt"], "ok", "response_excerpt")
    eq([d["id"] for d in ds], sorted((d["id"] for d in ds), reverse=True), "deliveries newest first")
    eq(sorted(d["event_id"] for d in ds), sorted(b["id"] for b in bodies), "the log's events vs the receiver's")
    by_id = {str(b["id"]): b for b in bodies}
    one = ds[0]
    g = delivery(one["id"])
    eq(sorted(g), sorted(DELIVERY_KEYS + ["event"]), "GET /webhook-deliveries/{id} members")
    eq(g["event"], by_id[str(one["event_id"])], "the event in the log is the body the receiver got")
    eq(got[str(one["event_id"])][0]["headers"].get("x-ducha-delivery"), str(one["id"]), "X-Ducha-Delivery")
    eq(len(deliveries(w["id"], "delivered")), n, "?status=delivered")
    eq(deliveries(w["id"], "pending"), [], "?status=pending")
    state["delivered"] = one  # redelivered by failures_are_retried_and_redeliveries_made, which deletes w
    state["delivered_secret"] = secret
    state["subs"].remove(w["id"])
    # an inactive subscription gets nothing
    p = API + "/webhooks/%d" % w["id"]
    expect_status(a.patch(p, json={"active": False}, ctype=MERGE, if_match=a.get(p).etag), 200)
    mk_inspection(c.target["id"], client=a)
    time.sleep(0.5)
    eq(len(recv.got("all")), n, "nothing for an inactive subscription")
    eq(len(deliveries(w["id"])), n, "no delivery made for an inactive subscription")
    check(not wrong, "events not as the contract has them:\n  " + "\n  ".join(wrong))


@test
def a_receiver_down_for_a_while_gets_each_event_once():
    setup()
    main_server()
    r2 = Receiver()
    secret = new_secret("down")
    r = ctx.admin.post(API + "/webhooks", json={"url": r2.url("down"), "events": ["rectification.urged"],
                                                "secret": secret})
    expect_status(r, 201)
    w = r.json
    state.setdefault("subs", []).append(w["id"])
    case = Case(n=3)
    r2.stop()
    for rid in case.rids:
        urge(rid)

    def retried():
        ds = deliveries(w["id"])
        return ds if len(ds) == 3 and all(d["attempts"] >= 2 and d["error"] for d in ds) else None
    ds = wait_for(retried, 10, "3 deliveries with 2 attempts and an error", interval=0.1)
    for d in ds:
        eq((d["status"], d["response_status"]), ("pending", None), "a refused connection")
        check(re.search(r"refused|connect", d["error"], re.I), "the error of a refused connection: %r" % d["error"])
    r2.start()
    ds = wait_delivered(w["id"], 3, timeout=15)
    time.sleep(0.5)
    recs = r2.got("down")
    got = by_event(recs)
    eq(len(got), 3, "events at the receiver")
    for eid, rs in got.items():
        eq(len(rs), 1, "arrivals of event %s" % eid)
        b = check_post(rs[0], secret)
        eq(b["type"], "rectification.urged", "type")
    eq(sorted(b for b in (json.loads(x["body"])["resource_id"] for x in recs)), sorted(case.rids), "the urged ones")
    for d in ds:
        eq(d["status"], "delivered", "status")
        check(d["attempts"] >= 2, "attempts %d >= 2" % d["attempts"])
        eq((d["response_status"], d["error"], d["next_attempt_at"]), (200, None, None),
           "the last attempt's status and no error")
    r2.stop()
    unsubscribe_all()


@test
def two_replicas_deliver_each_event_once():
    """Both delivery loops wake on every change's NOTIFY and race for the same rows: each event
    still goes out once (FOR UPDATE SKIP LOCKED and the lease)."""
    setup()
    main_server()
    other = Server(dict(ALLOW_ENV, DUCHA_METRICS_LISTEN="off", DUCHA_AUDIT_KEY_FILE=KEY_FILE),
                   database_url=state["app_url"]).start()
    state["servers"].append(other)
    r2 = Receiver()
    secret = new_secret("two")
    w = ok(ctx.admin.post(API + "/webhooks", json={"url": r2.url("two"), "events": ["rectification.urged"],
                                                   "secret": secret}), "subscribe", 201)
    state.setdefault("subs", []).append(w["id"])
    case = Case(n=10)
    clients = [ctx.admin, other.client(state["tok_admin"])]
    for rnd in range(3):
        for i, rid in enumerate(case.rids):
            urge(rid, client=clients[(i + rnd) % 2])
    wait_delivered(w["id"], 30, timeout=20)
    time.sleep(0.5)
    got = by_event(r2.got("two"))
    eq(len(got), 30, "events at the receiver")
    twice = {eid: len(rs) for eid, rs in got.items() if len(rs) != 1}
    check(not twice, "events that arrived more than once: %s" % twice)
    for rs in got.values():
        check_post(rs[0], secret)
    eq(other.stop(), 0, "the second replica exits 0 on SIGTERM: %s" % tail(other.output(), 15))
    r2.stop()
    unsubscribe_all()


@test
def a_slow_receiver_does_not_hold_up_the_others():
    """A subscription has at most half of DUCHA_WEBHOOK_CONCURRENCY's attempts under way: with 2,
    a receiver that never answers in time holds one, and another subscription's events go out
    through the other at once."""
    setup()
    start_server(dict(ALLOW_ENV, DUCHA_WEBHOOK_CONCURRENCY="2"))
    recv = receiver()
    recv.set_mode("slow", "sleep")
    slow, _ = subscribe("slow", ["rectification.urged"])
    fast, _ = subscribe("fast", ["rectification.urged"])
    case = Case(n=6)
    started = time.monotonic()
    for rid in case.rids:
        urge(rid)
    wait_delivered(fast["id"], 6, timeout=15)
    took = time.monotonic() - started
    check(took < 1.5, "the other subscription's 6 events took %.2f s behind a receiver that times out (1 s)" % took)
    check(len(recv.got("slow")) <= 3, "the slow receiver had one attempt at a time: %d" % len(recv.got("slow")))
    unsubscribe(slow["id"])
    unsubscribe(fast["id"])


@test
def failures_are_retried_and_redeliveries_made():
    setup()
    main_server()
    a = ctx.admin
    recv = receiver()
    case = Case(n=4)

    def failing(tag, mode, rid, attempts, ready=lambda d: d["response_status"]):
        """Subscribes the receiver's /tag answering in mode, urges rid, waits for that many attempts:
        (webhook, secret, its delivery)."""
        recv.set_mode(tag, mode)
        w, secret = subscribe(tag, ["rectification.urged"])
        urge(rid)
        ds = wait_for(lambda: [d for d in deliveries(w["id"]) if d["attempts"] >= attempts and ready(d)], 10,
                      "%d attempts in mode %s" % (attempts, mode))
        return w, secret, ds[0]

    # 500: retried with the backoff, the error says so, the body excerpt is kept
    w500, s500, d = failing("e500", "500", case.rids[0], 3)
    eq((d["status"], d["response_status"], d["error"]), ("pending", 500, "HTTP 500"), "after HTTP 500")
    eq(d["response_excerpt"], "boom: the receiver is broken", "response_excerpt")
    check(d["next_attempt_at"] and d["last_attempt_at"], "next_attempt_at, last_attempt_at")
    recs = recv.got("e500")
    check(len(recs) >= 3, "the receiver got every attempt (%d)" % len(recs))
    eq(len({x["headers"].get("x-ducha-event-id") for x in recs}), 1, "the same event each time")
    eq(len({x["headers"].get("x-ducha-delivery") for x in recs}), 1, "the same delivery each time")
    eq(len({x["body"] for x in recs}), 1, "the same body each time")
    for x in recs:
        check_post(x, s500)
    gaps = [round(recs[i + 1]["mono"] - recs[i]["mono"], 3) for i in range(min(len(recs), 4) - 1)]
    for i, g in enumerate(gaps):
        # not before the backoff, and not held back to the next poll (DUCHA_WEBHOOK_POLL_MS, 1 s)
        check(0.2 * 2 ** i - 0.05 <= g < 0.2 * 2 ** i + 0.6,
              "retry %d came %.3f s after the attempt before: the backoff is 200 ms x 2^%d" % (i + 1, g, i))
    note("gaps between attempts after HTTP 500: %s s" % gaps)
    unsubscribe(w500["id"])

    # 302: never followed, a failure
    w302, _, d = failing("e302", "redirect", case.rids[1], 2)
    eq((d["status"], d["response_status"]), ("pending", 302), "after a 302")
    check(d["error"], "an error for a redirect: %r" % d["error"])
    time.sleep(0.3)
    eq(recv.got("e302-target"), [], "the redirect's target got nothing")
    unsubscribe(w302["id"])

    # too slow: a timeout
    t0 = time.monotonic()
    wslow, _, d = failing("slow", "sleep", case.rids[2], 1, ready=lambda d: d["error"])
    took = time.monotonic() - t0
    eq(d["status"], "pending", "after a timeout")
    check(d["error"] and "timeout" in d["error"].lower(), "the error mentions the timeout: %r" % d["error"])
    check(took < SLEEP_S - 0.5, "the attempt was given up after about DUCHA_WEBHOOK_TIMEOUT_MS (1 s), not the"
                                " receiver's %.0f s: %.2f s" % (SLEEP_S, took))
    check(d["duration_ms"] is None or 900 <= d["duration_ms"] < SLEEP_S * 1000 - 500,
          "duration_ms %r" % d["duration_ms"])
    unsubscribe(wslow["id"])

    # a 10 MB answer: 200 counts, at most 64 KiB is read, 512 bytes kept
    recv.set_mode("huge", "huge")
    whuge, _ = subscribe("huge", ["rectification.urged"])
    urge(case.rids[3])
    ds = wait_delivered(whuge["id"], 1, timeout=10)
    d = ds[0]
    eq((d["status"], d["attempts"], d["response_status"]), ("delivered", 1, 200), "a 200 with a 10 MB body")
    excerpt = d["response_excerpt"]
    check(excerpt is not None and len(excerpt.encode("utf-8")) <= 512 and set(excerpt) <= {"x"},
          "response_excerpt of at most 512 bytes: %r" % (excerpt or "")[:40])
    unsubscribe(whuge["id"])

    # redelivery of a delivered one: a new delivery of the same event, which arrives again
    prev = state.get("delivered")
    if prev is None:
        wok, sok = subscribe("redo", ["rectification.urged"])
        urge(case.rids[0])
        prev = wait_delivered(wok["id"], 1)[0]
        tag = "redo"
    else:
        sok = state["delivered_secret"]
        tag = "all"
        state.setdefault("subs", []).append(prev["webhook_id"])
        p = API + "/webhooks/%d" % prev["webhook_id"]
        expect_status(a.patch(p, json={"active": True}, ctype=MERGE, if_match=a.get(p).etag), 200, "active again")
    before = len(recv.got(tag))
    r = a.post(API + "/webhook-deliveries/%d/redeliver" % prev["id"])
    expect_status(r, 201, "redeliver a delivered delivery (no body)")
    nd = r.json
    # the contract says WebhookDelivery; openapi.yaml WebhookDeliveryDetail (with the event): either
    check(sorted(nd) in (DELIVERY_KEYS, sorted(DELIVERY_KEYS + ["event"])),
          "members of the new delivery: %s" % sorted(nd))
    if "event" in nd:
        eq(nd["event"], delivery(prev["id"])["event"], "the event of the redelivery")
    eq(r.h("Location"), API + "/webhook-deliveries/%d" % nd["id"], "Location")
    eq((nd["redelivery_of"], nd["event_id"], nd["event_type"], nd["webhook_id"]),
       (prev["id"], prev["event_id"], prev["event_type"], prev["webhook_id"]), "the redelivery")
    check(nd["id"] != prev["id"], "a new delivery")
    wait_for(lambda: len(recv.got(tag)) > before, 10, "the redelivery at the receiver")
    time.sleep(0.3)
    again = recv.got(tag)[before:]
    eq(len(again), 1, "one arrival of the redelivery")
    b = check_post(again[0], sok)
    eq(b["id"], prev["event_id"], "the same event id again")
    eq(again[0]["headers"].get("x-ducha-delivery"), str(nd["id"]), "X-Ducha-Delivery of the redelivery")
    eq(json.loads(again[0]["body"]), delivery(prev["id"])["event"], "the same event body")
    dd = wait_for(lambda: (lambda x: x if x["status"] == "delivered" else None)(delivery(nd["id"])), 10,
                  "the redelivery delivered")
    eq((dd["attempts"], dd["response_status"]), (1, 200), "the redelivery's attempt")
    eq(delivery(prev["id"])["status"], "delivered", "the first delivery stays as it was")
    r = a.post(API + "/webhook-deliveries/%d/redeliver" % prev["id"], json={})
    expect_status(r, 201, "redeliver with {}")
    wait_for(lambda: delivery(r.json["id"])["status"] == "delivered", 10, "the second redelivery")
    unsubscribe_all()

    # a short DUCHA_WEBHOOK_RETRY_FOR: failed in the end; a redelivery of a pending one is 409
    srv = start_server(dict(ALLOW_ENV, DUCHA_WEBHOOK_RETRY_FOR="2"))
    srv.kind = "give-up"
    a = ctx.admin
    recv.set_mode("gone", "500")
    wgone, _ = subscribe("gone", ["rectification.urged"])
    t0 = time.monotonic()
    urge(case.rids[1])
    ds = wait_for(lambda: [d for d in deliveries(wgone["id"]) if d["status"] == "failed"], 10, "the delivery failed")
    d = ds[0]
    check(time.monotonic() - t0 >= 1.0, "failed after about DUCHA_WEBHOOK_RETRY_FOR (2 s), not sooner: %.2f s" % (
        time.monotonic() - t0))
    check(d["failed_at"], "failed_at: %s" % d)
    eq((d["next_attempt_at"], d["delivered_at"], d["response_status"], d["error"]), (None, None, 500, "HTTP 500"),
       "a failed delivery")
    check(d["attempts"] >= 2, "attempts %d" % d["attempts"])
    n_failed = len(recv.got("gone"))
    eq(n_failed, d["attempts"], "the receiver saw each attempt")
    eq(len(deliveries(wgone["id"], "failed")), 1, "?status=failed")
    r = a.post(API + "/webhook-deliveries/%d/redeliver" % d["id"], json={})
    expect_status(r, 201, "redeliver a failed one")
    nd = r.json
    eq((nd["status"], nd["redelivery_of"]), ("pending", d["id"]), "a new pending delivery")
    expect_problem(a.post(API + "/webhook-deliveries/%d/redeliver" % nd["id"], json={}), 409, "conflict",
                   slugs=["conflict", "invalid-transition"])
    wait_for(lambda: delivery(nd["id"])["status"] == "failed", 10, "the redelivery failed too")
    time.sleep(0.3)
    state["give_up_metrics"] = scrape_metrics(srv.metrics_port)[2]
    unsubscribe_all()
    main_server()
    all_private()


@test
def a_new_secret_signs_beside_the_old_one_for_the_overlap():
    setup()
    main_server()
    a = ctx.admin
    recv = receiver()
    w, old = subscribe("rot", ["rectification.urged"])
    case = Case(n=1)
    urge(case.rids[0])
    wait_delivered(w["id"], 1)
    first = recv.got("rot")
    eq(len(first), 1, "one arrival before the rotation")
    eq(len(sig_parts(first[0]["headers"]["x-ducha-signature"])[1]), 1, "one v1 before the rotation")
    check(signed_by(first[0], old), "signed with the secret")
    new = new_secret("rot2")
    p = API + "/webhooks/%d" % w["id"]
    t0 = _dt.datetime.now(_dt.timezone.utc)
    r = a.patch(p, json={"secret": new}, ctype=MERGE, if_match=a.get(p).etag)
    expect_status(r, 200, "PATCH secret")
    no_secret_in(r, new)
    no_secret_in(r, old)
    x = r.json
    check(x["secret_rotated_at"] and x["previous_secret_valid_until"], "rotation times set: %s" % x)
    rot = _dt.datetime.fromisoformat(x["secret_rotated_at"].replace("Z", "+00:00"))
    until = _dt.datetime.fromisoformat(x["previous_secret_valid_until"].replace("Z", "+00:00"))
    check(abs((rot - t0).total_seconds()) < 5, "secret_rotated_at %s is now (%s)" % (rot, t0))
    check(abs((until - rot).total_seconds() - OVERLAP_S) < 2,
          "previous_secret_valid_until %s is DUCHA_WEBHOOK_SECRET_OVERLAP (%d s) after the rotation %s" % (
              until, OVERLAP_S, rot))
    urge(case.rids[0])
    wait_delivered(w["id"], 2)
    after = recv.got("rot")[1:]
    eq(len(after), 1, "one arrival after the rotation")
    rec = after[0]
    t, v1 = sig_parts(rec["headers"]["x-ducha-signature"])
    eq(len(v1), 2, "two v1 during the overlap (%r)" % rec["headers"]["x-ducha-signature"])
    eq(v1[0], sign(new, t, rec["body"]), "the first v1 is by the new secret")
    eq(v1[1], sign(old, t, rec["body"]), "the second v1 is by the previous secret")
    check_post(rec, new)
    au = a.get(API + "/audit-events?entity_type=webhook&entity_id=%d" % w["id"])
    expect_status(au, 200)
    no_secret_in(au, new, keys=False)
    no_secret_in(au, old, keys=False)
    unsubscribe_all()


def metric(text, name, **labels):
    """The sum of the samples of name with those labels (None when there is none)."""
    total = None
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        ls = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(ls.get(k) == v for k, v in labels.items()):
            total = (total or 0) + float(m.group(4))
    return total


@test
def metrics_count_the_deliveries():
    setup()
    srv = main_server()
    status, ctype, text = scrape_metrics(srv.metrics_port)
    eq(status, 200, "GET /metrics")
    delivered = metric(text, "ducha_webhook_deliveries_total", outcome="delivered")
    check(delivered is not None and delivered > 0,
          "ducha_webhook_deliveries_total{outcome=\"delivered\"} > 0: %s\n%s" % (
              delivered, "\n".join(x for x in text.splitlines() if "webhook" in x)))
    check(metric(text, "ducha_webhook_queue") is not None, "ducha_webhook_queue")
    check(metric(text, "ducha_webhook_in_flight") is not None, "ducha_webhook_in_flight")
    check(re.search(r"^# TYPE ducha_webhook_deliveries_total counter$", text, re.M), "a counter")
    check(re.search(r"^# TYPE ducha_webhook_queue gauge$", text, re.M), "a gauge")
    gu = state.get("give_up_metrics")
    if gu is not None:
        check((metric(gu, "ducha_webhook_deliveries_total", outcome="retry") or 0) >= 1, "retries counted")
        check((metric(gu, "ducha_webhook_deliveries_total", outcome="failed") or 0) >= 2,
              "given-up deliveries counted (2): %s" % metric(gu, "ducha_webhook_deliveries_total", outcome="failed"))
    promtool = shutil.which("promtool")
    if not promtool:
        skip("promtool not installed (Debian's prometheus package: scripts/packages/test.txt)")
    for t in (text, gu):
        if t is None:
            continue
        p = subprocess.run([promtool, "check", "metrics"], input=t, capture_output=True, text=True, timeout=30)
        eq(p.returncode, 0, "promtool check metrics: %s %s" % (p.stdout, p.stderr))
        check(not (p.stdout + p.stderr).strip(), "promtool has remarks: %s %s" % (p.stdout, p.stderr))


def cleanup():
    for r in state["receivers"]:
        try:
            r.stop()
        except Exception:  # noqa: BLE001
            pass
    stop_all(state["servers"], state["dbs"])
    state["dbs"] = []
    shutil.rmtree(KEY_DIR, ignore_errors=True)


@test
def the_servers_stop_and_the_database_goes():
    stop_all(state["servers"], strict=True)
    for srv in state["servers"]:
        out = srv.output()
        check("ERROR: AddressSanitizer" not in out and "runtime error:" not in out,
              "sanitizer report:\n%s" % tail(out, 30))
    cleanup()


if __name__ == "__main__":
    try:
        main(start_server=False, setup_db=False)
    finally:
        cleanup()
