#!/usr/bin/python3
"""Backup and restore (issue 12, Operations), the README's procedure: pg_dump of a database of
this file's own while its server runs, pg_restore into a fresh database, a server on that one with
the same audit key: every record is there (each table's rows and the sequences equal), every
evidence byte comes back, and the audit chain verifies with the key, anchored by the checkpoint;
with another key it does not. Writing to the restored database goes on where the old one was."""

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, Server, check, ctx, db, eq, expect_status, fresh_database,  # noqa: E402
                     main, qs, run_cli, skip, stop_all, tail, test)

PG_BIN = "/usr/lib/postgresql/15/bin"
KEY_DIR = tempfile.mkdtemp(prefix="ducha-backup-key-")
state = {"servers": []}


def tool(name):
    path = os.path.join(PG_BIN, name)
    return path if os.path.exists(path) else name


def key_file(name, data):
    """A new key file of mode 0600 (mkstemp's) in KEY_DIR."""
    fd, path = tempfile.mkstemp(prefix=name + ".", dir=KEY_DIR)
    os.write(fd, data)
    os.close(fd)
    return path


def server(app_url, key):
    srv = Server({"DUCHA_AUDIT_KEY_FILE": key}, database_url=app_url).start()
    state["servers"].append(srv)
    return srv


def admin_of(srv, app_url):
    env = {"DATABASE_URL": app_url}
    name = "bk_admin_%s" % ctx.prefix
    run_cli(["user", "create", "--username", name, "--role", "admin", "--password-stdin"], stdin="pw-secret-1",
            env=env, check_rc=True)
    p = run_cli(["token", "create", "--user", name], env=env, check_rc=True)
    return srv.client(re.search(r"dch_[A-Za-z0-9_-]{43}", p.stdout).group(0))


def table_digests(owner_url):
    """{table: (rows, md5 of its rows in order)} of every table, and {sequence: last_value}."""
    tables = db("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", url=owner_url).split()
    sql = " UNION ALL ".join(
        "SELECT '%s', count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM %s t" % (t, t)
        for t in tables)
    out = {}
    for line in db(sql, url=owner_url).splitlines():
        name, n, digest = line.split("|")
        out[name] = (int(n), digest)
    seqs = dict(line.split("|") for line in db(
        "SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences WHERE schemaname = 'public'",
        url=owner_url).splitlines() if line)
    return out, seqs


def upload(client, item_id, data, name, ctype):
    r = client.post(API + "/items/%d/evidence" % item_id, body=data, ctype=ctype,
                    headers={"Content-Disposition": "attachment; filename*=UTF-8''" + urllib.parse.quote(name)})
    expect_status(r, 201, "upload " + name)
    return r.json


