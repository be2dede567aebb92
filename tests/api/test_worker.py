#!/usr/bin/python3
"""The background worker (issue 9 §1): `ducha serve` runs jobs on a connection of its own; with
two replicas on one database each run happens once; a failure is logged, kept in the job's row
and retried; the jobs' changes are audited as the system; SIGTERM stops the worker with the rest.

Jobs run only when this file makes them due (next_run_at), so that the other files' checkpoints
are not disturbed: the servers of the other files run no jobs (harness: DUCHA_JOBS=none)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, Server, check, ctx, db, eq, expect_status, extra_server, main, mk_dept,  # noqa: E402
                     test)

JOBS = ("purge-idempotency-keys", "audit-checkpoint")
# The key every file that makes checkpoints signs with (test_checkpoints.py).
TEST_KEY = b"ducha test audit key; not a secret: 0123456789abcdef"
KEY_DIR = tempfile.mkdtemp(prefix="ducha-worker-key-")


def key_file(name, data):
    path = os.path.join(KEY_DIR, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


KEY = key_file("audit.key", TEST_KEY)


_started = []


def replica(**extra):
    """A server running jobs; the ones a failed test left running are stopped by the next."""
    srv = extra_server(worker_env(**extra))
    _started.append(srv)
    return srv


def stop_leftovers():
    while _started:
        _started.pop().stop()


def worker_env(**extra):
    env = {"DUCHA_JOBS": ",".join(JOBS), "DUCHA_JOB_POLL_MS": "100", "DUCHA_AUDIT_KEY_FILE": KEY}
    env.update(extra)
    return env


def job(name):
    """(runs, failures, last_error, last_worker, last_result) of a job's row."""
    row = db("SELECT runs, failures, coalesce(last_error, ''), coalesce(last_worker, ''),"
             " coalesce(last_result::text, '') FROM jobs WHERE name = '%s'" % name)
    runs, failures, error, worker, result = row.split("|", 4)
    return int(runs), int(failures), error, worker, result


def postpone_all():
    """This file's jobs (the other files' job tests make theirs due at the same time)."""
    db("UPDATE jobs SET next_run_at = now() + interval '1 day' WHERE name IN (%s)" % ",".join("'%s'" % n for n in JOBS))


def make_due(*names):
    db("UPDATE jobs SET next_run_at = now() WHERE name IN (%s)" % ",".join("'%s'" % n for n in names))


def own_ports(srv):
    """The local ports of srv's TCP connections (to PostgreSQL and any other), from ss."""
    out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True, text=True).stdout
    ports = set()
    for line in out.splitlines():
        if "pid=%d," % srv.proc.pid in line:
            local = line.split()[2]
            ports.add(int(local.rsplit(":", 1)[1]))
    return sorted(ports)


