#!/usr/bin/python3
"""Shutdown (issue 7 §1: DUCHA_SHUTDOWN_GRACE, DUCHA_DRAIN_TIMEOUT). After SIGTERM the server
answers /readyz 503 for the grace while it still serves everything else and accepts new
connections; then it closes its listener; the requests in flight (an upload still arriving, a
download being read slowly, a JSON body still arriving) finish, and the process exits 0. The
stored upload is checked byte for byte through a second server on the same database. A
request that never finishes holds the exit for DUCHA_DRAIN_TIMEOUT and no longer; an idle
keep-alive connection does not hold it at all.

This file starts its own servers (each test stops one)."""

import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, check, ctx, eq, expect_status, extra_server, main, make_user, note, tail,  # noqa: E402
                     test)
from lifecycle_helpers import Case, content_disposition, make_pdf, upload  # noqa: E402
from raw_http import connect, json_head, read_head, read_response, request_bytes  # noqa: E402

GRACE = 1.0
DRAIN = 10.0
ENV = {"DUCHA_SHUTDOWN_GRACE": "%d" % GRACE, "DUCHA_DRAIN_TIMEOUT": "%d" % DRAIN}
DOWNLOAD_SIZE = 4 * 1024 * 1024
UPLOAD_SIZE = 1024 * 1024

TIMEOUT = 15  # of each raw connection's reads and writes

state = {}


def start(env=None):
    e = dict(ENV)
    e.update(env or {})
    return extra_server(e)


def use(srv):
    """Make srv the server of ctx (the helpers use ctx.server and ctx.admin)."""
    ctx.server = srv
    if "token" not in state:
        state["token"] = make_user("admin")[1]
    ctx.admin = srv.client(state["token"])


def pdf(size, label):
    data = make_pdf(label)
    return data + os.urandom(size - len(data))


def wait_exit(srv, t0, limit):
    """Waits for the process to exit, at most `limit` seconds after t0; (rc or None, seconds)."""
    try:
        srv.proc.wait(max(0.0, t0 + limit - time.monotonic()))
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
        return None, time.monotonic() - t0
    return srv.proc.returncode, time.monotonic() - t0


def terminate(srv, limit, socks):
    """Sends SIGTERM, waits for the exit at most `limit` seconds, then closes the sockets;
    (rc or None, seconds)."""
    try:
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        return wait_exit(srv, t0, limit)
    finally:
        for s in socks:
            s.close()


