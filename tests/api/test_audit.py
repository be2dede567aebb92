#!/usr/bin/python3
"""留痕: every change writes exactly one audit event in its own transaction (actor, action,
entity, request id, client address, the changed fields before and after); a failed change
writes none, and a change whose event cannot be written does not happen; the service's role
cannot rewrite the trail; the owner's edits and deletions are found by /audit-events/verify;
the events list and its filters.

Other test files write events at the same time, so every check here looks at events by their
request id or entity, and verification covers this file's own time range only. Tampering is
undone at the end of each tamper test."""

import datetime as _dt
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, DATABASE_URL, OWNER_DATABASE_URL, UTC_DATETIME_RE, PsqlSession, Server, TestFailure,  # noqa: E402
                     check, ctx, day, db_owner, db_try, eq, expect_problem, expect_status, main, make_user,
                     mk_dept, qs, skip, sql_str, test)

PW = "audit-user-secret-1"
EVENT_KEYS = sorted(["id", "occurred_at", "actor_id", "actor_name", "action", "entity_type", "entity_id",
                     "request_id", "client_address", "before", "after"])
psql = PsqlSession()
T0 = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
SRC = "127.%d.%d.%d" % (random.randint(2, 254), random.randint(0, 255), random.randint(2, 254))
_n = [0]
_me = {}


def q1(sql):
    return psql.q(sql)


def rid(label="a"):
    _n[0] += 1
    return "aud-%s-%s-%d" % (ctx.prefix, label, _n[0])


def now_utc(offset_s=0):
    t = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s):
    return _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def admin():
    """The admin client, connecting from this file's own source address."""
    return ctx.admin.from_address(SRC)


def admin_user():
    if not _me:
        me = ctx.admin.get(API + "/me").json["user"]
        _me.update(id=me["id"], username=me["username"])
    return _me


def events_of(request_id):
    """The events carrying a request id, as GET /audit-events shows them (found in the database,
    then listed through the API in a 1 ms window around each)."""
    fmt = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
    rows = q1("SELECT coalesce(string_agg(id || ' ' || to_char(occurred_at AT TIME ZONE 'UTC', %s) || ' ' ||"
              " to_char((occurred_at + interval '1 millisecond') AT TIME ZONE 'UTC', %s), ',' ORDER BY id), '')"
              " FROM audit_events WHERE occurred_at >= '%s' AND request_id = %s" % (fmt, fmt, T0, sql_str(request_id)))
    out = []
    for part in [x for x in rows.split(",") if x]:
        eid, t1, t2 = part.split()
        listed = ctx.admin.list_all(API + "/audit-events?" + qs(**{"from": t1, "to": t2}))
        found = [e for e in listed if e["id"] == int(eid)]
        eq(len(found), 1, "event %s listed by GET /audit-events" % eid)
        out.append(found[0])
    return out


def the_event(request_id):
    evs = events_of(request_id)
    eq(len(evs), 1, "audit events written by request %s" % request_id)
    e = evs[0]
    eq(sorted(e), EVENT_KEYS, "event keys")
    check(UTC_DATETIME_RE.match(e["occurred_at"]), "occurred_at %r" % e["occurred_at"])
    eq(e["request_id"], request_id, "request_id")
    return e


def no_events(request_id, what):
    eq(q1("SELECT count(*) FROM audit_events WHERE occurred_at >= '%s' AND request_id = %s" % (
        T0, sql_str(request_id))), "0",
       "audit events written by %s" % what)


def check_time(e, t_before, t_after):
    t = parse_time(e["occurred_at"])
    check(t_before - _dt.timedelta(seconds=2) <= t <= t_after + _dt.timedelta(seconds=2),
          "occurred_at %s is not the time of the request (%s .. %s)" % (e["occurred_at"], t_before, t_after))


def verify(frm=None, to=None, client=None):
    r = (client or ctx.admin).get(API + "/audit-events/verify?" + qs(**{"from": frm or T0, "to": to or now_utc(60)}))
    expect_status(r, 200, "verify")
    return r


def need_owner():
    if not OWNER_DATABASE_URL:
        skip("DUCHA_MIGRATION_DATABASE_URL is not set")


def mkuser(role="viewer"):
    r = ctx.admin.post(API + "/users", json={"username": "au_%s_%s" % (ctx.prefix, ctx.uniq("u").rsplit("-", 1)[1]),
                                              "role": role, "password": PW})
    expect_status(r, 201)
    return r.json


