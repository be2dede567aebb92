#!/usr/bin/python3
"""Department scoping: a department user of A sees inspections targeting A and its sub-units
(recursively) and rectifications assigned to them; everything else answers 404 (get, nested
routes through a valid parent id), list filters naming another unit return nothing, the
departments list is A's subtree, and the audit trail shows only events on records in scope.

    A ── A1 ── A1a          B ── B1
"""

import datetime as _dt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, PsqlSession, check, ctx, day, eq, expect_problem, expect_status,  # noqa: E402
                     main, make_user, mk_dept, mk_problem, mk_rect, qs, test)

W = {}
psql = PsqlSession()


def q1(sql):
    return psql.q(sql)


def now_utc(offset_s=0):
    t = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def checklist():
    r = ctx.admin.post(API + "/checklists", json={
        "code": ("sc" + ctx.prefix).lower(), "title": ctx.uniq("范围清单"),
        "tasks": [{"content": "任务一"}, {"content": "任务二"}]})
    expect_status(r, 201)
    return r.json


def inspection_of(dept_id):
    r = ctx.admin.post(API + "/inspections", json={"target_department_id": dept_id, "inspected_on": day(0),
                                                    "title": ctx.uniq("范围督察"), "checklist_id": W["cl"]["id"]})
    expect_status(r, 201)
    insp = r.json
    item = int(q1("SELECT id FROM items WHERE inspection_id = %d ORDER BY seq LIMIT 1" % insp["id"]))
    prob = mk_problem(item)
    rect = mk_rect(prob["id"], dept_id, deadline=day(30))
    return {"insp": insp, "item": item, "prob": prob["id"], "rect": rect["id"]}


def world():
    if W:
        return W
    W["t0"] = now_utc(-1)
    W["cl"] = checklist()
    a = mk_dept(name=ctx.uniq("甲"))
    a1 = mk_dept(name=ctx.uniq("甲一"), parent_id=a["id"])
    a1a = mk_dept(name=ctx.uniq("甲一甲"), parent_id=a1["id"])
    b = mk_dept(name=ctx.uniq("乙"))
    b1 = mk_dept(name=ctx.uniq("乙一"), parent_id=b["id"])
    W.update(A=a, A1=a1, A1a=a1a, B=b, B1=b1)
    W["f"] = {k: inspection_of(W[k]["id"]) for k in ("A", "A1", "A1a", "B")}
    # a rectification of B's inspection assigned to A1
    W["rX"] = mk_rect(W["f"]["B"]["prob"], a1["id"], deadline=day(30))["id"]
    uname = "sc_a_%s" % ctx.prefix
    _, tok = make_user("department", department_id=a["id"], username=uname)
    W["userA"] = int(q1("SELECT id FROM users WHERE username = '%s'" % uname))
    W["ua"] = ctx.server.client(tok)
    _, tok1 = make_user("department", department_id=a1["id"], username=uname + "1")
    W["userA1"] = int(q1("SELECT id FROM users WHERE username = '%s1'" % uname))
    W["ua1"] = ctx.server.client(tok1)
    return W


def essence(r):
    b = dict(r.json or {})
    b.pop("request_id", None)
    b.pop("instance", None)
    return (r.status, b)


@test
def sees_inspections_of_its_unit_and_sub_units():
    w = world()
    ua = w["ua"]
    for k in ("A", "A1", "A1a"):
        f = w["f"][k]
        r = ua.get(API + "/inspections/%d" % f["insp"]["id"])
        expect_status(r, 200, "inspection of %s" % k)
        eq(r.json["target_department_id"], w[k]["id"])
        expect_status(ua.get(API + "/inspections/%d/form" % f["insp"]["id"]), 200, "form of %s" % k)
        eq([x["id"] for x in ua.list_all(API + "/inspections/%d/items" % f["insp"]["id"])][:1], [f["item"]])
        expect_status(ua.get(API + "/items/%d" % f["item"]), 200)
        eq([x["id"] for x in ua.list_all(API + "/items/%d/problems" % f["item"])], [f["prob"]])
        expect_status(ua.get(API + "/problems/%d" % f["prob"]), 200)
        eq([x["id"] for x in ua.list_all(API + "/problems/%d/rectifications" % f["prob"])], [f["rect"]])
        expect_status(ua.get(API + "/rectifications/%d" % f["rect"]), 200)
        eq([x["id"] for x in ua.list_all(API + "/inspections?" + qs(target_department_id=w[k]["id"]))],
           [f["insp"]["id"]], "list filtered by %s" % k)
    seen = ua.list_all(API + "/inspections")
    subtree = {w[k]["id"] for k in ("A", "A1", "A1a")}
    eq(sorted(x["id"] for x in seen), sorted(w["f"][k]["insp"]["id"] for k in ("A", "A1", "A1a")),
       "every inspection the department user can list")
    check(all(x["target_department_id"] in subtree for x in seen), "an inspection outside the subtree is listed")


