#!/usr/bin/python3
"""For the people who do the work (issue 10): GET /me/todo per role, a batch's inspections for
many units at once, and urging many rectifications at once — each all or nothing, one audited
change per record."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, check, ctx, day, db_int, eq, expect_problem, expect_status, main, mk_dept,  # noqa: E402
                     test)
from lifecycle_helpers import (Case, act_ok, audit, dept_user, drive, get_rect, inspector, owner_db,  # noqa: E402
                               set_deadline_sql, viewer)

TODO = API + "/me/todo"
PAGE = 20


def todo(client):
    r = client.get(TODO)
    expect_status(r, 200, "GET /me/todo")
    eq(r.json["page_size"], PAGE)
    return r.json["lists"]


def ids(lst):
    return [x["id"] for x in lst["data"]]


def oldest(table, column, where):
    """Moves rows back in time so that they come first in an oldest-first list, before what other
    test files (and earlier runs of this one) left in the shared database."""
    owner_db("UPDATE %s SET %s = timestamptz '1990-01-01 00:00:00+00' - make_interval(secs => extract(epoch FROM now()))"
             " WHERE %s" % (table, column, where))


# ------------------------------------------------------------------------------------- todo

@test
def todo_of_a_department_user():
    c = Case(n=7)
    dep = c.dept()
    a, b, rej, d, e, f, g = [r["id"] for r in c.rects]
    act_ok(dep.client, b, "start")
    drive(rej, "submitted", dep.client)
    act_ok(inspector(1).client, rej, "reject", {"reason": "佐证材料不足，退回补充"})
    set_deadline_sql(d, day(1))
    act_ok(dep.client, e, "start")
    set_deadline_sql(e, day(-2))
    drive(f, "submitted", dep.client)
    drive(g, "closed", dep.client)
    # e is overdue (yellow), d due within the working days of blue, the others not escalated.
    # Not waiting: a measure of an inspection not yet submitted, one of a reopened inspection,
    # and one of another unit
    Case(responsible=c.resp, submit=False)
    reopened = Case(responsible=c.resp)
    expect_status(ctx.admin.post(API + "/inspections/%d/reopen" % reopened.insp["id"], json={"reason": "更正"}), 200)
    Case()
    want = {"to_start": [d, a], "to_report": [e, b], "to_resubmit": [rej], "due_soon": [e, d]}
    for who in (dep, c.parent_user()):
        lists = todo(who.client)
        eq(sorted(lists), sorted(want), "the lists of a department user")
        for name, expected in want.items():
            eq(ids(lists[name]), expected, "%s of %s" % (name, who))
            eq(lists[name]["count"], len(expected), "count of %s" % name)
        eq(lists["to_resubmit"]["data"][0]["status"], "in_progress")
        eq([x["escalation"] for x in lists["due_soon"]["data"]], ["yellow", "blue"], "due_soon: escalated (督办)")
        eq(sorted(lists["to_start"]["data"][0]["allowed_transitions"]), ["request-extension", "start"])
    # the inspected unit reads these measures but does not act on them: nothing waits for it
    lists = todo(dept_user(c.target["id"]).client)
    eq({k: v["count"] for k, v in lists.items()}, {k: 0 for k in want}, "the target unit's lists")


@test
def todo_of_inspectors_and_admins():
    c = Case(n=3)
    dep = c.dept()
    i1, i2 = inspector(1), inspector(2)
    by_dept, by_i1, asked = [r["id"] for r in c.rects]
    drive(by_dept, "submitted", dep.client)
    drive(by_i1, "submitted", dep.client, submitter=i1.client)
    oldest("rectifications", "submitted_at", "id IN (%d, %d)" % (by_dept, by_i1))
    act_ok(dep.client, asked, "request-extension", {"deadline": day(60), "reason": "需要协调多个部门"})
    oldest("extension_requests", "requested_at", "rectification_id = %d" % asked)
    for who, verify in ((i1, [by_dept]), (i2, [by_i1, by_dept]), (None, [by_i1, by_dept])):
        lists = todo(who.client if who else ctx.admin)
        eq(sorted(lists), ["extension_requests", "to_verify"], "the lists of staff")
        mine = [x for x in ids(lists["to_verify"]) if x in (by_dept, by_i1)]
        eq(sorted(mine), sorted(verify), "to_verify of %s: not what they submitted" % (who or "admin"))
        for lst in lists.values():
            check(lst["count"] >= len(lst["data"]) and len(lst["data"]) == min(lst["count"], PAGE),
                  "count %d with %d entries" % (lst["count"], len(lst["data"])))
        check(all(x["status"] == "submitted" for x in lists["to_verify"]["data"]), "to_verify holds submissions")
        found = [x for x in lists["extension_requests"]["data"] if x["rectification"]["id"] == asked]
        eq(len(found), 1, "the pending request is listed")
        q = found[0]["extension_request"]
        eq((q["deadline"], q["reason"], q["status"], q["requested_by"]),
           (day(60), "需要协调多个部门", "pending", dep.ref))
        check("refuse-extension" in found[0]["rectification"]["allowed_transitions"], "staff may decide it")
    # decided: no longer waiting
    act_ok(i1.client, asked, "refuse-extension", {"reason": "理由不充分"})
    lists = todo(i1.client)
    check(asked not in [x["rectification"]["id"] for x in lists["extension_requests"]["data"]], "refused request gone")


@test
def todo_of_a_viewer_is_empty():
    eq(todo(viewer().client), {})


# ---------------------------------------------------------------------------- bulk create

def new_batch(tasks=2):
    code = ("td" + ctx.prefix + ctx.uniq("c").rsplit("-", 1)[1]).lower()
    r = ctx.admin.post(API + "/checklists", json={"code": code, "title": ctx.uniq("批量清单"),
                                                  "tasks": [{"content": ctx.uniq("任务")} for _ in range(tasks)]})
    expect_status(r, 201, "create checklist")
    b = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("批次"), "checklist_id": r.json["id"]})
    expect_status(b, 201, "create batch")
    return b.json


def many(batch_id, units, client=None, **fields):
    body = {"target_department_ids": units, "title": "{department}政务公开督察", "inspected_on": day(0)}
    body.update(fields)
    return (client or ctx.admin).post(API + "/batches/%d/inspections" % batch_id, json=body)


def in_batch(batch_id):
    return db_int("SELECT count(*) FROM inspections WHERE batch_id = %d" % batch_id)


@test
def a_batchs_inspections_at_once():
    b = new_batch(tasks=3)
    units = [mk_dept(name=ctx.uniq("批量单位")) for _ in range(3)]
    r = many(b["id"], [u["id"] for u in units], client=inspector(1).client, inspectors=["张三", "李四"])
    expect_status(r, 201, "create the batch's inspections")
    eq(r.headers.get("Location"), "/api/v1/inspections?batch_id=%d" % b["id"])
    made = r.json["data"]
    eq([x["target_department_id"] for x in made], [u["id"] for u in units], "one per unit, in order")
    for x, u in zip(made, units):
        eq((x["title"], x["status"], x["batch_id"], x["checklist_id"], x["inspectors"], x["counts"]["items"]),
           (u["name"] + "政务公开督察", "draft", b["id"], b["checklist_id"], ["张三", "李四"], 3))
        ev = audit("inspection", x["id"])
        eq([e["action"] for e in ev], ["create"], "each audited as its own create")
    listed = ctx.admin.list_all(API + "/inspections?batch_id=%d" % b["id"])
    eq(sorted(x["id"] for x in listed), sorted(x["id"] for x in made))
    # the batch's checklist given explicitly is fine
    u4 = mk_dept(name=ctx.uniq("批量单位"))
    r = many(b["id"], [u4["id"]], checklist_id=b["checklist_id"])
    expect_status(r, 201)
    eq(in_batch(b["id"]), 4)


@test
def a_batchs_inspections_all_or_nothing():
    b = new_batch()
    done = mk_dept(name=ctx.uniq("已督察单位"))
    expect_status(many(b["id"], [done["id"]]), 201)
    fresh = mk_dept(name=ctx.uniq("新单位"))
    old, successor = mk_dept(name=ctx.uniq("撤并单位")), mk_dept(name=ctx.uniq("承继单位"))
    expect_status(ctx.admin.post(API + "/departments/%d/merge" % old["id"],
                                 json={"successor_id": successor["id"], "reason": "机构改革"}), 200, "merge")
    n = in_batch(b["id"])
    r = many(b["id"], [fresh["id"], 999999999, old["id"], done["id"]])
    body = expect_problem(r, 400, "validation-failed", exact_pointers=True,
                          pointers=["/target_department_ids/1", "/target_department_ids/2", "/target_department_ids/3"])
    msgs = [e["message"] for e in body["errors"]]
    check("no such department" in msgs[0] and "merged" in msgs[1] and "in this batch already" in msgs[2],
          "messages %s" % msgs)
    eq(in_batch(b["id"]), n, "nothing written")
    eq(db_int("SELECT count(*) FROM inspections WHERE target_department_id = %d" % fresh["id"]), 0)
    expect_problem(many(b["id"], [fresh["id"], fresh["id"]]), 400, "validation-failed",
                   pointers=["/target_department_ids/1"], exact_pointers=True)
    expect_problem(many(b["id"], []), 400, "validation-failed", pointers=["/target_department_ids"])
    expect_problem(many(b["id"], [fresh["id"]], title="{department}" + "督" * 200), 400, "validation-failed",
                   pointers=["/title"])
    expect_problem(many(b["id"], [fresh["id"]], title="{department}" + "督" * 188), 400, "validation-failed",
                   pointers=["/target_department_ids/0"], exact_pointers=True)
    expect_problem(many(b["id"], [fresh["id"]], checklist_id=b["checklist_id"] + 100000), 400, "validation-failed",
                   pointers=["/checklist_id"])
    expect_problem(many(b["id"], [fresh["id"]], status="draft"), 400, "validation-failed", pointers=["/status"])
    expect_problem(many(999999999, [fresh["id"]]), 404, "not-found")
    for who in (dept_user(fresh["id"]), viewer()):
        expect_problem(many(b["id"], [fresh["id"]], client=who.client), 403, "forbidden")
    eq(in_batch(b["id"]), n, "nothing written")
    expect_status(many(b["id"], [fresh["id"]]), 201, "the fresh unit alone")


# ------------------------------------------------------------------------------ bulk urge

def urge(rids, client=None, **fields):
    body = {"ids": rids}
    body.update(fields)
    return (client or ctx.admin).post(API + "/rectifications/urge", json=body)


def urges(rid):
    return len(audit("rectification", rid, "urge"))


@test
def urge_many():
    c = Case(n=3)
    r0, r1, r2 = [r["id"] for r in c.rects]
    act_ok(c.dept().client, r1, "start")
    r = urge([r1, r0], client=inspector(1).client, note="请于本周内报送整改进展")
    expect_status(r, 200)
    eq([(x["id"], x["urge_count"]) for x in r.json["data"]], [(r1, 1), (r0, 1)], "urged, in order")
    for rid in (r0, r1):
        ev = audit("rectification", rid, "urge")
        eq(len(ev), 1, "one urge event per rectification")
        eq(ev[0]["after"].get("note"), "请于本周内报送整改进展")
    eq(get_rect(ctx.admin, r2)["urge_count"], 0)
    expect_status(urge([r2]), 200, "without a note")
    eq(get_rect(ctx.admin, r2)["urge_count"], 1)


@test
def urge_many_all_or_nothing():
    c = Case(n=3)
    dep = c.dept()
    r0, r1, sub = [r["id"] for r in c.rects]
    drive(sub, "submitted", dep.client)
    reopened = Case()
    expect_status(ctx.admin.post(API + "/inspections/%d/reopen" % reopened.insp["id"], json={"reason": "更正"}), 200)
    before = {rid: (get_rect(ctx.admin, rid)["urge_count"], urges(rid)) for rid in (r0, r1)}
    # ones that may not be urged: 409, an error at each index, nothing written
    b = expect_problem(urge([r0, sub, r1, reopened.id]), 409, "conflict", exact_pointers=True,
                       pointers=["/ids/1", "/ids/3"])
    check("submitted" in b["errors"][0]["message"], "message %r" % b["errors"][0]["message"])
    eq(b["errors_total"], 2)
    after = {rid: (get_rect(ctx.admin, rid)["urge_count"], urges(rid)) for rid in (r0, r1)}
    eq(after, before, "the urges before the refused one were rolled back")
    # ids that name nothing: 400, with the others' errors too
    b = expect_problem(urge([r0, 999999999, sub]), 400, "validation-failed", exact_pointers=True,
                       pointers=["/ids/1", "/ids/2"])
    eq(b["errors"][0]["message"], "no such rectification")
    expect_problem(urge([r0, r0]), 400, "validation-failed", pointers=["/ids/1"], exact_pointers=True)
    expect_problem(urge([]), 400, "validation-failed", pointers=["/ids"])
    expect_problem(urge([r0], note=""), 400, "validation-failed", pointers=["/note"])
    for who in (dep, viewer()):
        expect_problem(urge([r0], client=who.client), 403, "forbidden")
    eq({rid: (get_rect(ctx.admin, rid)["urge_count"], urges(rid)) for rid in (r0, r1)}, before, "nothing written")
    expect_status(urge([r0, r1]), 200)


if __name__ == "__main__":
    main()