def login(username, password=PW, request_id=None, source=SRC):
    return ctx.server.client(None).from_address(source).post(
        API + "/auth/token", json={"username": username, "password": password},
        headers={"X-Request-Id": request_id} if request_id else None)


# ------------------------------------------------------------------------------ what is recorded

@test
def create_patch_delete_each_write_one_event():
    me = admin_user()
    a = admin()
    t1 = _dt.datetime.now(_dt.timezone.utc)
    r1 = rid("create")
    r = a.post(API + "/departments", json={"name": ctx.uniq("留痕单位"), "kind": "department"},
               headers={"X-Request-Id": r1})
    expect_status(r, 201)
    d = r.json
    e = the_event(r1)
    check_time(e, t1, _dt.datetime.now(_dt.timezone.utc))
    eq((e["action"], e["entity_type"], e["entity_id"]), ("create", "department", d["id"]), "create event")
    eq((e["actor_id"], e["actor_name"], e["client_address"]), (me["id"], me["username"], SRC), "who and from where")
    eq(e["before"], None, "before of a create")
    eq(e["after"], d, "after of a create is the new record")
    # a PATCH records only what changed
    r2 = rid("patch")
    new = ctx.uniq("留痕改名")
    r = a.patch(API + "/departments/%d" % d["id"], json={"name": new, "kind": "department"}, if_match='"1"',
                headers={"X-Request-Id": r2})
    expect_status(r, 200)
    e = the_event(r2)
    eq((e["action"], e["entity_type"], e["entity_id"], e["actor_id"]), ("update", "department", d["id"], me["id"]))
    eq((e["before"], e["after"]), ({"name": d["name"]}, {"name": new}), "only the changed field, before and after")
    # DELETE records what was deleted
    r3 = rid("delete")
    before_delete = ctx.admin.get(API + "/departments/%d" % d["id"]).json
    r = a.delete(API + "/departments/%d" % d["id"], if_match="*", headers={"X-Request-Id": r3})
    expect_status(r, 204)
    e = the_event(r3)
    eq((e["action"], e["entity_type"], e["entity_id"], e["after"]), ("delete", "department", d["id"], None))
    eq(e["before"], before_delete, "before of a delete is the record as it was")
    # the whole history of the record, newest first
    hist = ctx.admin.get(API + "/audit-events?" + qs(entity_type="department", entity_id=d["id"])).json["data"]
    eq([x["action"] for x in hist], ["delete", "update", "create"])


@test
def generated_request_id_is_recorded():
    r = admin().post(API + "/departments", json={"name": ctx.uniq("无请求号")})
    expect_status(r, 201)
    generated = r.h("X-Request-Id")
    e = the_event(generated)
    eq(e["entity_id"], r.json["id"])


@test
def nested_records_and_transitions():
    a = admin()
    d = mk_dept()
    r = ctx.admin.post(API + "/checklists", json={"code": ("au" + ctx.prefix).lower(), "title": ctx.uniq("留痕清单"),
                                                   "tasks": [{"content": "任务"}]})
    expect_status(r, 201)
    cl = r.json["id"]
    r1 = rid("insp")
    r = a.post(API + "/inspections", json={"target_department_id": d["id"], "inspected_on": day(0),
                                           "title": ctx.uniq("留痕督察"), "checklist_id": cl},
               headers={"X-Request-Id": r1})
    expect_status(r, 201)
    insp = r.json["id"]
    e = the_event(r1)
    eq((e["action"], e["entity_type"], e["entity_id"]), ("create", "inspection", insp), "one event for the inspection "
                                                                                        "and its items")
    item = ctx.admin.list_all(API + "/inspections/%d/items" % insp)[0]["id"]
    r2 = rid("item")
    r = a.patch(API + "/items/%d" % item, json={"completion": "not_completed"}, if_match="*", headers={"X-Request-Id": r2})
    expect_status(r, 200)
    e = the_event(r2)
    eq((e["action"], e["entity_type"], e["entity_id"], e["before"], e["after"]),
       ("update", "item", item, {"completion": "not_assessed"}, {"completion": "not_completed"}))
    r3 = rid("prob")
    r = a.post(API + "/items/%d/problems" % item, json={"description": "未公开"}, headers={"X-Request-Id": r3})
    expect_status(r, 201)
    prob = r.json["id"]
    e = the_event(r3)
    eq((e["action"], e["entity_type"], e["entity_id"], e["after"]["description"]), ("create", "problem", prob, "未公开"))
    r4 = rid("rect")
    r = a.post(API + "/problems/%d/rectifications" % prob, json={"measure": "公开", "responsible_department_id": d["id"],
                                                                  "deadline": day(10)}, headers={"X-Request-Id": r4})
    expect_status(r, 201)
    e = the_event(r4)
    eq((e["action"], e["entity_type"], e["entity_id"]), ("create", "rectification", r.json["id"]))
    r5 = rid("start")
    expect_status(a.post(API + "/inspections/%d/start" % insp, json={}, headers={"X-Request-Id": r5}), 200)
    e = the_event(r5)
    eq((e["action"], e["entity_type"], e["entity_id"], e["before"], e["after"]),
       ("start", "inspection", insp, {"status": "draft"}, {"status": "in_progress"}))
    r6 = rid("submit")
    expect_status(a.post(API + "/inspections/%d/submit" % insp, json={}, headers={"X-Request-Id": r6}), 200)
    e = the_event(r6)
    eq((e["action"], e["entity_type"], e["entity_id"], e["before"]), ("submit", "inspection", insp,
                                                                      {"status": "in_progress"}))
    eq(e["after"].get("status"), "submitted", "after of submit")


