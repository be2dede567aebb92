#!/usr/bin/python3
"""机构改革: POST /departments/{id}/merge moves open rectifications, department users and
sub-units to the successor; closed rectifications keep pointing at the old unit (with its old
name); the old unit shows merged_into/merged_at and is kept as it was; one audit event; errors
change nothing; the successor's department users see the old unit's records."""

import datetime as _dt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, PsqlSession, check, ctx, day, db_owner, eq,  # noqa: E402
                     expect_problem, expect_status, main, make_user, mk_dept, mk_problem, mk_rect, qs, sql_str,
                     test)

psql = PsqlSession()
T0 = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
_cl = {}


def q1(sql):
    return psql.q(sql)


def dpath(did, rest=""):
    return API + "/departments/%d%s" % (did, rest)


def checklist_id():
    if not _cl:
        r = ctx.admin.post(API + "/checklists", json={"code": ("mg" + ctx.prefix).lower(),
                                                       "title": ctx.uniq("合并清单"),
                                                       "tasks": [{"content": "任务"}]})
        expect_status(r, 201)
        _cl["id"] = r.json["id"]
    return _cl["id"]


def user_id(username):
    return int(q1("SELECT id FROM users WHERE username = %s" % sql_str(username)))


def setup():
    """P ── O ── O1 ── O1a,  S (successor, another root); an inspection of O with an open and a
    closed rectification for O and one for O1; a department user of O and one of S."""
    w = {}
    w["P"] = mk_dept(name=ctx.uniq("区政府"))
    w["O"] = mk_dept(name=ctx.uniq("原区文化局"), parent_id=w["P"]["id"])
    w["O1"] = mk_dept(name=ctx.uniq("原文化局办公室"), parent_id=w["O"]["id"])
    w["O1a"] = mk_dept(name=ctx.uniq("原文化局科室"), parent_id=w["O1"]["id"])
    w["S"] = mk_dept(name=ctx.uniq("区文化和旅游局"))
    r = ctx.admin.post(API + "/inspections", json={"target_department_id": w["O"]["id"], "inspected_on": day(0),
                                                    "title": ctx.uniq("合并督察"), "checklist_id": checklist_id()})
    expect_status(r, 201)
    w["insp"] = r.json["id"]
    item = int(q1("SELECT id FROM items WHERE inspection_id = %d" % w["insp"]))
    prob = mk_problem(item)
    w["prob"] = prob["id"]
    w["open"] = mk_rect(prob["id"], w["O"]["id"], deadline=day(30))["id"]
    w["closed"] = mk_rect(prob["id"], w["O"]["id"], deadline=day(30))["id"]
    w["sub"] = mk_rect(prob["id"], w["O1"]["id"], deadline=day(30))["id"]
    db_owner("UPDATE rectifications SET status = 'closed' WHERE id = %d" % w["closed"])
    w["uO_name"] = "mg_o_%s_%d" % (ctx.prefix, w["O"]["id"])
    _, w["uO_token"] = make_user("department", department_id=w["O"]["id"], username=w["uO_name"])
    w["uO"] = user_id(w["uO_name"])
    w["uS_name"] = "mg_s_%s_%d" % (ctx.prefix, w["S"]["id"])
    _, w["uS_token"] = make_user("department", department_id=w["S"]["id"], username=w["uS_name"])
    return w


def merge(did, successor_id, reason="机构改革：职责整合", **kw):
    body = {"successor_id": successor_id, "reason": reason}
    return ctx.admin.post(dpath(did, "/merge"), json=body, **kw)


def merged(w):
    r = merge(w["O"]["id"], w["S"]["id"], headers={"X-Request-Id": "merge-%s-%d" % (ctx.prefix, w["O"]["id"])})
    expect_status(r, 200, "merge")
    return r


def rect(rid):
    r = ctx.admin.get(API + "/rectifications/%d" % rid)
    expect_status(r, 200)
    return r.json