def wait_for(what, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    check(False, "timed out waiting for %s" % what)


def checkpoints():
    return int(db("SELECT count(*) FROM audit_checkpoints"))


@test
def two_replicas_run_each_job_once_and_stop_on_sigterm():
    stop_leftovers()
    postpone_all()
    a = replica()
    b = replica()
    me = int(db("SELECT min(id) FROM users"))
    for round_ in range(3):
        # keys past their 24 hours (and a claim a crashed request left running) go; fresh ones stay
        tag = "%s-%d" % (ctx.prefix, round_)
        db("INSERT INTO idempotency_keys (user_id, key, method, path, body_hash, state, created_at) VALUES"
           " (%d, 'old-%s', 'POST', '/x', '\\x00', 'done', now() - interval '25 hours'),"
           " (%d, 'stuck-%s', 'POST', '/x', '\\x00', 'running', now() - interval '6 minutes'),"
           " (%d, 'new-%s', 'POST', '/x', '\\x00', 'done', now() - interval '23 hours')"
           % (me, tag, me, tag, me, tag))
        mk_dept()  # an audit event since the newest checkpoint: the checkpoint job has work
        before = {n: job(n)[0] for n in JOBS}
        made = checkpoints()
        make_due(*JOBS)
        wait_for("both jobs to run", lambda: all(job(n)[0] > before[n] for n in JOBS))
        time.sleep(1.0)  # 10 polls of each replica: a second run would show by now
        for n in JOBS:
            eq(job(n)[0], before[n] + 1, "round %d: %s ran once across two replicas" % (round_, n))
            eq(job(n)[1], 0, "no failure")
        eq(checkpoints(), made + 1, "round %d: one checkpoint" % round_)
        left = db("SELECT string_agg(key, ',' ORDER BY key) FROM idempotency_keys WHERE key LIKE '%%-%s'" % tag)
        eq(left, "new-%s" % tag, "expired keys purged, the fresh one kept")
    pids = (":%d" % a.proc.pid, ":%d" % b.proc.pid)
    workers = [job(n)[3] for n in JOBS]
    check(all(w.endswith(pids) for w in workers), "the row names the replica that ran it: %s %s" % (workers, pids))
    postpone_all()
    for srv in (a, b):
        t0 = time.monotonic()
        eq(srv.stop(), 0, "SIGTERM: exits 0 with its worker")
        check(time.monotonic() - t0 < 5, "stopped within 5 s (took %.1f s)" % (time.monotonic() - t0))
        check("worker: jobs {" in srv.output(), "the log names the jobs it runs")


@test
def the_jobs_changes_are_audited_as_the_system():
    stop_leftovers()
    postpone_all()
    srv = replica()
    me = int(db("SELECT min(id) FROM users"))
    db("INSERT INTO idempotency_keys (user_id, key, method, path, body_hash, state, created_at) VALUES"
       " (%d, 'audited-%s', 'POST', '/x', '\\x00', 'done', now() - interval '2 days')" % (me, ctx.prefix))
    mk_dept()
    runs = {n: job(n)[0] for n in JOBS}
    make_due(*JOBS)
    wait_for("both jobs", lambda: all(job(n)[0] > runs[n] for n in JOBS))
    postpone_all()
    for action, entity in (("purge", "idempotency_key"), ("checkpoint", "audit_checkpoint")):
        r = ctx.admin.get(API + "/audit-events?action=%s&entity_type=%s&limit=1" % (action, entity))
        expect_status(r, 200)
        ev = r.json["data"][0]
        eq(ev["actor_id"], None, "%s: no user is its actor" % action)
        eq(ev["request_id"], "job:" + ("purge-idempotency-keys" if action == "purge" else "audit-checkpoint"),
           "%s: the request id names the job" % action)
    check('"deleted"' in job("purge-idempotency-keys")[4], "the row keeps what the run did")
    # this replica's connections (other files' servers may run a worker in the same database)
    ports = own_ports(srv)
    check(ports, "the replica's database connections are found (ss)")
    eq(db("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ducha worker'"
          " AND datname = current_database() AND client_port IN (%s)" % ",".join(map(str, ports))), "1",
       "the worker has a connection of its own, named")
    eq(srv.stop(), 0, "exits 0")


@test
def a_failing_job_is_logged_kept_and_retried():
    postpone_all()
    missing = os.path.join(KEY_DIR, "later.key")
    srv = replica(DUCHA_AUDIT_KEY_FILE=missing, DUCHA_JOBS="audit-checkpoint")
    mk_dept()
    runs, failures = job("audit-checkpoint")[:2]
    make_due("audit-checkpoint")
    wait_for("the failure", lambda: job("audit-checkpoint")[1] > failures)
    _, _, error, _, _ = job("audit-checkpoint")
    check("key" in error, "the row keeps the error: %r" % error)
    check("job audit-checkpoint failed" in srv.output(), "the log says it failed")
    eq(job("audit-checkpoint")[0], runs, "a failure is not a run")
    key_file("later.key", TEST_KEY)
    wait_for("the retry to succeed", lambda: job("audit-checkpoint")[0] > runs, timeout=20)
    eq(job("audit-checkpoint")[1:3], (0, ""), "success clears the failures")
    postpone_all()
    eq(srv.stop(), 0, "exits 0")


@test
def unknown_jobs_are_refused_at_start():
    srv = Server(worker_env(DUCHA_JOBS="purge-idempotency-keys,make-coffee"))
    try:
        srv.start(wait=3)
        check(False, "a server with an unknown job started")
    except RuntimeError as e:
        check("make-coffee" in str(e) and "not a job" in str(e), "the error names it: %s" % str(e)[-300:])


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(KEY_DIR, ignore_errors=True)