@test
def sessions_are_recorded_without_secrets():
    u = mkuser("inspector")
    src = "127.%d.%d.%d" % (random.randint(2, 254), random.randint(0, 255), random.randint(2, 254))
    # login
    r1 = rid("login")
    r = login(u["username"], request_id=r1, source=src)
    expect_status(r, 201)
    token = r.json["token"]
    e = the_event(r1)
    eq((e["action"], e["entity_type"], e["entity_id"], e["actor_id"], e["client_address"]),
       ("login", "user", u["id"], u["id"], src), "login event")
    check(token not in json.dumps(e) and token[4:] not in json.dumps(e), "the token is in the login event")
    # failed logins: a known user, an unknown one
    r2 = rid("fail")
    expect_problem(login(u["username"], "wrong-password-x", request_id=r2, source=src), 401)
    e = the_event(r2)
    eq((e["action"], e["entity_type"], e["entity_id"], e["client_address"]), ("login_failed", "user", u["id"], src))
    check("wrong-password-x" not in json.dumps(e), "the tried password is in the event")
    r3 = rid("fail")
    ghost = "ghost_" + ctx.prefix
    expect_problem(login(ghost, "wrong-password-y", request_id=r3, source=src), 401)
    e = the_event(r3)
    eq((e["action"], e["entity_id"], e["actor_id"], e["client_address"]), ("login_failed", None, None, src))
    check("wrong-password-y" not in json.dumps(e), "the tried password is in the event")
    # password change by the user, reset by the admin
    me = ctx.server.client(token).from_address(src)
    r4 = rid("pwchange")
    expect_status(me.post(API + "/me/password", json={"current_password": PW, "new_password": "audit-new-secret-2"},
                          headers={"X-Request-Id": r4}), 204)
    e = the_event(r4)
    eq((e["action"], e["entity_type"], e["entity_id"], e["actor_id"]), ("password_change", "user", u["id"], u["id"]))
    check("audit-new-secret-2" not in json.dumps(e) and PW not in json.dumps(e), "a password in the event")
    r5 = rid("reset")
    expect_status(admin().post(API + "/users/%d/password" % u["id"], json={"new_password": "audit-reset-secret-3"},
                               headers={"X-Request-Id": r5}), 200)
    e = the_event(r5)
    eq((e["action"], e["entity_type"], e["entity_id"], e["actor_id"]),
       ("password_reset", "user", u["id"], admin_user()["id"]))
    check("audit-reset-secret-3" not in json.dumps(e), "a password in the event")
    # logout and an admin's revoke
    t2 = login(u["username"], "audit-reset-secret-3", source=src).json["token"]
    r6 = rid("logout")
    expect_status(ctx.server.client(t2).from_address(src).delete(API + "/auth/token", headers={"X-Request-Id": r6}), 204)
    e = the_event(r6)
    eq((e["action"], e["entity_type"], e["entity_id"], e["actor_id"]), ("logout", "user", u["id"], u["id"]))
    login(u["username"], "audit-reset-secret-3", source=src)
    tid = ctx.admin.get(API + "/tokens?" + qs(user_id=u["id"], active="true")).json["data"][0]["id"]
    r7 = rid("revoke")
    expect_status(admin().delete(API + "/tokens/%d" % tid, headers={"X-Request-Id": r7}), 204)
    e = the_event(r7)
    eq((e["action"], e["actor_id"], e["entity_id"]), ("token_revoke", admin_user()["id"], u["id"]), "token_revoke event")
    check(str(tid) in json.dumps(e["after"]), "the revoked token's id is recorded: %s" % e["after"])