def state(w):
    """Every column of the rows a merge touches."""
    return q1("SELECT concat_ws(E'\\n',"
              " (SELECT string_agg(d::text, ' ' ORDER BY id) FROM departments d WHERE id IN (%s)),"
              " (SELECT string_agg(r::text, ' ' ORDER BY id) FROM rectifications r WHERE problem_id = %d),"
              " (SELECT string_agg(u::text, ' ' ORDER BY id) FROM users u WHERE department_id IN (%s)))" % (
                  ",".join(str(w[k]["id"]) for k in ("P", "O", "O1", "O1a", "S")), w["prob"],
                  ",".join(str(w[k]["id"]) for k in ("O", "S"))))


@test
def merge_moves_open_work_users_and_sub_units():
    w = setup()
    o, s = w["O"], w["S"]
    r = merged(w)
    b = r.json
    eq((b["id"], b["name"], b["parent_id"]), (o["id"], o["name"], w["P"]["id"]), "the old unit keeps id, name, parent")
    eq((b["merged_into_id"], b["merged_into"]), (s["id"], {"id": s["id"], "name": s["name"]}), "merged_into")
    check(isinstance(b["merged_at"], str) and UTC_DATETIME_RE.match(b["merged_at"]), "merged_at %r" % b["merged_at"])
    g = ctx.admin.get(dpath(o["id"]))
    eq(g.json, b, "GET of the old unit equals the merge response")
    eq(g.etag, r.etag, "ETag")
    eq(ctx.admin.get(dpath(s["id"])).json["merged_into_id"], None, "the successor is not merged")
    # open work moves, closed records stay
    eq(rect(w["open"])["responsible_department"], {"id": s["id"], "name": s["name"]}, "open rectification")
    closed = rect(w["closed"])
    eq((closed["status"], closed["responsible_department"]), ("closed", {"id": o["id"], "name": o["name"]}),
       "closed rectification keeps the old unit with its old name")
    eq(rect(w["sub"])["responsible_department_id"], w["O1"]["id"], "a sub-unit's rectification stays the sub-unit's")
    form = ctx.admin.get(API + "/inspections/%d/form" % w["insp"]).json
    shown = {x["id"]: x["responsible_department"] for row in form["rows"] for p in row["problems"]
             for x in p["rectifications"]}
    eq(shown[w["closed"]], {"id": o["id"], "name": o["name"]}, "the form shows the closed one under the old name")
    eq(shown[w["open"]], {"id": s["id"], "name": s["name"]}, "the form shows the open one under the successor")
    # users and sub-units
    u = ctx.admin.get(API + "/users/%d" % w["uO"]).json
    eq((u["department_id"], u["department"]), (s["id"], {"id": s["id"], "name": s["name"]}), "the department user moved")
    eq(ctx.admin.get(dpath(w["O1"]["id"])).json["parent"], {"id": s["id"], "name": s["name"]}, "the sub-unit moved")
    eq(ctx.admin.get(dpath(w["O1a"]["id"])).json["parent_id"], w["O1"]["id"], "the sub-unit keeps its own sub-units")
    eq(ctx.admin.list_all(API + "/departments?" + qs(parent_id=o["id"])), [], "the old unit has no sub-units left")
    eq(ctx.admin.list_all(API + "/users?" + qs(department_id=o["id"])), [], "the old unit has no users left")


@test
def merge_is_one_audit_event():
    w = setup()
    rid = "merge-%s-%d" % (ctx.prefix, w["O"]["id"])
    r = merged(w)
    eq(r.h("X-Request-Id"), rid)
    eq(q1("SELECT count(*) FROM audit_events WHERE occurred_at >= '%s' AND request_id = %s" % (T0, sql_str(rid))), "1",
       "audit events written by the merge request")
    ev = ctx.admin.get(API + "/audit-events?" + qs(entity_type="department", entity_id=w["O"]["id"],
                                                   action="merge")).json["data"]
    eq(len(ev), 1, "merge events of the old unit")
    e = ev[0]
    eq((e["request_id"], e["entity_type"], e["entity_id"], e["action"]), (rid, "department", w["O"]["id"], "merge"))
    admin_id = int(q1("SELECT user_id FROM tokens WHERE token_hash = sha256(convert_to(%s, 'UTF8'))" %
                      sql_str(ctx.admin.token)))
    eq(e["actor_id"], admin_id, "actor")
    check(isinstance(e["after"], dict) and e["after"].get("merged_into_id") == w["S"]["id"],
          "after names the successor: %s" % e["after"])
    check("机构改革：职责整合" in str(e["after"]), "the reason is kept in the event: %s" % e["after"])
    check(isinstance(e["before"], dict) and e["before"].get("merged_into_id", "absent") is None,
          "before shows the unit unmerged: %s" % e["before"])