def sanitizer_report(out):
    return any(w in out for w in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer"))


# --------------------------------------------------------------------------------------------
# raw clients

def upload_head(rect_id, filename, length):
    """The head of a raw POST of a PDF of `length` bytes as evidence of rectification rect_id."""
    return request_bytes("POST", API + "/rectifications/%d/evidence" % rect_id, state["token"],
                         extra="Content-Type: application/pdf\r\nContent-Disposition: %s\r\nContent-Length: %d\r\n" % (
                             content_disposition(filename), length))


def download_request(eid):
    return request_bytes("GET", API + "/evidence/%d/content" % eid, state["token"])


def send_slowly(s, data, pieces, seconds, started):
    """Sends data in `pieces` pieces over about `seconds`; sets `started` after the first."""
    step = (len(data) + pieces - 1) // pieces
    for i in range(pieces):
        s.sendall(data[i * step:(i + 1) * step])
        started.set()
        time.sleep(seconds / pieces)


def try_connect(port):
    """'refused', 'reset' or 'served' (a GET /healthz answered on a new connection) or 'open'."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return "error %s" % exc.__class__.__name__
    try:
        s.settimeout(1)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        d = s.recv(64)
        return "served" if d.startswith(b"HTTP/1.1 200") else ("closed" if not d else "answered %r" % d[:20])
    except socket.timeout:
        return "open"
    except OSError:
        return "reset"
    finally:
        s.close()


class Slow(threading.Thread):
    """One request whose sending or reading takes a while; `started` is set once it is under
    way; result / error hold the outcome, done_at the time it finished."""

    def __init__(self, name, fn):
        super().__init__(name=name, daemon=True)
        self.fn = fn
        self.started = threading.Event()
        self.result = None
        self.error = None
        self.done_at = None

    def run(self):
        try:
            self.result = self.fn(self.started)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = "%s: %s" % (exc.__class__.__name__, exc)
        self.done_at = time.monotonic()
        self.started.set()


def slow_upload(port, rect_id, data, filename, seconds):
    def fn(started):
        s = connect(port, timeout=TIMEOUT)
        s.sendall(upload_head(rect_id, filename, len(data)))
        send_slowly(s, data, 30, seconds, started)
        r = read_response(s)
        s.close()
        return r
    return fn


def slow_download(port, eid, seconds):
    def fn(started):
        s = connect(port, timeout=TIMEOUT, rcvbuf=65536)
        s.sendall(download_request(eid))
        r = read_head(s)
        if r is None:
            raise AssertionError("closed before the response headers")
        status, body = int(r[0].split()[1]), r[2]
        started.set()
        pause = seconds / (DOWNLOAD_SIZE / 65536)
        while True:
            d = s.recv(65536)
            if not d:
                break
            body += d
            if len(body) >= DOWNLOAD_SIZE:
                break
            time.sleep(pause * len(d) / 65536)
        s.close()
        return status, body
    return fn


def slow_json(port, name, seconds):
    def fn(started):
        s = connect(port, timeout=TIMEOUT)
        body = b"{" + b" " * 300 + json.dumps({"name": name}, ensure_ascii=False).encode("utf-8")[1:]
        s.sendall(json_head(API + "/departments", state["token"], len(body)))
        send_slowly(s, body, 20, seconds, started)
        r = read_response(s)
        s.close()
        return r
    return fn


# --------------------------------------------------------------------------------------------

@test
def sigterm_lets_requests_in_flight_finish():
    srv = start()
    use(srv)
    c = Case()
    big = pdf(DOWNLOAD_SIZE, "download")
    r = upload(ctx.admin, "/rectifications/%d/evidence" % c.id, big, ctx.uniq("下载") + ".pdf", "application/pdf",
               timeout=120)
    expect_status(r, 201, "upload the file to download")
    down_id = r.json["id"]
    up_data = pdf(UPLOAD_SIZE, "upload")
    up_name = ctx.uniq("上传中") + ".pdf"
    dept_name = ctx.uniq("慢JSON")

    up = Slow("upload", slow_upload(srv.port, c.id, up_data, up_name, 3.0))
    down = Slow("download", slow_download(srv.port, down_id, 3.0))
    js = Slow("json", slow_json(srv.port, dept_name, 2.0))
    for t in (up, down, js):
        t.start()
    for t in (up, down, js):
        check(t.started.wait(10) and t.error is None, "%s did not get under way: %s" % (t.name, t.error))

    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    during = []
    try:
        time.sleep(0.2)
        for _ in range(2):
            ready = srv.client().get("/readyz", timeout=2, validate="problem")
            live = srv.client().get("/healthz", timeout=2)
            dep = ctx.admin.get(API + "/departments?limit=1", timeout=2)
            during.append((time.monotonic() - t0, ready.status, live.status, dep.status))
            time.sleep(0.3)
    except Exception as exc:  # noqa: BLE001 - refused, reset: reported below
        during.append((time.monotonic() - t0, "failed: %s" % str(exc).split("\n")[0]))
    # after the grace the listener closes
    refused_at, last = None, None
    while time.monotonic() - t0 < GRACE + 3.0:
        last = try_connect(srv.port)
        if last == "refused":
            refused_at = time.monotonic() - t0
            break
        time.sleep(0.1)
    for t in (up, down, js):
        t.join(DRAIN + 5)
    rc, exit_after = wait_exit(srv, t0, GRACE + DRAIN + 5)
    out = srv.output()
    last_done = max((t.done_at or time.monotonic()) for t in (up, down, js)) - t0
    note("after SIGTERM: %s; refused from %s s; in flight done by %.2f s; exit %s after %.2f s" % (
        "; ".join("%.2f s: readyz %s healthz %s departments %s" % x if len(x) == 4 else "%.2f s: %s" % x
                  for x in during),
        "%.2f" % refused_at if refused_at is not None else "never", last_done, rc, exit_after))

    # during the grace
    check(during and all(len(x) == 4 for x in during), "requests during the grace failed: %s" % during)
    for when, ready, live, dep in during:
        if when < GRACE - 0.1:
            eq((ready, live, dep), (503, 200, 200), "(readyz, healthz, departments) %.2f s after SIGTERM" % when)
    # then the listener closes
    check(refused_at is not None, "new connections were not refused within %.0f s of SIGTERM (last: %s)" % (
        GRACE + 3.0, last))
    check(GRACE - 0.2 <= refused_at <= GRACE + 1.0,
          "new connections refused from %.2f s after SIGTERM; DUCHA_SHUTDOWN_GRACE is %.0f s" % (refused_at, GRACE))
    # the requests in flight finished
    for t in (up, down, js):
        check(t.error is None, "%s: %s" % (t.name, t.error))
    check(up.result is not None, "the upload got no response")
    status, _, body = up.result
    eq(status, 201, "the upload begun before SIGTERM (%r)" % body[:300])
    ev = json.loads(body.decode("utf-8"))
    eq((ev["size"], ev["sha256"]), (len(up_data), hashlib.sha256(up_data).hexdigest()), "stored size and sha256")
    status, got = down.result
    eq(status, 200, "the download begun before SIGTERM")
    eq(len(got), len(big), "bytes of the download")
    check(got == big, "the download that ran through the shutdown differs from the file")
    check(js.result is not None, "the slow JSON body got no response")
    eq(js.result[0], 201, "the department whose body was still arriving (%r)" % js.result[2][:300])
    # and the process exits 0 soon after
    check(rc is not None, "the server had not exited %.0f s after SIGTERM" % (GRACE + DRAIN + 5))
    eq(rc, 0, "exit status")
    check(exit_after <= max(GRACE, last_done) + 2.0,
          "exited %.2f s after SIGTERM, the requests in flight were done by %.2f s" % (exit_after, last_done))
    check(not sanitizer_report(out), "sanitizer report:\n" + tail(out, 40))
    state["upload"] = (ev["id"], up_data)
    state["department"] = dept_name


@test
def what_was_sent_during_the_shutdown_is_stored():
    check("upload" in state, "the shutdown test did not get as far as the upload")
    srv = start()
    use(srv)
    eid, data = state["upload"]
    r = ctx.admin.get(API + "/evidence/%d" % eid)
    expect_status(r, 200, "the evidence uploaded during the shutdown")
    eq((r.json["size"], r.json["sha256"]), (len(data), hashlib.sha256(data).hexdigest()))
    r = ctx.admin.get(API + "/evidence/%d/content" % eid, timeout=30)
    expect_status(r, 200)
    check(r.body == data, "the stored file differs from what was sent (%d of %d bytes)" % (len(r.body), len(data)))
    names = [d["name"] for d in ctx.admin.list_all(API + "/departments?q=" + ctx.prefix)]
    check(state["department"] in names, "the department created during the shutdown is missing")
    eq(srv.stop(), 0, "exit status")


@test
def a_request_that_never_ends_holds_the_exit_for_the_drain_timeout_only():
    drain = 2.0
    srv = start({"DUCHA_DRAIN_TIMEOUT": "%d" % drain})
    use(srv)
    c = Case()
    big = pdf(DOWNLOAD_SIZE, "stall")
    r = upload(ctx.admin, "/rectifications/%d/evidence" % c.id, big, ctx.uniq("停滞") + ".pdf", "application/pdf",
               timeout=120)
    expect_status(r, 201)
    # a download never read, and an upload that stops half way
    d = connect(srv.port, timeout=TIMEOUT, rcvbuf=4096)
    d.sendall(download_request(r.json["id"]))
    eq(d.recv(12), b"HTTP/1.1 200", "status line of the stalled download")
    u = connect(srv.port, timeout=TIMEOUT)
    data = pdf(UPLOAD_SIZE, "half")
    u.sendall(upload_head(c.id, "half.pdf", len(data)) + data[:len(data) // 2])
    time.sleep(0.3)
    rc, after = terminate(srv, GRACE + drain + 8, (d, u))
    out = srv.output()
    note("exit %s after %.2f s (grace %.0f s + drain %.0f s)" % (rc, after, GRACE, drain))
    check(rc is not None, "the server had not exited %.0f s after SIGTERM (grace %.0f s, drain %.0f s)" % (
        GRACE + drain + 8, GRACE, drain))
    eq(rc, 0, "exit status")
    check(GRACE + drain - 0.5 <= after <= GRACE + drain + 2.0,
          "exited %.2f s after SIGTERM; expected about grace + drain = %.0f s" % (after, GRACE + drain))
    check(not sanitizer_report(out), "sanitizer report:\n" + tail(out, 40))


@test
def an_idle_keep_alive_connection_does_not_hold_the_exit():
    srv = start()
    use(srv)
    s = connect(srv.port, timeout=TIMEOUT)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    eq(read_response(s)[0], 200, "GET /healthz")
    rc, after = terminate(srv, GRACE + DRAIN + 5, (s,))
    note("exit %s after %.2f s with an idle keep-alive connection open" % (rc, after))
    check(rc is not None, "not exited %.0f s after SIGTERM" % (GRACE + DRAIN + 5))
    eq(rc, 0, "exit status")
    check(after <= GRACE + 2.0, "exited %.2f s after SIGTERM with only an idle connection open (grace %.0f s, "
          "drain %.0f s)" % (after, GRACE, DRAIN))


if __name__ == "__main__":
    main(start_server=False)