@test
def dump_and_restore_keep_every_record_byte_and_the_chain():
    for exe in ("pg_dump", "pg_restore"):
        if not os.path.exists(tool(exe)):
            skip("%s not installed" % exe)
    src_name, dst_name = "ducha_t_%s_bk_src" % ctx.prefix, "ducha_t_%s_bk_dst" % ctx.prefix
    state["dbs"] = [src_name, dst_name]
    src_owner, src_app = fresh_database(src_name)
    for cmd in (["migrate"], ["seed"]):
        p = run_cli(cmd, env={"DATABASE_URL": src_app, "DUCHA_MIGRATION_DATABASE_URL": src_owner})
        eq(p.returncode, 0, "%s: %s" % (cmd[0], tail(p.stderr)))
    key = key_file("audit.key", os.urandom(32))
    src = server(src_app, key)
    admin = admin_of(src, src_app)

    # records of every kind the restore must bring back, evidence of several 256 KiB chunks
    dept = admin.post(API + "/departments", json={"name": "备份测试局"}).json
    ins = admin.post(API + "/inspections", json={"target_department_id": dept["id"], "inspected_on": "2026-03-15",
                                                 "title": "备份督察"}).json
    items = admin.get(API + "/inspections/%d/items?limit=200" % ins["id"]).json["data"]
    prob = admin.post(API + "/items/%d/problems" % items[0]["id"], json={"description": "未公开"}).json
    rect = admin.post(API + "/problems/%d/rectifications" % prob["id"],
                      json={"measure": "按季度公开", "responsible_department_id": dept["id"],
                            "deadline": "2026-12-31"})
    expect_status(rect, 201, "rectification")
    rect = rect.json
    big = b"%PDF-1.4\n" + os.urandom(700 * 1024) + b"\n%%EOF\n"
    small = "整改材料：已公开。\n".encode("utf-8")
    evidence = [(upload(admin, items[0]["id"], big, "材料.pdf", "application/pdf"), big),
                (upload(admin, items[1]["id"], small, "说明.txt", "text/plain; charset=utf-8"), small)]
    cp = admin.post(API + "/audit-events/checkpoints")
    expect_status(cp, 201, "checkpoint")
    admin.patch(API + "/departments/%d" % dept["id"], json={"name": "备份测试局（改）"}, headers={"If-Match": "*"},
                ctype="application/merge-patch+json")  # one event after the checkpoint: unanchored
    window = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    before = admin.get(API + "/audit-events/verify?" + qs(**window))
    expect_status(before, 200, "verify before")
    check(before.json["ok"] and before.json["anchored"], "the source verifies: %s" % before.json)
    reads = [API + "/departments/%d" % dept["id"], API + "/inspections/%d" % ins["id"],
             API + "/inspections/%d/form" % ins["id"], API + "/rectifications/%d" % rect["id"],
             API + "/problems/%d" % prob["id"], API + "/audit-events?limit=200", API + "/audit-events/checkpoints"] + \
        [API + "/evidence/%d" % e["id"] for e, _ in evidence]
    answers = {path: admin.get(path).json for path in reads}

    # the backup, taken while the server runs (one snapshot), and the restore
    dump = os.path.join(KEY_DIR, "ducha.dump")
    p = subprocess.run([tool("pg_dump"), "--format=custom", "--file=" + dump, src_owner], capture_output=True,
                       text=True, timeout=120)
    eq(p.returncode, 0, "pg_dump: %s" % p.stderr)
    dst_owner, dst_app = fresh_database(dst_name)
    p = subprocess.run([tool("pg_restore"), "--exit-on-error", "--single-transaction", "--dbname=" + dst_owner, dump],
                       capture_output=True, text=True, timeout=300)
    eq(p.returncode, 0, "pg_restore: %s" % p.stderr)

    # every record: each table's rows, and the sequences
    src_tables, src_seqs = table_digests(src_owner)
    dst_tables, dst_seqs = table_digests(dst_owner)
    check(len(src_tables) >= 10, "tables: %s" % sorted(src_tables))
    differ = sorted(t for t in src_tables if src_tables[t] != dst_tables.get(t))
    check(not differ, "tables whose rows differ after the restore: %s" % differ)
    eq(dst_seqs, src_seqs, "sequences")
    check(src_tables["evidence_chunks"][0] >= 3, "evidence in several chunks: %s" % (src_tables["evidence_chunks"],))

    # a server on the restored database, with the key kept apart from it
    dst = server(dst_app, key)
    again = dst.client(admin.token)
    for path in reads:
        r = again.get(path)
        expect_status(r, 200, path)
        eq(r.json, answers[path], "%s after the restore" % path)
    for e, data in evidence:
        r = again.get(API + "/evidence/%d/content" % e["id"])
        expect_status(r, 200, "evidence %d" % e["id"])
        check(r.body == data, "evidence %d: %d bytes back of %d" % (e["id"], len(r.body), len(data)))
        eq(r.etag, '"%s"' % hashlib.sha256(data).hexdigest(), "evidence %d ETag (SHA-256)" % e["id"])
    after = again.get(API + "/audit-events/verify?" + qs(**window))
    expect_status(after, 200, "verify after")
    eq(after.json, before.json, "verify on the restored database")
    check(after.json["ok"] and after.json["anchored"] and after.json["checkpoints_checked"] >= 1,
          "anchored by the checkpoint: %s" % after.json)
    eq(after.json["unanchored_events"], 1, "the change after the checkpoint")

    # the chain goes on: a change on the restored database is audited and verifies
    r = again.post(API + "/departments", json={"name": "恢复后新建"})
    expect_status(r, 201, "a new record after the restore")
    v = again.get(API + "/audit-events/verify?" + qs(**window)).json
    check(v["ok"], "verify after a change on the restored database: %s" % v)
    state["dst_app"] = dst_app


@test
def without_the_key_the_checkpoints_do_not_verify():
    if "dst_app" not in state:
        skip("the restore did not happen")
    other = server(state["dst_app"], key_file("other.key", os.urandom(32)))
    env = {"DATABASE_URL": state["dst_app"]}
    p = run_cli(["token", "create", "--user", "bk_admin_%s" % ctx.prefix], env=env, check_rc=True)
    token = re.search(r"dch_[A-Za-z0-9_-]{43}", p.stdout).group(0)
    v = other.client(token).get(API + "/audit-events/verify?" + qs(**{"from": "2000-01-01T00:00:00Z",
                                                                    "to": "2100-01-01T00:00:00Z"})).json
    check(not v["ok"], "a checkpoint verified with another key: %s" % v)
    check(any("another key" in p["problem"] for p in v["problems"]), "the problem names the key: %s" % v["problems"])


def cleanup():
    stop_all(state["servers"], state.get("dbs", []))


@test
def servers_stop_and_databases_go():
    stop_all(state["servers"], state.get("dbs", []), strict=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
