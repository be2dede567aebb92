#!/usr/bin/python3
"""The log (issue 12, Operations): one JSON line per request (time, request id, method, route,
status, duration, user id) and per error, on stderr; DUCHA_LOG_FORMAT=json|text, json by
default and text when stderr is a terminal. (The other test files read the text format: the
harness sets DUCHA_LOG_FORMAT=text.)"""

import json
import os
import pty
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, Server, check, ctx, eq, expect_problem,  # noqa: E402
                     expect_status, free_port, main, mk_dept, tail, test)
from raw_http import connect, read_response  # noqa: E402

state = {}


def json_server():
    if "srv" not in state:
        state["srv"] = Server({"DUCHA_LOG_FORMAT": "json"}).start()
    return state["srv"]


def lines_of(srv):
    """Every line of the server's output, each parsed as JSON (failing on one that is not)."""
    out = []
    for line in srv.output().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError("not a JSON line: %r" % line[:300])
        check(isinstance(obj, dict), "not an object: %r" % line[:300])
        out.append(obj)
    return out


def wait_for(srv, pred, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        found = [x for x in lines_of(srv) if pred(x)]
        if found or time.monotonic() > deadline:
            check(found, "no log line %s in:\n%s" % (what, tail(srv.output(), 10)))
            return found
        time.sleep(0.05)


@test
def every_line_is_json_with_time_and_level():
    srv = json_server()
    srv.client().get("/healthz")
    lines = lines_of(srv)
    check(len(lines) >= 3, "too few lines: %r" % lines)
    for x in lines:
        check(UTC_DATETIME_RE.match(x.get("time", "")), "time %r" % x.get("time"))
        check(x.get("level") in ("error", "warning", "info", "debug"), "level %r" % x.get("level"))
        check(isinstance(x.get("msg"), str), "msg %r" % x.get("msg"))
    check(any("listening on http://127.0.0.1:%d" % srv.port in x["msg"] for x in lines), "the listening line")


@test
def a_request_line_names_route_user_status_and_duration():
    srv = json_server()
    dept = mk_dept()
    rid = "logs-%s-1" % ctx.prefix
    r = srv.client(ctx.admin.token).get(API + "/departments/%d" % dept["id"], headers={"X-Request-Id": rid})
    expect_status(r, 200)
    me = srv.client(ctx.admin.token).get(API + "/me").json["user"]["id"]
    x = wait_for(srv, lambda x: x.get("request_id") == rid and x.get("msg") == "request", rid)[0]
    eq(x["method"], "GET", "method")
    eq(x["route"], "/api/v1/departments/{id}", "route: the operation's template")
    eq(x["path"], "/api/v1/departments/%d" % dept["id"], "path")
    eq(x["status"], 200, "status")
    check(isinstance(x["duration_ms"], (int, float)) and 0 <= x["duration_ms"] < 10000, "duration %r" % x)
    eq(x["user_id"], me, "user id of the caller")
    eq(x["level"], "info", "level")
    # without a token: no user; a path no operation has: no route
    rid2 = "logs-%s-2" % ctx.prefix
    expect_problem(srv.client().get("/nothing/here", headers={"X-Request-Id": rid2}, validate="problem"), 404)
    x = wait_for(srv, lambda x: x.get("request_id") == rid2, rid2)[0]
    eq((x["route"], x["user_id"], x["status"]), (None, None, 404), "route, user and status of a 404")


@test
def a_server_error_writes_an_error_line():
    # a database that is not there: /readyz answers 503, and the log has an error line for it
    port = free_port()
    srv = Server({"DUCHA_LOG_FORMAT": "json"},
                 database_url="postgresql://ducha_app@127.0.0.1:%d/none?connect_timeout=1" % port).start()
    try:
        rid = "logs-%s-3" % ctx.prefix
        r = srv.client().get("/readyz", headers={"X-Request-Id": rid})
        eq(r.status, 503, "/readyz without a database")
        mine = wait_for(srv, lambda x: x.get("request_id") == rid and x["level"] == "error", "error " + rid)
        x = mine[0]
        eq((x["status"], x["problem"], x["route"], x["method"]), (503, "unavailable", "/readyz", "GET"), "error line")
        check(x["msg"], "the error line says what happened")
        req = [y for y in lines_of(srv) if y.get("request_id") == rid and y["msg"] == "request"]
        eq(len(req), 1, "one request line too")
        eq(req[0]["level"], "warning", "a 5xx request line is a warning")
    finally:
        eq(srv.stop(), 0, "exit status")


@test
def odd_bytes_in_a_path_stay_json():
    srv = json_server()
    rid = "logs-%s-4" % ctx.prefix
    s = connect(srv.port)
    try:
        s.sendall(b'GET /x"y\\z%ff\xff\xe4\xb8\xad HTTP/1.1\r\nHost: x\r\nX-Request-Id: ' + rid.encode() +
                  b'\r\nConnection: close\r\n\r\n')
        read_response(s)
    finally:
        s.close()
    x = wait_for(srv, lambda x: x.get("request_id") == rid, rid)[0]  # lines_of fails on a line that is not JSON
    check(x["path"].startswith('/x"y\\z'), "path %r" % x["path"])


@test
def text_when_asked_or_on_a_terminal():
    srv = Server({"DUCHA_LOG_FORMAT": "text"}).start()
    try:
        rid = "logs-%s-5" % ctx.prefix
        srv.client().get("/healthz", headers={"X-Request-Id": rid})
        deadline = time.monotonic() + 5
        while rid not in srv.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        check(re.search(r"GET /healthz 200 [\d.]+ms request_id=%s" % rid, srv.output()),
              "the text request line: %r" % tail(srv.output(), 3))
        check(not srv.output().lstrip().startswith("{"), "text, not JSON")
    finally:
        srv.stop()
    # auto (the default): stderr a terminal -> text; a file -> JSON (json_server above)
    master, slave = pty.openpty()
    env = dict(os.environ, DUCHA_LISTEN="127.0.0.1:%d" % free_port(), DUCHA_METRICS_LISTEN="off",
               DUCHA_JOBS="none", DUCHA_LOG_FORMAT="", DUCHA_SHUTDOWN_GRACE="0")
    p = subprocess.Popen([os.environ["DUCHA_BIN"], "serve"], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    try:
        got = b""
        deadline = time.monotonic() + 10
        while b"listening on" not in got and time.monotonic() < deadline:
            try:
                got += os.read(master, 4096)
            except OSError:
                break
        check(b"listening on" in got, "no start on the terminal: %r" % got[:300])
        first = got.decode("utf-8", "replace").lstrip().splitlines()[0]
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ - ducha INFO: ", first), "text on a terminal: %r" % first)
    finally:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        os.close(master)


@test
def a_bad_format_is_refused():
    p = subprocess.run([os.environ["DUCHA_BIN"], "serve"], env=dict(os.environ, DUCHA_LOG_FORMAT="xml"),
                       capture_output=True, text=True, timeout=20)
    eq(p.returncode, 2, "exit status")
    check("DUCHA_LOG_FORMAT" in p.stderr, "the message names it: %r" % p.stderr)


@test
def json_server_stops_cleanly():
    srv = json_server()
    eq(srv.stop(), 0, "exit status")
    last = lines_of(srv)[-1]
    eq(last["msg"], "stopped", "the last line")


if __name__ == "__main__":
    main()
