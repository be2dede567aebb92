#!/usr/bin/python3
"""Streamed downloads (issue 7 §1, DUCHA_MAX_STREAMS): 200 clients ask for a 4 MB evidence file
and never read; at most DUCHA_MAX_STREAMS of them get a stream, the others a 429 problem with
Retry-After; meanwhile ordinary requests and a psql session work and the server holds no more
PostgreSQL connections than its pool (DUCHA_THREADS + 1), since a stream takes a pooled
connection only to fetch a chunk. Then a download read to the end is the file, byte for byte,
and the places held by the stalled clients are free again. Last, a download whose database
black-holes in the middle ends, and the worker that sent it serves other requests again.

The server of this file runs with DUCHA_MAX_STREAMS=16, DUCHA_THREADS=4 and
DUCHA_PER_IP_CONNECTIONS=0 (the 200 clients all connect from 127.0.0.1)."""

import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, DATABASE_URL, PsqlSession, TestFailure, check, ctx, db, eq,  # noqa: E402
                     expect_status, extra_server, main, note, skip, spec, tail, test)
from lifecycle_helpers import Case, make_pdf, upload  # noqa: E402
from raw_http import connect, read_message, request_bytes  # noqa: E402

MAX_STREAMS = 16
THREADS = 4
POOL = THREADS + 1
MARGIN = 2
CLIENTS = 200
BATCH = 25
SIZE = 4 * 1024 * 1024
SERVER_ENV = {"DUCHA_MAX_STREAMS": str(MAX_STREAMS), "DUCHA_THREADS": str(THREADS),
              "DUCHA_PER_IP_CONNECTIONS": "0"}

state = {}


# --------------------------------------------------------------------------------------------
# the file

def evidence():
    """(evidence id, bytes): one ~4 MB PDF on a fresh rectification, uploaded once."""
    if "evidence" not in state:
        data = make_pdf("streams")
        data += os.urandom(SIZE - len(data))
        c = Case()
        r = upload(ctx.admin, "/rectifications/%d/evidence" % c.id, data, ctx.uniq("大文件") + ".pdf",
                   "application/pdf", timeout=120)
        expect_status(r, 201, "upload the 4 MB file")
        eq(r.json["size"], len(data), "stored size")
        state["evidence"] = (r.json["id"], data)
    return state["evidence"]


def content_path(eid):
    return API + "/evidence/%d/content" % eid


# --------------------------------------------------------------------------------------------
# PostgreSQL connections of the server under test

def _db_port():
    u = urllib.parse.urlsplit(DATABASE_URL)
    q = dict(urllib.parse.parse_qsl(u.query))
    return int(u.port or q.get("port") or os.environ.get("PGPORT", "5432"))