@test
def merge_writes_one_event():
    old, new = mk_dept(), mk_dept()
    r1 = rid("merge")
    r = admin().post(API + "/departments/%d/merge" % old["id"], json={"successor_id": new["id"], "reason": "机构改革"},
                     headers={"X-Request-Id": r1})
    expect_status(r, 200)
    e = the_event(r1)
    eq((e["action"], e["entity_type"], e["entity_id"], e["client_address"]), ("merge", "department", old["id"], SRC))


@test
def failed_changes_write_no_event():
    a = admin()
    d = mk_dept()
    snap = q1("SELECT d::text FROM departments d WHERE id = %d" % d["id"])
    _, vtok = make_user("viewer")
    viewer = ctx.server.client(vtok)
    cases = [
        ("400 bad body", lambda h: a.post(API + "/departments", json={"name": ""}, headers=h), 400),
        ("400 unknown field", lambda h: a.patch(API + "/departments/%d" % d["id"], json={"colour": "red"},
                                                 if_match="*", headers=h), 400),
        ("409 duplicate", lambda h: a.post(API + "/departments", json={"name": d["name"]}, headers=h), 409),
        ("412 stale", lambda h: a.patch(API + "/departments/%d" % d["id"], json={"name": "x"}, if_match='"99"',
                                        headers=h), 412),
        ("428 no If-Match", lambda h: a.patch(API + "/departments/%d" % d["id"], json={"name": "x"}, headers=h), 428),
        ("415", lambda h: a.post(API + "/departments", body='{"name": "x"}', ctype="text/plain", headers=h), 415),
        ("403", lambda h: viewer.patch(API + "/departments/%d" % d["id"], json={"name": "x"}, if_match="*",
                                       headers=h), 403),
        ("404", lambda h: a.delete(API + "/departments/987654321", if_match="*", headers=h), 404),
        ("400 merge into itself", lambda h: a.post(API + "/departments/%d/merge" % d["id"],
                                                    json={"successor_id": d["id"], "reason": "x"}, headers=h), 400),
    ]
    for label, fn, status in cases:
        request_id = rid("fail")
        r = fn({"X-Request-Id": request_id})
        eq(r.status, status, label)
        no_events(request_id, label)
    eq(q1("SELECT d::text FROM departments d WHERE id = %d" % d["id"]), snap, "the department after failed changes")
    # a department still referenced cannot be deleted, and the refused delete leaves no event
    parent = mk_dept()
    mk_dept(parent_id=parent["id"])
    request_id = rid("fail")
    r = a.delete(API + "/departments/%d" % parent["id"], if_match="*", headers={"X-Request-Id": request_id})
    expect_problem(r, 409, "still-referenced")
    no_events(request_id, "a refused delete")