@test
def a_merged_unit_is_kept_as_it_was():
    w = setup()
    merged(w)
    before = state(w)
    o = w["O"]["id"]
    r = ctx.admin.patch(dpath(o), json={"name": ctx.uniq("新名")}, if_match="*")
    expect_problem(r, 409, "conflict")
    r = ctx.admin.patch(dpath(o), json={"parent_id": None}, if_match="*")
    expect_problem(r, 409, "conflict")
    r = ctx.admin.delete(dpath(o), if_match="*")
    check(r.status == 409, "DELETE of a merged unit: %d" % r.status)
    r = merge(o, w["S"]["id"])
    expect_problem(r, 409, "conflict")
    other = mk_dept()
    r = merge(other["id"], o)
    expect_problem(r, 409, "conflict")
    eq(state(w), before, "refused requests changed the merged unit's world")
    eq(ctx.admin.get(dpath(other["id"])).json["merged_into_id"], None)


@test
def invalid_merges_change_nothing():
    w = setup()
    o = w["O"]["id"]
    before = state(w)
    cases = [
        (w["O"]["id"], "/successor_id", 400),        # itself
        (w["O1"]["id"], "/successor_id", 400),       # a sub-unit
        (w["O1a"]["id"], "/successor_id", 400),      # a sub-unit's sub-unit
        (987654321, "/successor_id", 400),           # does not exist
    ]
    n = 0
    for successor, pointer, status in cases:
        n += 1
        rid = "badmerge-%s-%d-%d" % (ctx.prefix, o, n)
        r = merge(o, successor, headers={"X-Request-Id": rid})
        expect_problem(r, status, "validation-failed", pointers=[pointer])
        eq(q1("SELECT count(*) FROM audit_events WHERE occurred_at >= '%s' AND request_id = %s" % (
            T0, sql_str(rid))), "0", "events of a refused merge")
    for body, pointer in (({"successor_id": w["S"]["id"]}, "/reason"), ({"reason": "x"}, "/successor_id"),
                          ({"successor_id": w["S"]["id"], "reason": ""}, "/reason"),
                          ({"successor_id": w["S"]["id"], "reason": "理" * 501}, "/reason"),
                          ({"successor_id": "%d" % w["S"]["id"], "reason": "x"}, "/successor_id"),
                          ({"successor_id": w["S"]["id"], "reason": "x", "when": "now"}, "/when")):
        r = ctx.admin.post(dpath(o, "/merge"), json=body)
        expect_problem(r, 400, pointers=[pointer])
    expect_problem(merge(987654321, w["S"]["id"]), 404, "not-found")
    eq(state(w), before, "refused merges changed something")
    r = merge(o, w["S"]["id"], reason="理" * 500)
    expect_status(r, 200, "a reason of 500 characters")


@test
def merging_into_the_parent_is_allowed():
    w = setup()
    r = merge(w["O1"]["id"], w["O"]["id"])
    expect_status(r, 200, "a sub-unit merged into its parent")
    eq(ctx.admin.get(dpath(w["O1a"]["id"])).json["parent_id"], w["O"]["id"], "its sub-unit moved to the parent")
    eq(rect(w["sub"])["responsible_department_id"], w["O"]["id"], "its open rectification moved to the parent")