def server_pg_ports(pid, pg_port):
    """Local ports of the TCP connections process `pid` holds to port pg_port."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[9] in inodes and parts[3] == "01" \
                    and int(parts[2].rsplit(":", 1)[1], 16) == pg_port:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def backends(srv):
    """(backends of application_name 'ducha' this server holds, its TCP connections to PostgreSQL)."""
    ports = server_pg_ports(srv.proc.pid, _db_port())
    if "psql" not in state:
        state["psql"] = PsqlSession()
    rows = state["psql"].q("SELECT client_port FROM pg_stat_activity WHERE application_name = 'ducha' "
              "AND datname = current_database()")
    mine = [p for p in rows.split("\n") if p.strip().isdigit() and int(p) in ports]
    return len(mine), len(ports)


def check_backends(srv, when):
    n, socks = backends(srv)
    check(n <= POOL + MARGIN and socks <= POOL + MARGIN,
          "%s: the server holds %d PostgreSQL connections (%d backends of application_name 'ducha'); "
          "DUCHA_THREADS=%d allows %d (+%d)" % (when, socks, n, THREADS, POOL, MARGIN))
    return n, socks


# --------------------------------------------------------------------------------------------
# raw downloads

def request(eid, token=None):
    return request_bytes("GET", content_path(eid), token or ctx.admin.token)


def open_stalled(port, eid, rcvbuf=4096):
    """A client that asks for the file and does not read."""
    s = connect(port, timeout=10, rcvbuf=rcvbuf)
    s.sendall(request(eid))
    return s


def read_status(s):
    """The status code from the first 12 bytes ("HTTP/1.1 200"); None when closed first."""
    buf = b""
    while len(buf) < 12:
        d = s.recv(12 - len(buf))
        if not d:
            return None
        buf += d
    return int(buf[9:12])


def read_rest_of_head_and_body(s):
    """After read_status: (headers dict lower-cased, body) of a small Content-Length response."""
    r = read_message(s)
    return (r[1], r[2]) if r else ({}, b"")


def check_429(s, eid, seen):
    """Reads the rest of a 429 and checks it: problem+json too-many-requests, Retry-After."""
    headers, body = read_rest_of_head_and_body(s)
    ct = headers.get("content-type", "").split(";")[0].strip().lower()
    eq(ct, "application/problem+json", "Content-Type of the 429")
    problem = json.loads(body.decode("utf-8"))
    eq(problem.get("type"), "urn:ducha:problem:too-many-requests", "type of the 429")
    eq(problem.get("status"), 429, "status member of the 429")
    ra = headers.get("retry-after", "")
    check(ra.isdigit() and int(ra) >= 1, "Retry-After of the 429 is %r (want whole seconds)" % ra)
    check(headers.get("x-request-id"), "the 429 has no X-Request-Id")
    if not seen:
        ctx.spec_errors.extend(spec().validate("GET", content_path(eid), 429, headers.get("content-type"), body,
                                               problem))
        seen.append(1)


def full_download(port, eid, token=None, retry_for=5.0):
    """Reads the whole file on a new connection; retries 429s for up to retry_for seconds.
    Returns (status, headers, body)."""
    deadline = time.monotonic() + retry_for
    while True:
        s = connect(port, timeout=20)
        try:
            s.sendall(request(eid, token))
            st = read_status(s)
            headers, body = read_rest_of_head_and_body(s)
        finally:
            s.close()
        if st != 429 or time.monotonic() > deadline:
            return st, headers, body
        time.sleep(0.2)


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------

@test
def stalled_downloads_are_bounded_and_hold_no_database_connection():
    eid, data = evidence()
    srv = ctx.server
    stalled, s200, n429, seen = [], [], 0, []
    try:
        for b in range(0, CLIENTS, BATCH):
            batch = [open_stalled(srv.port, eid) for _ in range(BATCH)]
            stalled += batch
            for s in batch:
                st = read_status(s)
                if st == 200:
                    s200.append(s)
                elif st == 429:
                    n429 += 1
                    check_429(s, eid, seen)
                else:
                    raise TestFailure("download %d answered %r (want 200 or 429)" % (len(stalled), st))
            n, socks = backends(srv)
            check(len(s200) <= MAX_STREAMS and socks <= POOL + MARGIN,
                  "%d of %d stalled downloads got a stream (200), DUCHA_MAX_STREAMS is %d; the server holds %d "
                  "PostgreSQL connections (%d backends of application_name 'ducha'), DUCHA_THREADS=%d allows %d (+%d)"
                  % (len(s200), len(stalled), MAX_STREAMS, socks, n, THREADS, POOL, MARGIN))
        eq((len(s200), n429), (MAX_STREAMS, CLIENTS - MAX_STREAMS), "(streams, 429s) of %d stalled clients" % CLIENTS)

        # meanwhile: ordinary requests, a psql session, and still no more connections
        for _ in range(5):
            r = ctx.admin.get(API + "/departments?limit=5", timeout=5)
            expect_status(r, 200, "GET /departments while %d downloads stall" % MAX_STREAMS)
            check(r.elapsed < 1.0, "GET /departments took %.2f s while downloads stall" % r.elapsed)
        eq(db("SELECT 1"), "1", "psql as the application role while downloads stall")
        n, socks = check_backends(srv, "after ordinary requests beside %d stalled streams" % MAX_STREAMS)
        note("%d streams, %d answered 429; the server holds %d PostgreSQL connections (%d seen in pg_stat_activity)"
             % (len(s200), n429, socks, n))
    finally:
        close_all(stalled)

    # the stalled clients are gone: their places are free again
    t0 = time.monotonic()
    st, headers, body = full_download(srv.port, eid)
    eq(st, 200, "a download after the stalled clients left (retried 429 for 5 s)")
    eq(len(body), len(data), "bytes downloaded")
    check(hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), "the download differs from the file")
    eq(headers.get("etag"), '"%s"' % hashlib.sha256(data).hexdigest(), "ETag")
    note("a whole download after the stall: %.2f s" % (time.monotonic() - t0))
    # every place is free again (the server may take a moment to see the last resets)
    for attempt in range(3):
        again, got = [], []
        try:
            for _ in range(MAX_STREAMS + 4):
                s = open_stalled(srv.port, eid)
                again.append(s)
                got.append(read_status(s))
        finally:
            close_all(again)
        if (got.count(200), got.count(429)) == (MAX_STREAMS, 4):
            break
        time.sleep(0.5)
    eq((got.count(200), got.count(429)), (MAX_STREAMS, 4),
       "(streams, 429s) of %d new stalled clients once the first ones left (3 tries)" % len(got))


@test
def concurrent_whole_downloads_are_all_correct():
    eid, data = evidence()
    results = [None] * 6

    def one(i):
        try:
            results[i] = full_download(ctx.server.port, eid, retry_for=10.0)
        except Exception as exc:  # noqa: BLE001
            results[i] = (repr(exc), {}, b"")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    digest = hashlib.sha256(data).digest()
    for i, (st, _, body) in enumerate(results):
        eq(st, 200, "download %d" % i)
        check(len(body) == len(data) and hashlib.sha256(body).digest() == digest,
              "download %d: %d bytes, differs from the file" % (i, len(body)))
    check_backends(ctx.server, "after concurrent downloads")


# --------------------------------------------------------------------------------------------
# a database that black-holes in the middle of a download

class Proxy:
    """TCP proxy to PostgreSQL that can black-hole: connections stay open, nothing passes."""

    def __init__(self, host, port):
        self.upstream = (host, port)
        self.blackholed = False
        self.down_bytes = 0     # PostgreSQL -> server
        self.socks = []
        self.lock = threading.Lock()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.socks.append(c)
            if self.blackholed:
                continue
            try:
                u = socket.create_connection(self.upstream, timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks.append(u)
            threading.Thread(target=self._pump, args=(c, u, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, True), daemon=True).start()

    def _pump(self, src, dst, down):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if self.blackholed:
                    continue
                if down:
                    self.down_bytes += len(d)
                dst.sendall(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


@test
def a_download_whose_database_hangs_ends_and_frees_the_worker():
    eid, data = evidence()
    u = urllib.parse.urlsplit(DATABASE_URL)
    if not u.scheme.startswith("postgres") or not u.hostname or u.hostname.startswith("/"):
        skip("DATABASE_URL is not a postgresql://host:port URL")
    proxy = Proxy(u.hostname, u.port or 5432)
    userinfo = u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else ""
    url = urllib.parse.urlunsplit((u.scheme, "%s127.0.0.1:%d" % (userinfo, proxy.port), u.path, u.query, ""))
    # one worker: if the download pins it, nothing else is served
    srv = extra_server({"DUCHA_THREADS": "1", "DUCHA_STATEMENT_TIMEOUT": "800"}, database_url=url)
    s = None
    try:
        s = connect(srv.port, timeout=10, rcvbuf=16384)
        s.sendall(request(eid))
        eq(read_status(s), 200, "the download through the proxy")
        got = 12
        while got < 65536:
            d = s.recv(65536)
            check(d, "the download ended after %d bytes before the database hung" % got)
            got += len(d)
        passed = proxy.down_bytes
        proxy.blackholed = True
        t_hang = time.monotonic()
        check(passed < SIZE, "setup: all %d bytes had come from PostgreSQL before the black hole" % passed)
        end = {}

        def reader():
            n = got
            try:
                s.settimeout(15)
                while True:
                    d = s.recv(65536)
                    if not d:
                        end["how"] = "closed"
                        break
                    n += len(d)
            except socket.timeout:
                end["how"] = "still open after 15 s"
            except OSError as exc:
                end["how"] = "reset (%s)" % exc.__class__.__name__
            end["bytes"] = n
            end["after"] = time.monotonic() - t_hang
        t = threading.Thread(target=reader, daemon=True)
        t.start()

        time.sleep(0.2)
        r = srv.client().get("/healthz", timeout=5)
        took = time.monotonic() - t_hang
        expect_status(r, 200, "GET /healthz while the download's database hangs")
        check(took <= 2.5, "GET /healthz was answered %.2f s after the database hung (one worker: the download "
              "held it)" % took)
        r2 = srv.client().get("/healthz", timeout=5)
        check(r2.elapsed < 1.0, "a second GET /healthz took %.2f s" % r2.elapsed)
        t.join(20)
        check("how" in end, "the reader did not finish")
        check(end["how"] != "still open after 15 s",
              "the interrupted download neither ended nor sent anything for 15 s (%d of %d bytes)" % (
                  end["bytes"], SIZE))
        note("download through a hanging database: %s after %.2f s with %d of %d bytes (header included); "
             "GET /healthz answered %.2f s after the hang" % (end["how"], end["after"], end["bytes"], SIZE, took))
        check(end["bytes"] < SIZE, "the whole file arrived although the database hung after %d bytes; "
              "the test proved nothing" % passed)
    finally:
        if s:
            s.close()
        proxy.blackholed = False
        proxy.close()
        rc = srv.stop()
        out = srv.output()
    check(rc == 0, "the proxied server's exit status after SIGTERM: %s\n%s" % (rc, tail(out, 20)))


if __name__ == "__main__":
    try:
        main(server_env=SERVER_ENV)
    finally:
        if "psql" in state:
            state["psql"].close()