@test
def out_of_scope_records_answer_404_like_missing_ones():
    w = world()
    ua = w["ua"]
    f = w["f"]["B"]
    paths = [("/inspections/%d", f["insp"]["id"]), ("/inspections/%d/form", f["insp"]["id"]),
             ("/items/%d", f["item"]), ("/problems/%d", f["prob"]), ("/rectifications/%d", f["rect"]),
             ("/departments/%d", w["B"]["id"]), ("/departments/%d", w["B1"]["id"])]
    for tmpl, rid in paths:
        r = ua.get(API + tmpl % rid)
        expect_problem(r, 404, "not-found")
        missing = ua.get(API + tmpl % 987654321)
        eq(essence(r), essence(missing), "%s: out of scope vs does not exist" % (tmpl % rid))
        expect_status(ctx.admin.get(API + tmpl % rid), 200, "the admin sees %s" % (tmpl % rid))


@test
def nested_routes_through_an_out_of_scope_parent_answer_404():
    w = world()
    ua = w["ua"]
    f = w["f"]["B"]
    for path in ("/inspections/%d/items" % f["insp"]["id"], "/items/%d/problems" % f["item"],
                 "/problems/%d/rectifications" % f["prob"]):
        expect_problem(ua.get(API + path), 404, "not-found")
        expect_problem(ua.get(API + path + "?limit=1&include_total=true"), 404, "not-found")
        r = ctx.admin.get(API + path)
        expect_status(r, 200)
        check(r.json["data"], "the admin sees rows at %s" % path)


@test
def writes_on_out_of_scope_records_are_refused_and_change_nothing():
    w = world()
    ua = w["ua"]
    f = w["f"]["B"]
    before = q1("SELECT concat_ws(' ', (SELECT i::text FROM inspections i WHERE id = %d),"
                " (SELECT p::text FROM problems p WHERE id = %d), (SELECT r::text FROM rectifications r WHERE id = %d),"
                " (SELECT d::text FROM departments d WHERE id = %d), (SELECT it::text FROM items it WHERE id = %d))" % (
                    f["insp"]["id"], f["prob"], f["rect"], w["B"]["id"], f["item"]))
    for method, path, body in (("PATCH", "/inspections/%d" % f["insp"]["id"], {"title": "改"}),
                               ("DELETE", "/inspections/%d" % f["insp"]["id"], None),
                               ("PATCH", "/items/%d" % f["item"], {"note": "改"}),
                               ("PATCH", "/problems/%d" % f["prob"], {"description": "改"}),
                               ("DELETE", "/problems/%d" % f["prob"], None),
                               ("PATCH", "/rectifications/%d" % f["rect"], {"measure": "改"}),
                               ("DELETE", "/rectifications/%d" % f["rect"], None),
                               ("PATCH", "/departments/%d" % w["B"]["id"], {"name": "改"}),
                               ("POST", "/items/%d/problems" % f["item"], {"description": "新"}),
                               ("POST", "/inspections/%d/start" % f["insp"]["id"], {})):
        kw = {"json": body} if body is not None else {}
        r = ua.req(method, API + path, if_match="*" if method != "POST" else None, **kw)
        # the department role may not write these at all (x-roles): 403 before any lookup
        expect_problem(r, 403, "forbidden")
    after = q1("SELECT concat_ws(' ', (SELECT i::text FROM inspections i WHERE id = %d),"
               " (SELECT p::text FROM problems p WHERE id = %d), (SELECT r::text FROM rectifications r WHERE id = %d),"
               " (SELECT d::text FROM departments d WHERE id = %d), (SELECT it::text FROM items it WHERE id = %d))" % (
                   f["insp"]["id"], f["prob"], f["rect"], w["B"]["id"], f["item"]))
    eq(after, before, "B's records after the refused writes")


