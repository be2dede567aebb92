#!/usr/bin/python3
"""Reports hold database connections for seconds (statistics, exports, audit verification run
under DUCHA_REPORT_TIMEOUT), so at most DUCHA_MAX_REPORTS of them run at once: one more answers
429 with Retry-After at once, while interactive requests keep their connections.

The report is kept waiting by a lock on a table only reports read, in a database of this file's
own (a lock in the shared one would stop the other files' requests)."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, PsqlSession, Server, check, cli_token, ctx, db, eq, expect_problem,  # noqa: E402
                     expect_status, main, own_database, stop_all, tail, test)

state = {"servers": [], "dbs": []}


def world():
    """(owner's URL, service's URL, an admin's token) of this file's database, made once."""
    if "token" not in state:
        name = "ducha_t_%s_reports" % ctx.prefix
        state["dbs"].append(name)
        state["owner_url"], state["app_url"] = own_database(name)
        state["token"] = cli_token(state["app_url"], "rp_admin")
    return state["owner_url"], state["app_url"], state["token"]


def server(env):
    srv = Server(env, database_url=world()[1]).start()
    state["servers"].append(srv)
    return srv


@test
def one_report_too_many_is_429_and_the_rest_go_on():
    owner_url, app_url, token = world()
    srv = server({"DUCHA_MAX_REPORTS": "1"})
    admin = srv.client(token)
    expect_status(admin.get(API + "/statistics/departments"), 200, "a report alone")

    locker = PsqlSession(owner_url)
    locker.q("BEGIN")
    locker.q("LOCK TABLE statistics_state IN ACCESS EXCLUSIVE MODE")
    held = {}
    t = threading.Thread(target=lambda: held.update(r=admin.get(API + "/statistics/departments", timeout=30)))
    t.start()
    try:
        deadline = time.time() + 10
        while time.time() < deadline and db(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'statistics_state'::regclass",
                url=owner_url) == "0":
            time.sleep(0.05)
        check(time.time() < deadline, "the first report waits on the lock")
        r = admin.get(API + "/statistics/trend")
        expect_problem(r, 429, "too-many-requests")
        check(r.h("Retry-After") is not None, "Retry-After")
        expect_status(admin.get(API + "/audit-events/verify?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"), 429,
                      "every kind of report counts")
        started = time.time()
        expect_status(admin.get(API + "/departments?limit=5"), 200, "interactive requests go on")
        check(time.time() - started < 2, "at once")
    finally:
        locker.q("ROLLBACK")
        locker.close()
        t.join(30)
    expect_status(held["r"], 200, "the waiting report, once the lock went")
    expect_status(admin.get(API + "/statistics/trend"), 200, "its slot is free again")


@test
def a_report_runs_under_the_reporting_budget():
    """A report waiting on a lock answers 504 query-timeout after DUCHA_REPORT_TIMEOUT, and runs
    longer than the interactive DUCHA_STATEMENT_TIMEOUT."""
    owner_url, _, token = world()
    for env, status in (({"DUCHA_REPORT_TIMEOUT": "100"}, 504),
                        ({"DUCHA_STATEMENT_TIMEOUT": "100", "DUCHA_REPORT_TIMEOUT": "5000"}, 200)):
        srv = server(env)
        s = PsqlSession(owner_url)
        try:
            s.q("BEGIN")
            s.q("LOCK TABLE statistics_state IN ACCESS EXCLUSIVE MODE")
            timer = threading.Timer(0.4, lambda: s.q("ROLLBACK"))
            timer.start()
            r = srv.client(token).get(API + "/statistics/departments")
            timer.join()
        finally:
            s.close()
            srv.stop()
        if status == 504:
            expect_problem(r, 504, "query-timeout")
        else:
            expect_status(r, 200, "a report may run longer than an interactive request")


def cleanup():
    stop_all(state["servers"], state["dbs"])


@test
def the_server_stops_and_its_database_goes():
    stop_all(state["servers"], state["dbs"], strict=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
