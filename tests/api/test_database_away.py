#!/usr/bin/python3
"""The database goes away and comes back: a second server talks to PostgreSQL through a TCP
proxy that the test cuts, black-holes and restores."""

import os
import socket
import sys
import threading
import time
import urllib.parse
import re

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, DATABASE_URL, PsqlSession, Server, TestFailure, check, ctx, eq, expect_problem,  # noqa: E402
                     expect_status, main, mk_dept, skip, tail, test)

LIMIT = 1.0          # seconds: "503 within a second"


def parse_database_url(url):
    """Returns (upstream, rewrite) where upstream is ('tcp', host, port) or ('unix', path) and
    rewrite(port) gives the URL pointed at 127.0.0.1:port."""
    env_host = os.environ.get("PGHOST", "/var/run/postgresql")
    env_port = int(os.environ.get("PGPORT", "5432"))
    if re.match(r"^postgres(ql)?://", url):
        u = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
        qd = dict(query)
        host = urllib.parse.unquote(u.hostname or "") if u.hostname else qd.get("host") or env_host
        if "," in host:
            host = host.split(",")[0]
        port = int(u.port or qd.get("port") or env_port)
        userinfo = u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else ""
        rest = [(k, v) for k, v in query if k not in ("host", "port", "hostaddr")]

        def rewrite(p):
            return urllib.parse.urlunsplit((u.scheme, "%s127.0.0.1:%d" % (userinfo, p), u.path,
                                            urllib.parse.urlencode(rest), u.fragment))
    else:
        pairs = re.findall(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", url)
        d = {k: v.strip("'") for k, v in pairs}
        host = d.get("host") or d.get("hostaddr") or env_host
        port = int(d.get("port") or env_port)
        rest = [(k, v) for k, v in pairs if k not in ("host", "port", "hostaddr")]

        def rewrite(p):
            return " ".join(["host=127.0.0.1", "port=%d" % p] + ["%s=%s" % kv for kv in rest])
    if host.startswith("/"):
        return ("unix", os.path.join(host, ".s.PGSQL.%d" % port)), rewrite
    return ("tcp", host, port), rewrite


class Proxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.port = None
        self.lsock = None
        self.mode = "forward"      # forward | blackhole
        self.conns = []            # sockets of live connections
        self.lock = threading.Lock()

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port or 0))
        s.listen(64)
        self.port = s.getsockname()[1]
        self.lsock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def start(self):
        self._listen()
        return self

    def _connect_upstream(self):
        if self.upstream[0] == "unix":
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.settimeout(5)
            u.connect(self.upstream[1])
        else:
            u = socket.create_connection(self.upstream[1:], timeout=5)
        u.settimeout(None)
        return u

    def _accept(self, lsock):
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            with self.lock:
                if lsock is not self.lsock:
                    c.close()
                    return
                self.conns.append(c)
                mode = self.mode
            if mode == "blackhole":
                continue               # hold it open, never answer
            try:
                u = self._connect_upstream()
            except OSError:
                self._close(c)
                continue
            with self.lock:
                self.conns.append(u)
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue           # swallow: the other side never hears back
                dst.sendall(data)
        except OSError:
            pass
        self._close(src)
        self._close(dst)

    @staticmethod
    def _close(s):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def _drop_all(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            self._close(s)

    def cut(self):
        """Close the listener and every connection: the database is gone."""
        with self.lock:
            ls, self.lsock = self.lsock, None
        if ls:
            self._close(ls)
        self._drop_all()

    def blackhole(self):
        """Keep everything open but never answer: the database hangs."""
        self.mode = "blackhole"

    def restore(self):
        self._drop_all()
        self.mode = "forward"
        if self.lsock is None:
            for _ in range(50):
                try:
                    self._listen()
                    return
                except OSError:
                    time.sleep(0.1)
            raise TestFailure("cannot listen on the proxy port %d again" % self.port)


state = {}


def client():
    return state["server"].client(ctx.admin.token)


def timed(label, r, limit=LIMIT):
    check(r.elapsed < limit, "%s answered %d after %.2f s (limit %.2f s)" % (label, r.status, r.elapsed, limit))
    return r


def need_server():
    if "server" not in state:
        skip("the proxied server did not start")


@test
def proxied_server_works():
    upstream, rewrite = parse_database_url(DATABASE_URL)
    proxy = Proxy(upstream).start()
    state["proxy"] = proxy
    srv = Server(database_url=rewrite(proxy.port))
    srv.start()
    state["server"] = srv
    r = client().get(API + "/departments?limit=5")
    expect_status(r, 200)
    r = client().get("/readyz")
    expect_status(r, 200)
    eq(r.json, {"status": "ready"})


@test
def cut_database_answers_503_within_a_second():
    need_server()
    state["proxy"].cut()
    time.sleep(0.1)
    for round_ in range(3):
        r = timed("/readyz", client().get("/readyz"))
        expect_problem(r, 503, "unavailable")
        r = timed("GET /departments", client().get(API + "/departments"))
        expect_problem(r, 503, "unavailable")
        r = timed("GET /inspections/1/form", client().get(API + "/inspections/1/form"))
        expect_problem(r, 503, "unavailable")
        r = timed("POST /departments", client().post(API + "/departments", json={"name": ctx.uniq("away")}))
        expect_problem(r, 503, "unavailable")
    r = client().get(API + "/departments", token="dch_" + "C" * 43)
    check(r.status in (401, 503), "a bad token while the database is away: %d" % r.status)
    r = client().get("/healthz")
    expect_status(r, 200, "/healthz while the database is away")
    check(state["server"].alive(), "the server died")


def _recovered(within=5.0, label="restore"):
    t0 = time.monotonic()
    good_rounds = 0
    last = None
    while time.monotonic() - t0 < within:
        results = [None] * 8

        def one(i):
            try:
                results[i] = client().get(API + "/departments?limit=1", timeout=5).status
            except Exception as exc:  # connection errors count as failures
                results[i] = repr(exc)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        last = results
        if all(x == 200 for x in results):
            good_rounds += 1
            if good_rounds >= 2:
                return time.monotonic() - t0
        else:
            good_rounds = 0
            time.sleep(0.1)
    raise TestFailure("%s: requests did not all succeed within %.0f s; last round: %s" % (label, within, last))


@test
def restored_database_is_used_again_without_restart():
    need_server()
    state["proxy"].restore()
    took = _recovered()
    r = client().get("/readyz")
    expect_status(r, 200)
    name = ctx.uniq("恢复后")
    r = client().post(API + "/departments", json={"name": name})
    expect_status(r, 201, "a write after recovery")
    if took > 1.0:
        print("# recovery took %.2f s" % took)


@test
def hanging_database_answers_503_within_a_second():
    need_server()
    state["proxy"].blackhole()
    slow = []
    for path in ("/readyz", API + "/departments", API + "/departments?limit=2"):
        try:
            r = client().get(path, timeout=3)
        except TestFailure as exc:
            slow.append(str(exc))
            continue
        if r.elapsed >= LIMIT + 0.25 or r.status != 503:
            slow.append("GET %s answered %d after %.2f s" % (path, r.status, r.elapsed))
        else:
            expect_problem(r, 503, "unavailable")
    check(not slow, "with a hanging database (connections open, no answers):\n" + "\n".join(slow))


@test
def recovers_after_the_hang():
    need_server()
    state["proxy"].restore()
    _recovered(within=8.0, label="restore after the hang")


@test
def a_statement_out_of_time_is_504_not_503():
    # the database is there, but the row the change needs is held by someone else past the
    # statement's budget: 504 query-timeout, and the next request is served at once
    dept = mk_dept()
    holder = PsqlSession(os.environ.get("DUCHA_MIGRATION_DATABASE_URL") or DATABASE_URL)
    try:
        holder.q("BEGIN")
        holder.q("SELECT 1 FROM departments WHERE id = %d FOR UPDATE" % dept["id"])
        r = ctx.admin.patch(API + "/departments/%d" % dept["id"], json={"name": dept["name"] + "改"},
                            headers={"If-Match": "*"})
        expect_problem(r, 504, "query-timeout")
        check(r.elapsed < 3.0, "answered within the budget (%.2f s)" % r.elapsed)
        expect_status(ctx.admin.get(API + "/departments/%d" % dept["id"]), 200)
    finally:
        holder.q("ROLLBACK")
        holder.close()
    r = ctx.admin.patch(API + "/departments/%d" % dept["id"], json={"name": dept["name"] + "改"},
                        headers={"If-Match": "*"})
    expect_status(r, 200)


@test
def proxied_server_exits_0_on_sigterm():
    need_server()
    srv = state["server"]
    check(srv.alive(), "the server died: rc %s\n%s" % (srv.proc.poll(), tail(srv.output())))
    rc = srv.stop()
    if rc != 0:
        raise TestFailure("exit status %s after SIGTERM; output:\n%s" % (rc, tail(srv.output(), 40)))


if __name__ == "__main__":
    try:
        main()
    finally:
        if "server" in state and state["server"].alive():
            state["server"].stop()
