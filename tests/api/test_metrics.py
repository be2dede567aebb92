#!/usr/bin/python3
"""/metrics (issue 12, Operations): Prometheus text on a listener of its own
(DUCHA_METRICS_LISTEN), never on the API's; requests counted by operation (the openapi.yaml
path template, not the raw path) and status, a latency histogram, the pool, streams, statements
timed out and the background jobs; `promtool check metrics` accepts it."""

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, DATABASE_URL, PsqlSession, Server, check, db_owner, eq, expect_problem,  # noqa: E402
                     expect_status, extra_server, free_port, items_of, main, make_user, mk_dept, mk_inspection,
                     scrape_metrics, skip, tail, test)

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

state = {}


def metrics_server():
    if "srv" not in state:
        state["mport"] = free_port()
        state["srv"] = extra_server({"DUCHA_METRICS_LISTEN": "127.0.0.1:%d" % state["mport"], "DUCHA_THREADS": "3"})
        _, token = make_user("admin")
        state["admin"] = state["srv"].client(token)
    return state["srv"]


def scrape(port=None):
    """(status, content type, text) of GET /metrics."""
    return scrape_metrics(port or state["mport"])


def samples(text):
    """[(name, {label: value}, float)] of the exposition text."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        check(m, "not a sample line: %r" % line)
        labels = dict(LABEL.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def value(ss, name, **labels):
    found = [v for n, ls, v in ss if n == name and all(ls.get(k) == w for k, w in labels.items())]
    check(len(found) == 1, "%s%s: %d samples, expected 1" % (name, labels, len(found)))
    return found[0]


def count_of(ss, name, **labels):
    return sum(v for n, ls, v in ss if n == name and all(ls.get(k) == w for k, w in labels.items()))


@test
def metrics_are_on_their_own_listener():
    srv = metrics_server()
    status, ctype, text = scrape()
    eq(status, 200, "GET /metrics on DUCHA_METRICS_LISTEN")
    check(ctype.startswith("text/plain") and "version=0.0.4" in ctype, "Content-Type %r" % ctype)
    check("ducha_http_requests_total" in text, "no request counter in:\n%s" % text[:500])
    # not on the API's listener, and the metrics listener serves nothing else
    r = srv.client().get("/metrics", validate=False)
    expect_problem(r, 404)
    c = http.client.HTTPConnection("127.0.0.1", state["mport"], timeout=10)
    c.request("GET", API + "/departments")
    eq(c.getresponse().status, 404, "the API on the metrics listener")
    c.close()


@test
def requests_are_counted_by_operation_template_and_status():
    metrics_server()
    admin = state["admin"]
    before = samples(scrape()[2])
    depts = [mk_dept(client=admin) for _ in range(3)]
    for d in depts:
        expect_status(admin.get(API + "/departments/%d" % d["id"]), 200)
    expect_problem(admin.get(API + "/departments/999999999"), 404)
    expect_problem(state["srv"].client().get(API + "/departments/%d" % depts[0]["id"]), 401)
    expect_problem(admin.get("/no/such/thing", validate="problem"), 404)
    after_text = scrape()[2]
    after = samples(after_text)
    route = "/api/v1/departments/{id}"

    def delta(name, **labels):
        return count_of(after, name, **labels) - count_of(before, name, **labels)
    eq(delta("ducha_http_requests_total", method="GET", route=route, status="200"), 3, "GET %s 200" % route)
    eq(delta("ducha_http_requests_total", method="GET", route=route, status="404"), 1, "GET %s 404" % route)
    eq(delta("ducha_http_requests_total", method="GET", route=route, status="401"), 1, "GET %s 401" % route)
    eq(delta("ducha_http_requests_total", method="POST", route="/api/v1/departments", status="201"), 3, "POST 201")
    eq(delta("ducha_http_requests_total", route="unmatched", status="404"), 1, "a path no operation has")
    for n, ls, _ in after:
        check(not re.search(r"/\d", ls.get("route", "")), "a raw path as a label: %s %s" % (n, ls))
    # the histogram: cumulative buckets, +Inf equals the count, and the requests are in it
    buckets = [(ls["le"], v) for n, ls, v in after
               if n == "ducha_http_request_duration_seconds_bucket" and ls.get("route") == route and ls["method"] == "GET"]
    check(len(buckets) >= 10, "buckets of GET %s: %s" % (route, buckets))
    vals = [v for _, v in buckets]
    eq(vals, sorted(vals), "buckets are cumulative")
    eq(buckets[-1][0], "+Inf", "the last bucket")
    eq(buckets[-1][1], value(after, "ducha_http_request_duration_seconds_count", method="GET", route=route),
       "+Inf bucket = count")
    eq(value(after, "ducha_http_request_duration_seconds_count", method="GET", route=route),
       count_of(after, "ducha_http_requests_total", method="GET", route=route), "count = the requests")
    check(value(after, "ducha_http_request_duration_seconds_sum", method="GET", route=route) > 0, "sum > 0")


@test
def promtool_accepts_it():
    metrics_server()
    promtool = shutil.which("promtool")
    if not promtool:
        skip("promtool not installed (Debian's prometheus package: scripts/packages/test.txt)")
    state["admin"].get(API + "/departments")
    text = scrape()[2]
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, "promtool check metrics: %s %s" % (p.stdout, p.stderr))
    check(not (p.stdout + p.stderr).strip(), "promtool has remarks: %s %s" % (p.stdout, p.stderr))


@test
def pool_streams_timeouts_and_jobs():
    srv = metrics_server()
    ss = samples(scrape()[2])
    eq(value(ss, "ducha_db_pool_connections"), 4.0, "pool size: DUCHA_THREADS + 1")
    check(0 <= value(ss, "ducha_db_pool_in_use") <= 4, "in use")
    eq(value(ss, "ducha_db_pool_waiting"), 0.0, "waiting")
    eq(value(ss, "ducha_streams_open"), 0.0, "streams open")
    check(value(ss, "ducha_http_requests_in_flight") >= 0, "in flight")
    for job in ("purge-idempotency-keys", "audit-checkpoint", "escalation"):
        eq(value(ss, "ducha_job_runs_total", job=job), 0.0, "runs of %s (DUCHA_JOBS=none)" % job)
        eq(value(ss, "ducha_job_failures_total", job=job), 0.0, "failures of %s" % job)
    check(any(n == "ducha_build_info" for n, _, _ in ss), "build info")
    # a statement held past its budget by a row lock: 504, counted
    timeouts = value(ss, "ducha_db_statement_timeouts_total")
    dept = mk_dept(client=state["admin"])
    holder = PsqlSession(os.environ.get("DUCHA_MIGRATION_DATABASE_URL") or DATABASE_URL)
    try:
        holder.q("BEGIN")
        holder.q("SELECT 1 FROM departments WHERE id = %d FOR UPDATE" % dept["id"])
        r = state["admin"].patch(API + "/departments/%d" % dept["id"], json={"name": dept["name"] + "x"},
                                 headers={"If-Match": "*"}, ctype="application/merge-patch+json")
        expect_problem(r, 504, "query-timeout")
    finally:
        holder.q("ROLLBACK")
        holder.close()
    ss = samples(scrape()[2])
    eq(value(ss, "ducha_db_statement_timeouts_total"), timeouts + 1, "statements timed out")
    eq(count_of(ss, "ducha_http_requests_total", method="PATCH", route="/api/v1/departments/{id}", status="504"),
       1.0, "the 504 by its operation")
    # a download held open by a client that does not read: one stream open
    admin = state["admin"]
    streams_before = value(ss, "ducha_streams_open")
    blob = os.urandom(4 << 20)
    ins = mk_inspection(target_id=dept["id"], client=admin)
    item = items_of(ins["id"], client=admin)[0]
    r = admin.post(API + "/items/%d/evidence" % item["id"], body=b"%PDF-1.4\n" + blob,
                   ctype="application/pdf", headers={"Content-Disposition": 'attachment; filename="m.pdf"'})
    expect_status(r, 201)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        s.sendall(("GET %s/evidence/%d/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (
            API, r.json["id"], admin.token)).encode())
        head = s.recv(1024)
        check(head.startswith(b"HTTP/1.1 200"), "download answered %r" % head[:60])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            now = value(samples(scrape()[2]), "ducha_streams_open")
            if now == streams_before + 1:
                break
            time.sleep(0.05)
        eq(now, streams_before + 1, "streams open while a download is held")
    finally:
        s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and value(samples(scrape()[2]), "ducha_streams_open") != streams_before:
        time.sleep(0.1)
    eq(value(samples(scrape()[2]), "ducha_streams_open"), streams_before, "the stream closed with its client")


@test
def jobs_are_counted():
    # a server that runs the purge job (harmless in the shared database) when it is due
    mport = free_port()
    srv = Server({"DUCHA_METRICS_LISTEN": "127.0.0.1:%d" % mport, "DUCHA_JOBS": "purge-idempotency-keys",
                  "DUCHA_JOB_POLL_MS": "100"}).start()
    try:
        db_owner("UPDATE jobs SET next_run_at = now() WHERE name = 'purge-idempotency-keys'")
        deadline = time.monotonic() + 10
        runs = 0
        while time.monotonic() < deadline:
            runs = value(samples(scrape(mport)[2]), "ducha_job_runs_total", job="purge-idempotency-keys")
            if runs >= 1:
                break
            time.sleep(0.1)
        check(runs >= 1, "the purge job ran (runs %s); output:\n%s" % (runs, tail(srv.output(), 10)))
        eq(value(samples(scrape(mport)[2]), "ducha_job_failures_total", job="purge-idempotency-keys"), 0.0,
           "failures")
    finally:
        eq(srv.stop(), 0, "exit status")


@test
def a_metrics_address_in_use_stops_the_start():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        srv = Server({"DUCHA_METRICS_LISTEN": "127.0.0.1:%d" % taken.getsockname()[1]})
        try:
            srv.start(wait=5)
            srv.stop()
            raise AssertionError("the server started with its metrics address taken")
        except RuntimeError:
            pass
        check("DUCHA_METRICS_LISTEN" in srv.output(), "the message names the setting: %r" % tail(srv.output(), 5))
    finally:
        taken.close()
    p = subprocess.run([os.environ["DUCHA_BIN"], "serve"], env=dict(os.environ, DUCHA_METRICS_LISTEN="nowhere"),
                       capture_output=True, text=True, timeout=20)
    eq(p.returncode, 2, "a bad DUCHA_METRICS_LISTEN")
    check("DUCHA_METRICS_LISTEN" in p.stderr, "the message names it: %r" % p.stderr)


if __name__ == "__main__":
    main()