@test
def a_change_whose_event_cannot_be_written_does_not_happen():
    need_owner()
    fn = "audit_fail_%s" % ctx.prefix
    marker = "auditfail-%s" % ctx.prefix
    db_owner("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
             " IF NEW.request_id LIKE '%s%%' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;"
             " CREATE TRIGGER %s BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION %s()" % (
                 fn, marker, fn, fn))
    try:
        a = admin()
        name = ctx.uniq("不应存在")
        start_errors = len(ctx.auto_errors)
        r = a.post(API + "/departments", json={"name": name}, headers={"X-Request-Id": marker + "-1"})
        check(r.status >= 500, "create whose event cannot be written answered %d" % r.status)
        eq(q1("SELECT count(*) FROM departments WHERE name = %s" % sql_str(name)), "0",
           "the department exists although its event was not written")
        d = mk_dept()
        r = a.patch(API + "/departments/%d" % d["id"], json={"name": ctx.uniq("也不应")}, if_match="*",
                    headers={"X-Request-Id": marker + "-2"})
        check(r.status >= 500, "patch answered %d" % r.status)
        eq(ctx.admin.get(API + "/departments/%d" % d["id"]).json["name"], d["name"], "the patch happened")
        r = a.delete(API + "/departments/%d" % d["id"], if_match="*", headers={"X-Request-Id": marker + "-3"})
        check(r.status >= 500, "delete answered %d" % r.status)
        expect_status(ctx.admin.get(API + "/departments/%d" % d["id"]), 200, "the delete happened")
        u = mkuser()
        r = login(u["username"], request_id=marker + "-4")
        check(r.status >= 500, "a login whose event cannot be written answered %d" % r.status)
        eq(q1("SELECT count(*) FROM tokens WHERE user_id = %d" % u["id"]), "0", "a token was issued")
        # the 5xx answers above are what this test expects
        del ctx.auto_errors[start_errors:]
    finally:
        db_owner("DROP TRIGGER IF EXISTS %s ON audit_events; DROP FUNCTION IF EXISTS %s()" % (fn, fn))


# ------------------------------------------------------------------------------ append-only