@test
def list_filters_naming_another_unit_return_nothing():
    w = world()
    ua = w["ua"]
    f = w["f"]["B"]
    for path, admin_sees in (("/inspections?" + qs(target_department_id=w["B"]["id"]), True),
                             ("/inspections?" + qs(target_department_id=w["B1"]["id"]), False),
                             ("/inspections?" + qs(q=f["insp"]["title"]), True),
                             ("/departments?" + qs(parent_id=w["B"]["id"]), True),
                             ("/departments?" + qs(q=w["B"]["name"]), True),
                             ("/audit-events?" + qs(entity_type="inspection", entity_id=f["insp"]["id"]), True),
                             ("/audit-events?" + qs(entity_type="department", entity_id=w["B"]["id"]), True)):
        r = ua.get(API + path + "&include_total=true")
        expect_status(r, 200, path)
        eq((r.json["data"], r.json["total"], r.json["next_cursor"]), ([], 0, None), "department user: %s" % path)
        if admin_sees:
            r = ctx.admin.get(API + path)
            check(r.json["data"], "the admin sees something at %s" % path)


@test
def departments_list_is_the_units_subtree():
    w = world()
    got = sorted(d["id"] for d in w["ua"].list_all(API + "/departments"))
    eq(got, sorted(w[k]["id"] for k in ("A", "A1", "A1a")), "departments a user of A sees")
    got = sorted(d["id"] for d in w["ua1"].list_all(API + "/departments"))
    eq(got, sorted(w[k]["id"] for k in ("A1", "A1a")), "departments a user of A1 sees")
    eq([d["id"] for d in w["ua"].list_all(API + "/departments?" + qs(parent_id=w["A1"]["id"]))], [w["A1a"]["id"]])


@test
def a_sub_unit_user_does_not_see_upwards():
    w = world()
    ua1 = w["ua1"]
    expect_problem(ua1.get(API + "/inspections/%d" % w["f"]["A"]["insp"]["id"]), 404, "not-found")
    expect_problem(ua1.get(API + "/departments/%d" % w["A"]["id"]), 404, "not-found")
    expect_status(ua1.get(API + "/inspections/%d" % w["f"]["A1a"]["insp"]["id"]), 200)
    eq(sorted(x["id"] for x in ua1.list_all(API + "/inspections")),
       sorted(w["f"][k]["insp"]["id"] for k in ("A1", "A1a")))


@test
def a_rectification_assigned_into_scope_is_readable():
    w = world()
    ua = w["ua"]
    r = ua.get(API + "/rectifications/%d" % w["rX"])
    expect_status(r, 200, "rectification of B's inspection assigned to A1")
    eq(r.json["responsible_department"], {"id": w["A1"]["id"], "name": w["A1"]["name"]})
    # its parents stay out of scope
    f = w["f"]["B"]
    expect_problem(ua.get(API + "/problems/%d" % f["prob"]), 404)
    expect_problem(ua.get(API + "/problems/%d/rectifications" % f["prob"]), 404)
    expect_problem(ua.get(API + "/inspections/%d/form" % f["insp"]["id"]), 404)
    # B's own rectification on the same problem is not
    expect_problem(ua.get(API + "/rectifications/%d" % f["rect"]), 404)