@test
def the_successors_users_see_the_old_units_records():
    w = setup()
    us = ctx.server.client(w["uS_token"])
    expect_problem(us.get(API + "/inspections/%d" % w["insp"]), 404, "not-found")
    expect_problem(us.get(API + "/rectifications/%d" % w["closed"]), 404, "not-found")
    merged(w)
    expect_status(us.get(API + "/inspections/%d" % w["insp"]), 200, "the old unit's inspection")
    expect_status(us.get(API + "/inspections/%d/form" % w["insp"]), 200, "its form")
    r = us.get(API + "/rectifications/%d" % w["closed"])
    expect_status(r, 200, "the old unit's closed rectification")
    eq(r.json["responsible_department"]["name"], w["O"]["name"])
    expect_status(us.get(dpath(w["O"]["id"])), 200, "the old unit itself")
    ids = {d["id"] for d in us.list_all(API + "/departments")}
    eq(ids, {w[k]["id"] for k in ("S", "O", "O1", "O1a")}, "departments the successor's user sees")
    eq([x["id"] for x in us.list_all(API + "/inspections?" + qs(target_department_id=w["O"]["id"]))], [w["insp"]])
    # the moved user (formerly of O) keeps its token and now has the successor's scope
    uo = ctx.server.client(w["uO_token"])
    me = uo.get(API + "/me")
    expect_status(me, 200)
    eq(me.json["user"]["department_id"], w["S"]["id"])
    expect_status(uo.get(API + "/inspections/%d" % w["insp"]), 200)
    # and someone of the old parent does not gain the successor
    _, tp = make_user("department", department_id=w["P"]["id"])
    up = ctx.server.client(tp)
    expect_problem(up.get(dpath(w["S"]["id"])), 404, "not-found")
    expect_problem(up.get(dpath(w["O1"]["id"])), 404, "not-found")  # the moved sub-unit left P's scope


@test
def a_merge_whose_event_cannot_be_written_does_not_happen():
    w = setup()
    before = state(w)
    fn = "merge_fail_%s" % ctx.prefix
    marker = "mergefail-%s" % ctx.prefix
    db_owner("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
             " IF NEW.request_id LIKE '%s%%' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;"
             " CREATE TRIGGER %s BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION %s()" % (
                 fn, marker, fn, fn))
    try:
        start_errors = len(ctx.auto_errors)
        r = merge(w["O"]["id"], w["S"]["id"], headers={"X-Request-Id": marker})
        check(r.status >= 500, "a merge whose audit event cannot be written answered %d" % r.status)
        del ctx.auto_errors[start_errors:]  # the 5xx is what this test expects
    finally:
        db_owner("DROP TRIGGER IF EXISTS %s ON audit_events; DROP FUNCTION IF EXISTS %s()" % (fn, fn))
    eq(state(w), before, "a part of the merge happened without its audit event")


@test
def a_merged_unit_takes_no_new_work():
    """What a merge moves to the successor (open rectifications, department users, sub-units)
    cannot be given to the merged unit afterwards, as reassigning to it cannot."""
    w = setup()
    merged(w)
    o = w["O"]["id"]
    r = ctx.admin.post(API + "/problems/%d/rectifications" % w["prob"], json={
        "measure": "新措施", "responsible_department_id": o, "deadline": day(30)})
    got = {"new rectification": r.status}
    r = ctx.admin.post(API + "/users", json={"username": "mg_new_%s_%d" % (ctx.prefix, o), "role": "department",
                                              "department_id": o, "password": "merge-pw-123"})
    got["new department user"] = r.status
    r = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("新下属"), "parent_id": o})
    got["new sub-unit"] = r.status
    x = mk_dept()
    r = ctx.admin.patch(dpath(x["id"]), json={"parent_id": o}, if_match="*")
    got["moving a unit under it"] = r.status
    wrong = {k: v for k, v in got.items() if v != 400}
    check(not wrong, "accepted for a merged unit (expected 400): %s" % wrong)


@test
def rename_keeps_the_id_and_its_history():
    d = mk_dept(name=ctx.uniq("旧称"))
    new = ctx.uniq("新称")
    rid = "rename-%s-%d" % (ctx.prefix, d["id"])
    r = ctx.admin.patch(dpath(d["id"]), json={"name": new}, if_match='"1"', headers={"X-Request-Id": rid})
    expect_status(r, 200)
    eq((r.json["id"], r.json["name"]), (d["id"], new))
    ev = ctx.admin.get(API + "/audit-events?" + qs(entity_type="department", entity_id=d["id"])).json["data"]
    eq([e["action"] for e in ev], ["update", "create"], "the department's history")
    eq((ev[0]["before"], ev[0]["after"], ev[0]["request_id"]), ({"name": d["name"]}, {"name": new}, rid))


if __name__ == "__main__":
    try:
        main()
    finally:
        psql.close()