@test
def the_service_role_cannot_change_or_delete_events():
    if OWNER_DATABASE_URL and OWNER_DATABASE_URL == DATABASE_URL:
        raise TestFailure("DATABASE_URL is the owner's connection: the service role must be another one")
    r = admin().post(API + "/departments", json={"name": ctx.uniq("只追加")}, headers={"X-Request-Id": rid("ro")})
    expect_status(r, 201)
    eid = int(q1("SELECT max(id) FROM audit_events WHERE entity_type = 'department' AND entity_id = %d" % r.json["id"]))
    before = q1("SELECT e::text FROM audit_events e WHERE id = %d" % eid)
    for sql in ("UPDATE audit_events SET action = 'forged' WHERE id = %d" % eid,
                "UPDATE audit_events SET after = '{}' WHERE id = %d" % eid,
                "DELETE FROM audit_events WHERE id = %d" % eid,
                "TRUNCATE audit_events"):
        rc, out, err = db_try(sql)
        check(rc != 0, "the service role could run: %s" % sql)
        check("permission denied" in err, "%s: %s (expected permission denied)" % (sql, err))
    rc, out, err = db_try("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    check(rc != 0 and "must be owner" in err, "the service role may disable the append-only trigger: %s" % err)
    eq(q1("SELECT e::text FROM audit_events e WHERE id = %d" % eid), before, "the event after the attempts")
    rc, out, err = db_try("SELECT count(*) FROM audit_events WHERE id = %d" % eid)
    eq((rc, out), (0, "1"), "the service role reads events")


# ------------------------------------------------------------------------------ tamper evidence

def own_events(n=3):
    """Make n events of this file and return their ids."""
    ids = []
    for _ in range(n):
        r = admin().post(API + "/departments", json={"name": ctx.uniq("链")}, headers={"X-Request-Id": rid("chain")})
        expect_status(r, 201)
        ids.append(int(q1("SELECT id FROM audit_events WHERE occurred_at >= '%s' AND request_id = %s" % (
            T0, sql_str(r.h("X-Request-Id"))))))
    return ids


def problem_ids(r):
    return sorted({p["event_id"] for p in r.json["problems"]})


@test
def an_untouched_range_verifies():
    own_events(3)
    to = now_utc(1)
    r = verify(T0, to)
    b = r.json
    eq(sorted(b), ["anchored", "anchored_until", "checkpoints_checked", "events_checked", "from", "ok", "problems",
                   "to", "unanchored_events"])
    eq((b["ok"], b["problems"]), (True, []), "verification of this file's range")
    check(parse_time(b["from"]) == parse_time(T0) and parse_time(b["to"]) == parse_time(to), "from/to echoed: %s" % b)
    n = int(q1("SELECT count(*) FROM audit_events WHERE occurred_at >= '%s' AND occurred_at < '%s'" % (T0, to)))
    check(b["events_checked"] >= 3 and abs(b["events_checked"] - n) <= 50,
          "events_checked %d, the range holds %d" % (b["events_checked"], n))
    _, vtok = make_user("viewer")
    eq(verify(T0, to, ctx.server.client(vtok)).json["ok"], True, "a viewer verifies too")


@test
def an_edited_event_is_named():
    need_owner()
    target = own_events(3)[1]
    row = q1("SELECT json_build_object('after', after, 'chain', chain, 'seq', chain_seq) FROM audit_events WHERE id = %d"
             % target)
    orig = json.loads(row)
    tampered = dict(orig["after"], name="篡改后的名称")
    db_owner("BEGIN; ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;"
             " UPDATE audit_events SET after = %s::jsonb WHERE id = %d;"
             " ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; COMMIT" % (
                 sql_str(json.dumps(tampered, ensure_ascii=False)), target))
    try:
        r = verify()
        eq(r.json["ok"], False, "verification after the edit")
        eq(problem_ids(r), [target], "the events named")
        p = r.json["problems"][0]
        eq((p["chain"], p["chain_seq"]), (orig["chain"], orig["seq"]), "chain and position of the edited event")
        check(isinstance(p["problem"], str) and p["problem"], "problem text")
        # a range without the event is still fine
        t = q1("SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM audit_events"
               " WHERE id = %d" % target)
        eq(verify(T0, t).json["ok"], True, "the range before the edited event")
    finally:
        db_owner("BEGIN; ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;"
                 " UPDATE audit_events SET after = %s::jsonb WHERE id = %d;"
                 " ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; COMMIT" % (
                     sql_str(json.dumps(orig["after"], ensure_ascii=False)), target))
    eq(verify().json["ok"], True, "verification once the edit is undone")


@test
def a_deleted_event_is_found_by_the_next_in_its_chain():
    need_owner()
    own = own_events(2)
    pair = None
    for _ in range(80):
        found = q1("SELECT e.id || ' ' || n.id FROM audit_events e JOIN audit_events n ON n.chain = e.chain"
                   " AND n.chain_seq = e.chain_seq + 1 WHERE e.id IN (%s) ORDER BY e.id LIMIT 1" % ",".join(map(str, own)))
        if found:
            pair = [int(x) for x in found.split()]
            break
        own.extend(own_events(1))
    check(pair, "none of %d events of this file got a successor in its chain" % len(own))
    gone, nxt = pair
    saved = q1("SELECT row_to_json(e) FROM audit_events e WHERE id = %d" % gone)
    db_owner("BEGIN; ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;"
             " DELETE FROM audit_events WHERE id = %d;"
             " ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; COMMIT" % gone)
    try:
        r = verify()
        eq(r.json["ok"], False, "verification after the deletion")
        eq(problem_ids(r), [nxt], "the event named is the next one in the deleted event's chain")
    finally:
        db_owner("INSERT INTO audit_events OVERRIDING SYSTEM VALUE"
                 " SELECT * FROM json_populate_record(NULL::audit_events, %s::json)" % sql_str(saved))
    eq(verify().json["ok"], True, "verification once the event is back")


@test
def verify_needs_from_and_to():
    for params, pointers in (({}, ["/query/from", "/query/to"]), ({"to": now_utc()}, ["/query/from"]),
                             ({"from": T0}, ["/query/to"]), ({"from": "yesterday", "to": now_utc()}, ["/query/from"]),
                             ({"from": T0, "to": now_utc(), "chain": "1"}, ["/query/chain"])):
        r = ctx.admin.get(API + "/audit-events/verify?" + qs(**params))
        expect_problem(r, 400, "invalid-query", pointers=pointers)
    _, dtok = make_user("department", department_id=mk_dept()["id"])
    expect_problem(ctx.server.client(dtok).get(API + "/audit-events/verify?" + qs(**{"from": T0, "to": now_utc()})),
                   403, "forbidden")


LIMIT_SQL = """DO $$ DECLARE e audit_events; prev bytea := '\\x'; i int; BEGIN
  IF (SELECT count(*) FROM audit_events WHERE occurred_at >= '2001-01-01T00:00:00Z'
      AND occurred_at < '2001-01-02T00:00:00Z') > 50000 THEN RETURN; END IF;
  FOR i IN 1..50001 LOOP
    e.id := -i; e.chain := 0; e.chain_seq := i - 50002;
    e.occurred_at := '2001-01-01T00:00:00Z'::timestamptz + (i - 1) * interval '1 millisecond';
    e.action := 'verify-limit'; e.entity_type := 'test'; e.request_id := 'verify-limit';
    e.prev_hash := prev; e.hash := audit_digest(e); prev := e.hash;
    INSERT INTO audit_events OVERRIDING SYSTEM VALUE SELECT e.*;
  END LOOP; END $$"""


@test
def a_range_of_more_than_50000_events_is_refused():
    """50001 chained events on 2001-01-01, one a millisecond from midnight (made once per database,
    as the owner, with ids and chain positions below zero so that nothing else meets them)."""
    need_owner()
    db_owner(LIMIT_SQL)
    r = ctx.admin.get(API + "/audit-events/verify?" + qs(**{"from": "2001-01-01T00:00:00Z",
                                                             "to": "2001-01-02T00:00:00Z"}))
    expect_problem(r, 400, "invalid-query", pointers=["/query/from"])
    r = ctx.admin.get(API + "/audit-events/verify?" + qs(**{"from": "2001-01-01T00:00:00Z",
                                                             "to": "2001-01-01T00:00:01Z"}))
    expect_status(r, 200)
    eq((r.json["events_checked"], r.json["ok"]), (1000, True), "a second of them")


@test
def a_range_of_50000_events_verifies_within_the_statement_timeout():
    """The largest range the service accepts must verify within DUCHA_STATEMENT_TIMEOUT (default
    800 ms), or verification of the trail is not dependable. (On a server of its own: a statement
    that overruns its deadline makes the server answer 503 to everything for a moment.)"""
    need_owner()
    db_owner(LIMIT_SQL)
    srv = Server().start()
    try:
        t = time.monotonic()
        r = srv.client(ctx.admin.token).get(API + "/audit-events/verify?" + qs(
            **{"from": "2001-01-01T00:00:00Z", "to": "2001-01-01T00:00:50Z"}), timeout=30)
        dt = time.monotonic() - t
    finally:
        srv.stop()
    sys.stdout.write("# verifying 50000 events took %.0f ms\n" % (dt * 1000))
    expect_status(r, 200, "verification of 50000 events")
    eq((r.json["events_checked"], r.json["ok"], r.json["problems"]), (50000, True, []))


# ------------------------------------------------------------------------------ the list

@test
def list_filters_and_pages():
    me = admin_user()
    a = admin()
    d = mk_dept()
    for i in range(3):
        expect_status(a.patch(API + "/departments/%d" % d["id"], json={"name": ctx.uniq("改%d" % i)}, if_match="*"), 200)
    base = API + "/audit-events?" + qs(entity_type="department", entity_id=d["id"])
    allev = ctx.admin.list_all(base)
    eq([e["action"] for e in allev], ["update", "update", "update", "create"], "the department's events")
    check([e["id"] for e in allev] == sorted((e["id"] for e in allev), reverse=True), "id descending")
    eq([e["id"] for e in ctx.admin.list_all(base + "&action=update")], [e["id"] for e in allev[:3]], "action filter")
    eq([e["id"] for e in ctx.admin.list_all(base + "&" + qs(actor_id=me["id"]))], [e["id"] for e in allev],
       "actor_id filter")
    eq(ctx.admin.list_all(base + "&" + qs(actor_id=987654321)), [], "another actor")
    # paging one at a time gives the same events
    got, url = [], base + "&limit=1"
    while url:
        r = ctx.admin.get(url)
        expect_status(r, 200)
        got.extend(r.json["data"])
        url = base + "&limit=1&" + qs(cursor=r.json["next_cursor"]) if r.json["next_cursor"] else None
        check(len(got) <= 10, "paging does not end")
    eq([e["id"] for e in got], [e["id"] for e in allev], "pages of one")
    # time range: from inclusive, to exclusive
    t_mid = allev[1]["occurred_at"]
    eq([e["id"] for e in ctx.admin.list_all(base + "&" + qs(**{"from": t_mid}))], [e["id"] for e in allev[:2]],
       "from is inclusive")
    eq([e["id"] for e in ctx.admin.list_all(base + "&" + qs(to=t_mid))], [e["id"] for e in allev[2:]], "to is exclusive")
    r = ctx.admin.get(base + "&include_total=true")
    eq(r.json["total"], 4)
    for bad in (qs(entity_id="x"), qs(actor_id=0), qs(**{"from": "2026-13-01"}), qs(foo="bar"), qs(limit=201)):
        expect_problem(ctx.admin.get(API + "/audit-events?" + bad), 400, "invalid-query")


if __name__ == "__main__":
    try:
        main()
    finally:
        psql.close()