@test
def audit_events_only_on_records_in_scope():
    w = world()
    ua = w["ua"]
    allowed = {("department", w[k]["id"]) for k in ("A", "A1", "A1a")}
    for k in ("A", "A1", "A1a"):
        f = w["f"][k]
        allowed |= {("inspection", f["insp"]["id"]), ("item", f["item"]), ("problem", f["prob"]),
                    ("rectification", f["rect"])}
    allowed |= {("rectification", w["rX"]), ("user", w["userA"]), ("user", w["userA1"])}
    events = ua.list_all(API + "/audit-events?" + qs(**{"from": w["t0"]}))
    outside = [(e["id"], e["action"], e["entity_type"], e["entity_id"]) for e in events
               if (e["entity_type"], e["entity_id"]) not in allowed]
    check(not outside, "events on records out of scope: %s" % outside[:10])
    seen = {(e["entity_type"], e["entity_id"], e["action"]) for e in events}
    for k in ("A", "A1", "A1a"):
        check(("inspection", w["f"][k]["insp"]["id"], "create") in seen, "the create event of %s's inspection" % k)
    check(("rectification", w["rX"], "create") in seen, "the create event of the rectification assigned to A1")
    check(("inspection", w["f"]["B"]["insp"]["id"], "create") not in seen, "B's inspection event")
    # the admin sees B's events in the same range
    admin_seen = {(e["entity_type"], e["entity_id"]) for e in ctx.admin.list_all(
        API + "/audit-events?" + qs(entity_type="inspection", entity_id=w["f"]["B"]["insp"]["id"]))}
    eq(admin_seen, {("inspection", w["f"]["B"]["insp"]["id"])}, "the admin's view of B's inspection events")


@test
def audit_events_follow_the_records_current_scope():
    """An inspection created for B and then retargeted to A1 (a correction in draft): B's users
    can no longer read it, so they see none of its events either; A's users now can, and see
    its whole history."""
    w = world()
    _, tb = make_user("department", department_id=w["B"]["id"])
    ub = ctx.server.client(tb)
    r = ctx.admin.post(API + "/inspections", json={"target_department_id": w["B"]["id"], "inspected_on": day(0),
                                                    "title": ctx.uniq("改派督察"), "checklist_id": w["cl"]["id"]})
    expect_status(r, 201)
    insp = r.json["id"]
    expect_status(ctx.admin.patch(API + "/inspections/%d" % insp, json={"target_department_id": w["A1"]["id"]},
                                  if_match="*"), 200)
    expect_problem(ub.get(API + "/inspections/%d" % insp), 404, "not-found")
    expect_status(w["ua"].get(API + "/inspections/%d" % insp), 200)
    q = API + "/audit-events?" + qs(entity_type="inspection", entity_id=insp)
    admin_sees = sorted(e["action"] for e in ctx.admin.list_all(q))
    eq(admin_sees, ["create", "update"])
    b_sees = sorted(e["action"] for e in ub.list_all(q))
    a_sees = sorted(e["action"] for e in w["ua"].list_all(q))
    check(b_sees == [] and a_sees == admin_sees,
          "events of an inspection retargeted from B to A1: B's user sees %s (expected none), A's user sees %s "
          "(expected %s)" % (b_sees, a_sees, admin_sees))


@test
def scope_follows_the_tree_and_the_user():
    cl = world()["cl"]
    c, d = mk_dept(name=ctx.uniq("丙")), mk_dept(name=ctx.uniq("丁"))
    d1 = mk_dept(name=ctx.uniq("丁一"), parent_id=d["id"])
    r = ctx.admin.post(API + "/inspections", json={"target_department_id": d1["id"], "inspected_on": day(0),
                                                    "title": ctx.uniq("范围督察"), "checklist_id": cl["id"]})
    expect_status(r, 201)
    insp = r.json["id"]
    uname = "sc_c_%s" % ctx.prefix
    _, tok = make_user("department", department_id=c["id"], username=uname)
    uc = ctx.server.client(tok)
    expect_problem(uc.get(API + "/inspections/%d" % insp), 404)
    # D1 moves under C: now in C's subtree
    expect_status(ctx.admin.patch(API + "/departments/%d" % d1["id"], json={"parent_id": c["id"]}, if_match="*"), 200)
    expect_status(uc.get(API + "/inspections/%d" % insp), 200, "after D1 moved under C")
    # the user moves to D: C's records go out of scope at once, with the same token
    uid = int(q1("SELECT id FROM users WHERE username = '%s'" % uname))
    expect_status(ctx.admin.patch(API + "/users/%d" % uid, json={"department_id": d["id"]}, if_match="*"), 200)
    expect_problem(uc.get(API + "/inspections/%d" % insp), 404)
    expect_problem(uc.get(API + "/departments/%d" % c["id"]), 404)
    expect_status(uc.get(API + "/departments/%d" % d["id"]), 200)


if __name__ == "__main__":
    try:
        main()
    finally:
        psql.close()
