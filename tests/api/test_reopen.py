#!/usr/bin/python3
"""Reopening an inspection (issue 10): an admin sends a submitted or closed inspection back to
in_progress with a reason; its rows, problems and measures are editable again, its measures keep
their status and wait, what was worked on cannot be deleted, submitting again needs deadlines;
revoke of a closure still moves a closed inspection back to submitted only."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, check, ctx, day, db_int, eq, expect_problem, expect_status, main, mk_problem,  # noqa: E402
                     mk_rect, test)
from lifecycle_helpers import (Case, act, act_ok, add_evidence, audit, drive, get_rect, inspector, rpath,  # noqa: E402
                               viewer)


def ipath(iid, rest=""):
    return API + "/inspections/%d%s" % (iid, ("/" + rest) if rest else "")


def insp(iid):
    r = ctx.admin.get(ipath(iid))
    expect_status(r, 200)
    return r.json


def reopen(iid, reason="复核发现记录有误，更正督察结论", client=None, **kw):
    return (client or ctx.admin).post(ipath(iid, "reopen"), json={"reason": reason}, **kw)


def reopen_ok(iid, reason="复核发现记录有误，更正督察结论"):
    r = reopen(iid, reason)
    expect_status(r, 200, "reopen inspection %d" % iid)
    return r.json


def events(iid, action):
    return audit("inspection", iid, action)


def etag(path):
    r = ctx.admin.get(path)
    expect_status(r, 200)
    return r.etag


def delete(path):
    return ctx.admin.delete(path, if_match=etag(path))


@test
def reopen_a_submitted_inspection():
    c = Case(n=2)
    before = insp(c.insp["id"])
    eq(before["status"], "submitted")
    x = reopen_ok(c.insp["id"], "督察结论需更正")
    eq((x["status"], x["closed_at"]), ("in_progress", None))
    eq(x["submitted_at"], before["submitted_at"], "submitted_at keeps the first submission")
    eq(insp(c.insp["id"])["status"], "in_progress")
    ev = events(c.insp["id"], "reopen")
    eq(len(ev), 1, "one reopen event")
    eq((ev[0]["before"], ev[0]["after"]), ({"status": "submitted"}, {"status": "in_progress", "reason": "督察结论需更正"}))
    # the rows, problems and measures are editable again
    r = ctx.admin.patch(API + "/items/%d" % c.item["id"], json={"completion": "not_completed"},
                        if_match=etag(API + "/items/%d" % c.item["id"]), ctype="application/merge-patch+json")
    expect_status(r, 200, "PATCH a row after the reopen")
    p = mk_problem(c.item["id"], "复查补充的问题")
    rp = API + "/problems/%d" % c.problem["id"]
    expect_status(ctx.admin.patch(rp, json={"description": "更正后的问题描述"}, if_match=etag(rp),
                                  ctype="application/merge-patch+json"), 200, "PATCH a problem")
    r = ctx.admin.patch(rpath(c.id), json={"measure": "更正后的整改措施"}, if_match=etag(rpath(c.id)),
                        ctype="application/merge-patch+json")
    expect_status(r, 200, "PATCH a measure")
    eq(r.json["status"], "pending", "the measure keeps its status")
    # a problem and a measure nobody worked on can be deleted
    expect_status(delete(API + "/problems/%d" % p["id"]), 204, "delete the new problem")
    expect_status(delete(rpath(c.rects[1]["id"])), 204, "delete an untouched measure")


@test
def reopen_a_closed_inspection_and_submit_again():
    c = Case(n=1)
    dep = c.dept()
    drive(c.id, "closed", dep.client)
    eq(c.insp_status(), "closed", "the inspection closed with its measure")
    first = insp(c.insp["id"])
    x = reopen_ok(c.insp["id"])
    eq((x["status"], x["closed_at"], x["submitted_at"]), ("in_progress", None, first["submitted_at"]))
    eq(events(c.insp["id"], "reopen")[-1]["before"], {"status": "closed"})
    eq(get_rect(ctx.admin, c.id)["status"], "closed", "the measure stays closed")
    # every measure is closed: submitting again closes the inspection at once
    y = ctx.admin.post(ipath(c.insp["id"], "submit"), json={})
    expect_status(y, 200, "submit again")
    eq(y.json["status"], "closed")
    check(y.json["closed_at"], "closed_at after the second submit")
    eq(y.json["submitted_at"], first["submitted_at"], "submitted_at is still the first submission")


@test
def reopen_only_from_submitted_or_closed():
    c = Case(submit=False)          # started: in_progress
    v = insp(c.insp["id"])
    b = expect_problem(reopen(c.insp["id"]), 409, "invalid-transition")
    eq(b["allowed_transitions"], ["submit"])
    draft = ctx.admin.post(API + "/inspections", json={"target_department_id": c.target["id"],
                                                      "inspected_on": day(0), "title": ctx.uniq("草稿")})
    expect_status(draft, 201)
    b = expect_problem(reopen(draft.json["id"]), 409, "invalid-transition")
    eq(b["allowed_transitions"], ["start"])
    eq(insp(c.insp["id"])["updated_at"], v["updated_at"], "nothing written")
    eq(events(c.insp["id"], "reopen") + events(draft.json["id"], "reopen"), [], "no reopen event")
    # twice: the second finds it in_progress
    c2 = Case()
    reopen_ok(c2.insp["id"])
    expect_problem(reopen(c2.insp["id"]), 409, "invalid-transition")
    eq(len(events(c2.insp["id"], "reopen")), 1)
    # an admin is offered reopen on a submitted inspection
    c3 = Case()
    b = expect_problem(ctx.admin.post(ipath(c3.insp["id"], "start"), json={}), 409, "invalid-transition")
    eq(b["allowed_transitions"], ["reopen"])
    b = expect_problem(inspector(1).client.post(ipath(c3.insp["id"], "start"), json={}), 409, "invalid-transition")
    eq(b["allowed_transitions"], [])
    expect_problem(reopen(999999999), 404, "not-found")


@test
def reopen_is_for_an_admin_with_a_reason():
    c = Case()
    iid = c.insp["id"]
    for who in (inspector(1), c.dept(), viewer()):
        expect_problem(reopen(iid, client=who.client), 403, "forbidden")
    expect_problem(ctx.admin.post(ipath(iid, "reopen"), json={}), 400, "validation-failed", pointers=["/reason"])
    expect_problem(reopen(iid, ""), 400, "validation-failed", pointers=["/reason"])
    expect_problem(reopen(iid, "长" * 2001), 400, "validation-failed", pointers=["/reason"])
    expect_problem(ctx.admin.post(ipath(iid, "reopen"), json={"reason": "x", "status": "draft"}), 400,
                   "validation-failed", pointers=["/status"])
    expect_problem(reopen(iid, if_match='"1"'), 412, "precondition-failed")
    eq(c.insp_status(), "submitted", "nothing changed")
    eq(events(iid, "reopen"), [])
    x = reopen_ok(iid, "长" * 2000)
    eq(x["status"], "in_progress")


@test
def what_was_worked_on_cannot_be_deleted():
    c = Case(n=5)
    dep = c.dept()
    untouched, with_evidence, started, urged, closed = [r["id"] for r in c.rects]
    add_evidence(dep.client, with_evidence)
    act_ok(dep.client, started, "start")
    act_ok(inspector(1).client, urged, "urge", {"note": "请抓紧"})
    drive(closed, "closed", dep.client)
    # after the reopen: a new problem with a new measure, and another one
    reopen_ok(c.insp["id"])
    p2 = mk_problem(c.item["id"], "复查新增问题")
    r2 = mk_rect(p2["id"], c.resp["id"], deadline=day(20))
    p3 = mk_problem(c.item["id"], "另一个问题")
    mk_rect(p3["id"], c.resp["id"], deadline=day(20))
    count = "SELECT count(*) FROM rectifications WHERE problem_id IN (%d, %d)" % (c.problem["id"], p2["id"])
    n0 = db_int(count)
    deletes0 = len(audit("rectification", with_evidence, "delete"))
    for rid, why in ((with_evidence, "evidence"), (started, "start"), (urged, "urge"), (closed, "closure")):
        b = expect_problem(delete(rpath(rid)), 409, "conflict")
        check(why in b["detail"] and "cannot be deleted" in b["detail"], "detail %r (expected %s)" % (b["detail"], why))
    b = expect_problem(delete(API + "/problems/%d" % c.problem["id"]), 409, "conflict")
    check("cannot be deleted" in b["detail"], "problem detail %r" % b["detail"])
    eq(db_int(count), n0, "nothing deleted")
    eq(len(audit("rectification", with_evidence, "delete")), deletes0, "no delete event")
    # progress alone is enough
    reopen_ctx = Case(n=1)
    reopen_ctx.dept().client.post(rpath(reopen_ctx.id, "progress"), json={"note": "已部署", "percent": 10})
    reopen_ok(reopen_ctx.insp["id"])
    b = expect_problem(delete(rpath(reopen_ctx.id)), 409, "conflict")
    check("progress" in b["detail"], "detail %r" % b["detail"])
    b = expect_problem(delete(API + "/problems/%d" % reopen_ctx.problem["id"]), 409, "conflict")
    check("rectification %d" % reopen_ctx.id in b["detail"], "problem detail names the measure: %r" % b["detail"])
    # new and untouched: deleted
    expect_status(delete(rpath(untouched)), 204, "delete the untouched measure")
    expect_status(delete(rpath(r2["id"])), 204, "delete a measure made after the reopen")
    expect_status(delete(API + "/problems/%d" % p3["id"]), 204, "delete a problem with an untouched measure")
    eq(len(audit("rectification", untouched, "delete")), 1, "the delete is audited")


@test
def measures_wait_while_reopened_and_resubmit_needs_deadlines():
    c = Case(n=2)
    dep = c.dept()
    act_ok(dep.client, c.id, "start")
    reopen_ok(c.insp["id"])
    # no lifecycle action, progress or evidence until the findings are submitted again
    r = act(dep.client, c.id, "submit")
    expect_problem(r, 409, "invalid-transition")
    expect_problem(act(ctx.admin, c.rects[1]["id"], "start"), 409, "invalid-transition")
    r = dep.client.post(rpath(c.id, "progress"), json={"note": "继续整改", "percent": 50})
    expect_problem(r, 409, "invalid-transition")
    eq(get_rect(ctx.admin, c.id)["status"], "in_progress", "the measure keeps its status")
    # a new measure without a deadline, and one whose deadline is taken away
    new = mk_rect(c.problem["id"], c.resp["id"])
    other = c.rects[1]["id"]
    expect_status(ctx.admin.patch(rpath(other), json={"deadline": None}, if_match=etag(rpath(other)),
                                  ctype="application/merge-patch+json"), 200)
    b = expect_problem(ctx.admin.post(ipath(c.insp["id"], "submit"), json={}), 409, "conflict",
                       pointers=["/rectifications/%d/deadline" % new["id"], "/rectifications/%d/deadline" % other])
    eq(b["errors_total"], 2)
    eq(c.insp_status(), "in_progress")
    for rid in (new["id"], other):
        expect_status(ctx.admin.patch(rpath(rid), json={"deadline": day(15)}, if_match=etag(rpath(rid)),
                                      ctype="application/merge-patch+json"), 200)
    x = ctx.admin.post(ipath(c.insp["id"], "submit"), json={})
    expect_status(x, 200)
    eq(x.json["status"], "submitted")
    eq(len(events(c.insp["id"], "submit")), 2, "two submit events")
    # and the work goes on
    add_evidence(dep.client, c.id)
    eq(act_ok(dep.client, c.id, "submit")["status"], "submitted")
    eq(act_ok(dep.client, new["id"], "start")["status"], "in_progress")


@test
def revoke_still_moves_a_closed_inspection_to_submitted():
    c = Case(n=1)
    dep = c.dept()
    drive(c.id, "closed", dep.client)
    eq(c.insp_status(), "closed")
    act_ok(ctx.admin, c.id, "revoke", {"reason": "复核发现整改不到位"})
    eq(c.insp_status(), "submitted", "revoke: closed -> submitted, the findings stay final")
    r = ctx.admin.patch(API + "/items/%d" % c.item["id"], json={"completion": "completed"},
                        if_match=etag(API + "/items/%d" % c.item["id"]), ctype="application/merge-patch+json")
    expect_problem(r, 409, "frozen")
    # a reopen after it, from submitted
    eq(reopen_ok(c.insp["id"])["status"], "in_progress")


if __name__ == "__main__":
    main()
