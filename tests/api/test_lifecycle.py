#!/usr/bin/python3
"""Rectification lifecycle (issue 4): every action from every state, who may act, the rules of
submit / close / reject / extension / reassign / urge / revoke, the inspection closing itself,
overdue, and races of 50 concurrent actions on one rectification."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, check, ctx, day, eq, expect_problem, expect_status, main,  # noqa: E402
                     mk_dept, run_concurrently, test)
from lifecycle_helpers import (ACTIONS, RECT_KEYS, Case, act, act_ok, add_evidence, audit, default_body,  # noqa: E402
                               dept_user, drive, expected_allowed, get_rect, inspector, make_pdf, rpath,
                               set_deadline_sql, upload, viewer)

# the state each successful action leads to (None: unchanged)
RESULT_STATE = {"start": "in_progress", "submit": "submitted", "close": "closed", "reject": "in_progress",
                "request-extension": None, "extend": None, "refuse-extension": None, "reassign": None,
                "urge": None, "revoke": "in_progress"}


def ref(d):
    return {"id": d["id"], "name": d["name"]}


def etag_of(client, rid):
    r = client.get(rpath(rid))
    expect_status(r, 200)
    return r.etag


def expect_invalid_transition(r, caller_client, rid, msg=""):
    """409 invalid-transition whose allowed_transitions equals what GET shows the same caller."""
    b = expect_problem(r, 409, "invalid-transition")
    now = get_rect(caller_client, rid)["allowed_transitions"]
    check(isinstance(b.get("allowed_transitions"), list), "%sno allowed_transitions in %s" % (msg, b))
    eq(sorted(b["allowed_transitions"]), sorted(now), "%sallowed_transitions of the 409 vs GET" % msg)
    return b


@test
def representation_of_a_new_rectification():
    c = Case()
    x = get_rect(ctx.admin, c.id)
    eq(sorted(x), RECT_KEYS, "rectification properties")
    eq((x["status"], x["overdue"], x["closed_on_time"], x["submitted_at"], x["submitted_by"], x["closed_at"],
        x["closed_by"], x["close_opinion"], x["urge_count"], x["last_urged_at"], x["evidence_count"]),
       ("pending", False, None, None, None, None, None, None, 0, None, 0))
    eq(x["problem"], {"id": c.problem["id"], "ordinal": 1, "description": c.problem["description"]})
    eq(x["item"], {"id": c.item["id"], "seq": c.item["seq"]})
    eq(x["inspection"], {"id": c.insp["id"], "title": c.insp["title"], "status": "submitted"})
    eq(x["target_department"], ref(c.target))
    eq(x["responsible_department"], ref(c.resp))
    eq(sorted(x["allowed_transitions"]), expected_allowed("pending", "admin"), "admin's allowed_transitions")


@test
def allowed_transitions_depend_on_state_and_caller():
    c = Case()
    dep, ins, vw = c.dept(), inspector(1), viewer()
    callers = [("admin", ctx.admin), ("inspector", ins.client), ("department", dep.client), ("viewer", vw.client)]
    add_evidence(dep.client, c.id)
    for state in ("pending", "in_progress", "submitted", "closed"):
        # one step at a time, the department submitting and an inspector closing
        if state == "in_progress":
            act_ok(dep.client, c.id, "start")
        elif state == "submitted":
            act_ok(dep.client, c.id, "submit")
        elif state == "closed":
            act_ok(ins.client, c.id, "close", {"opinion": "同意"})
        for role, cl in callers:
            x = get_rect(cl, c.id)
            eq(x["status"], state)
            eq(sorted(x["allowed_transitions"]), expected_allowed(state, role),
               "allowed_transitions of %s in state %s" % (role, state))


@test
def every_action_from_every_state():
    other = mk_dept(name=ctx.uniq("转办单位"))
    for state in ("pending", "in_progress", "submitted", "closed"):
        # the actions not allowed here: 409 invalid-transition, nothing written
        c = Case()
        dep = c.dept()
        x = drive(c.id, state, dep.client)
        allowed = expected_allowed(state, "admin")
        eq(sorted(x["allowed_transitions"]), allowed, "admin's allowed_transitions in %s" % state)
        tag = etag_of(ctx.admin, c.id)
        for action in ACTIONS:
            if action in allowed:
                continue
            r = act(ctx.admin, c.id, action, default_body(action, other["id"]))
            expect_invalid_transition(r, ctx.admin, c.id, "%s from %s: " % (action, state))
            eq(sorted(r.json["allowed_transitions"]), allowed, "%s from %s: allowed_transitions" % (action, state))
        eq(etag_of(ctx.admin, c.id), tag, "the refused actions from %s changed the rectification" % state)
        eq(get_rect(ctx.admin, c.id)["status"], state)
        # the allowed ones: each on a fresh rectification in that state
        for action in allowed:
            c2 = Case()
            dep2 = c2.dept()
            before = drive(c2.id, state, dep2.client)
            if state == "in_progress" and action == "submit":
                add_evidence(dep2.client, c2.id)
            body = default_body(action, other["id"])
            after = act_ok(ctx.admin, c2.id, action, body)
            want = RESULT_STATE[action] or state
            eq(after["status"], want, "%s from %s: status" % (action, state))
            eq(get_rect(ctx.admin, c2.id)["status"], want, "%s from %s: status on GET" % (action, state))
            check(after["updated_at"] >= before["updated_at"], "updated_at went back")
            if action == "extend":
                eq(after["deadline"], body["deadline"], "extend from %s sets the deadline" % state)
            if action == "reassign":
                eq(after["responsible_department"], ref(other), "reassign from %s" % state)
            if action == "urge":
                eq(after["urge_count"], before["urge_count"] + 1, "urge from %s" % state)
            if action == "request-extension":
                eq(after["deadline"], before["deadline"], "a request does not change the deadline by itself")
                reqs = ctx.admin.list_all(rpath(c2.id, "extension-requests"))
                eq([(q["deadline"], q["status"]) for q in reqs], [(body["deadline"], "pending")])


@test
def roles_outside_x_roles_are_403():
    other = mk_dept(name=ctx.uniq("转办单位"))
    vw = viewer()
    ins = inspector(1)
    cases = {}
    for state in ("pending", "submitted", "closed"):
        c = Case()
        drive(c.id, state, c.dept().client)
        cases[state] = c
    where = {"start": "pending", "submit": "pending", "close": "submitted", "reject": "submitted",
             "request-extension": "pending", "extend": "pending", "refuse-extension": "pending",
             "reassign": "pending", "urge": "pending", "revoke": "closed"}
    # an extension request pending, so that refuse-extension would be valid for a permitted role
    act_ok(cases["pending"].dept().client, cases["pending"].id, "request-extension",
           default_body("request-extension"))
    forbidden = [(vw, a) for a in ACTIONS] + \
        [("department", a) for a in ("close", "reject", "extend", "refuse-extension", "reassign", "urge", "revoke")] + \
        [(ins, a) for a in ("request-extension", "revoke")]
    tags = {s: etag_of(ctx.admin, c.id) for s, c in cases.items()}
    for who, action in forbidden:
        c = cases[where[action]]
        cl = c.dept() if who == "department" else who
        r = act(cl.client, c.id, action, default_body(action, other["id"]))
        expect_problem(r, 403, "forbidden")
    for s, c in cases.items():
        eq(etag_of(ctx.admin, c.id), tags[s], "a forbidden action changed the %s rectification" % s)


@test
def department_scope():
    c = Case()
    outsider = Case().dept()            # a department user of an unrelated unit
    x = act(outsider.client, c.id, "start")
    expect_problem(x, 404, "not-found")
    expect_problem(outsider.client.get(rpath(c.id)), 404, "not-found")
    target_user = dept_user(c.target["id"])
    eq(get_rect(target_user.client, c.id)["id"], c.id, "the inspected unit reads the rectification")
    expect_problem(act(target_user.client, c.id, "start"), 404, "not-found")
    eq(get_rect(ctx.admin, c.id)["status"], "pending", "nothing changed")
    # a user of the responsible unit's parent may act
    p = c.parent_user()
    y = act_ok(p.client, c.id, "start", {"note": "上级单位督促落实"})
    eq(y["status"], "in_progress")
    add_evidence(p.client, c.id)
    eq(act_ok(p.client, c.id, "submit")["submitted_by"], p.ref)
    # and a user of the unit itself
    c2 = Case()
    eq(act_ok(c2.dept().client, c2.id, "start")["status"], "in_progress")


@test
def submit_needs_evidence():
    c = Case()
    dep = c.dept()
    act_ok(dep.client, c.id, "start")
    tag = etag_of(ctx.admin, c.id)
    r = act(dep.client, c.id, "submit", {"note": "已整改"})
    expect_problem(r, 409, "conflict", pointers=["/evidence"])
    x = get_rect(ctx.admin, c.id)
    eq((x["status"], x["submitted_at"], x["submitted_by"]), ("in_progress", None, None), "nothing written")
    eq(etag_of(ctx.admin, c.id), tag, "ETag after a refused submit")
    eq([e for e in audit("rectification", c.id) if e["action"] == "submit"], [], "no submit in the audit trail")
    # evidence on a progress update is enough
    r = dep.client.post(rpath(c.id, "progress"), json={"note": "完成整改", "percent": 100})
    expect_status(r, 201)
    add_evidence(dep.client, c.id, progress_id=r.json["id"])
    x = act_ok(dep.client, c.id, "submit", {"note": "已整改"})
    eq((x["status"], x["submitted_by"]), ("submitted", dep.ref))
    check(x["submitted_at"] and UTC_DATETIME_RE.match(x["submitted_at"]), "submitted_at %r" % x["submitted_at"])


@test
def close_by_a_second_inspector():
    c = Case()
    a, b = inspector(1), inspector(2)
    act_ok(a.client, c.id, "start")
    add_evidence(a.client, c.id)
    act_ok(a.client, c.id, "submit")
    tag = etag_of(ctx.admin, c.id)
    r = act(a.client, c.id, "close", {"opinion": "自己销号"})
    expect_problem(r, 409, "conflict")
    check(r.json.get("detail"), "the 409 says why")
    expect_problem(act(a.client, c.id, "reject", {"reason": "自己退回"}), 409, "conflict")
    for body in ({}, {"opinion": ""}, {"opinion": "意" * 2001}, {"opinion": 5}):
        expect_problem(act(b.client, c.id, "close", body), 400, "validation-failed", pointers=["/opinion"])
    eq(etag_of(ctx.admin, c.id), tag, "refused closes changed the rectification")
    x = act_ok(b.client, c.id, "close", {"opinion": "经核查，整改到位，同意销号。"})
    eq((x["status"], x["closed_by"], x["close_opinion"], x["closed_on_time"], x["submitted_by"]),
       ("closed", b.ref, "经核查，整改到位，同意销号。", True, a.ref))
    check(x["closed_at"] and UTC_DATETIME_RE.match(x["closed_at"]), "closed_at %r" % x["closed_at"])
    eq(get_rect(ctx.admin, c.id)["closed_by"], b.ref)
    eq(len(audit("rectification", c.id, "close")), 1, "close events")


@test
def closed_on_time_false_when_submitted_after_the_deadline():
    c = Case()
    dep = c.dept()
    act_ok(dep.client, c.id, "start")
    add_evidence(dep.client, c.id)
    set_deadline_sql(c.id, day(-2))
    act_ok(dep.client, c.id, "submit")
    x = act_ok(inspector(1).client, c.id, "close", {"opinion": "逾期完成"})
    eq((x["status"], x["closed_on_time"]), ("closed", False))
    # submitted on the deadline day itself is on time
    c2 = Case()
    dep2 = c2.dept()
    act_ok(dep2.client, c2.id, "start")
    add_evidence(dep2.client, c2.id)
    set_deadline_sql(c2.id, day(0))
    act_ok(dep2.client, c2.id, "submit")
    eq(act_ok(inspector(1).client, c2.id, "close", {"opinion": "按期"})["closed_on_time"], True)


@test
def closure_snapshot_is_frozen():
    c = Case()
    dep = c.dept()
    act_ok(dep.client, c.id, "start")
    e1 = add_evidence(dep.client, c.id)
    pr = dep.client.post(rpath(c.id, "progress"), json={"note": "阶段进展", "percent": 60})
    expect_status(pr, 201)
    e2 = add_evidence(dep.client, c.id, progress_id=pr.json["id"])
    act_ok(dep.client, c.id, "submit")
    closer = inspector(1)
    act_ok(closer.client, c.id, "close", {"opinion": "第一次销号"})
    cl = ctx.admin.list_all(rpath(c.id, "closures"))
    eq(len(cl), 1, "closures")
    first = cl[0]
    eq((first["closed_by"], first["opinion"], first["on_time"], first["revoked_at"]),
       (closer.ref, "第一次销号", True, None))
    eq(sorted((e["id"], e["sha256"]) for e in first["evidence"]),
       sorted([(e1["id"], e1["sha256"]), (e2["id"], e2["sha256"])]), "evidence seen by the first closure")
    # revoke, add evidence, close again: the first closure still shows what it saw
    expect_problem(act(ctx.admin, c.id, "revoke", {}), 400, "validation-failed", pointers=["/reason"])
    act_ok(ctx.admin, c.id, "revoke", {"reason": "抽查发现问题"})
    e3 = add_evidence(dep.client, c.id, filename=ctx.uniq("补充材料") + ".pdf")
    act_ok(dep.client, c.id, "submit")
    act_ok(inspector(2).client, c.id, "close", {"opinion": "第二次销号"})
    cl = ctx.admin.list_all(rpath(c.id, "closures"))
    eq([x["opinion"] for x in cl], ["第二次销号", "第一次销号"], "closures newest first")
    old = cl[1]
    eq((old["id"], old["closed_by"], old["closed_at"]), (first["id"], first["closed_by"], first["closed_at"]))
    eq(sorted((e["id"], e["sha256"]) for e in old["evidence"]),
       sorted([(e1["id"], e1["sha256"]), (e2["id"], e2["sha256"])]), "the first closure's snapshot changed")
    check(old["revoked_at"] and UTC_DATETIME_RE.match(old["revoked_at"]), "revoked_at %r" % old["revoked_at"])
    eq(old["revoke_reason"], "抽查发现问题")
    check(isinstance(old["revoked_by"], dict) and old["revoked_by"].get("id"), "revoked_by %r" % old["revoked_by"])
    eq(sorted(e["id"] for e in cl[0]["evidence"]), sorted([e1["id"], e2["id"], e3["id"]]), "second snapshot")
    eq(cl[0]["revoked_at"], None)


@test
def reject_needs_a_reason_and_sends_back():
    c = Case()
    dep = c.dept()
    drive(c.id, "submitted", dep.client)
    tag = etag_of(ctx.admin, c.id)
    for body in ({}, {"reason": ""}, {"reason": "   x" * 600}):
        expect_problem(act(inspector(1).client, c.id, "reject", body), 400, "validation-failed", pointers=["/reason"])
    eq(etag_of(ctx.admin, c.id), tag)
    x = act_ok(inspector(1).client, c.id, "reject", {"reason": "缺少公开网页截图"})
    eq(x["status"], "in_progress")
    ev = audit("rectification", c.id, "reject")
    eq(len(ev), 1, "reject events")
    # the department resubmits (its evidence is still there)
    eq(act_ok(dep.client, c.id, "submit")["status"], "submitted")


@test
def extension_request_granted_refused_and_history():
    c = Case(deadline=day(10))
    dep, ins = c.dept(), inspector(1)
    # bad requests
    for body, ptr in (({"deadline": day(40)}, "/reason"), ({"reason": "x"}, "/deadline"),
                      ({"deadline": day(10), "reason": "不晚于当前期限"}, "/deadline"),
                      ({"deadline": day(5), "reason": "早于当前期限"}, "/deadline"),
                      ({"deadline": day(-1), "reason": "过去的日期"}, "/deadline"),
                      ({"deadline": "2026-02-30", "reason": "无效日期"}, "/deadline")):
        expect_problem(act(dep.client, c.id, "request-extension", body), 400, "validation-failed", pointers=[ptr])
    eq(ctx.admin.list_all(rpath(c.id, "extension-requests")), [], "nothing requested yet")
    x = act_ok(dep.client, c.id, "request-extension", {"deadline": day(40), "reason": "需协调多个部门"})
    eq(x["deadline"], day(10), "the deadline waits for the decision")
    r = act(dep.client, c.id, "request-extension", {"deadline": day(50), "reason": "再次申请"})
    expect_problem(r, 409, "conflict")
    reqs = ctx.admin.list_all(rpath(c.id, "extension-requests"))
    eq([(q["deadline"], q["reason"], q["status"], q["requested_by"]) for q in reqs],
       [(day(40), "需协调多个部门", "pending", dep.ref)], "one pending request")
    check("refuse-extension" in get_rect(ins.client, c.id)["allowed_transitions"],
          "refuse-extension is allowed while a request is pending")
    # grant it
    x = act_ok(ins.client, c.id, "extend", {"deadline": day(40), "reason": "同意延期"})
    eq(x["deadline"], day(40))
    reqs = ctx.admin.list_all(rpath(c.id, "extension-requests"))
    eq([(q["status"], q["decided_by"]) for q in reqs], [("granted", ins.ref)])
    check(reqs[0]["decided_at"], "decided_at")
    check("refuse-extension" not in get_rect(ins.client, c.id)["allowed_transitions"], "nothing left to refuse")
    r = act(ins.client, c.id, "refuse-extension", {"reason": "无待决申请"})
    expect_invalid_transition(r, ins.client, c.id)
    # a second request, refused
    act_ok(dep.client, c.id, "start")
    act_ok(dep.client, c.id, "request-extension", {"deadline": day(70), "reason": "第二次申请"})
    expect_problem(act(ins.client, c.id, "refuse-extension", {}), 400, "validation-failed", pointers=["/reason"])
    x = act_ok(ins.client, c.id, "refuse-extension", {"reason": "不同意"})
    eq((x["deadline"], x["status"]), (day(40), "in_progress"))
    reqs = ctx.admin.list_all(rpath(c.id, "extension-requests"))
    eq([(q["deadline"], q["status"], q["decision_reason"]) for q in reqs],
       [(day(40), "granted", "同意延期"), (day(70), "refused", "不同意")])
    # the inspector sets a deadline without a request; extend into the past is refused
    expect_problem(act(ins.client, c.id, "extend", {"deadline": day(-3)}), 400, "validation-failed",
                   pointers=["/deadline"])
    act_ok(ins.client, c.id, "extend", {"deadline": day(20)})
    hist = ctx.admin.list_all(rpath(c.id, "deadlines"))
    eq([h["deadline"] for h in hist], [day(10), day(40), day(20)], "every deadline the rectification had")
    eq([h["kind"] for h in hist][:2], ["initial", "extension"])
    check(hist[2]["kind"] in ("set", "extension"), "kind of a deadline set without a request: %r" % hist[2]["kind"])
    eq(hist[1]["set_by"], ins.ref)
    eq(get_rect(ctx.admin, c.id)["deadline"], day(20))
    # the inspector cannot ask for an extension
    expect_problem(act(ins.client, c.id, "request-extension", {"deadline": day(90), "reason": "x"}), 403, "forbidden")


@test
def reassign_moves_it_and_the_earlier_unit_still_reads_it():
    c = Case()
    old_user = c.dept()
    act_ok(old_user.client, c.id, "start", {"note": "已开始"})
    pr = old_user.client.post(rpath(c.id, "progress"), json={"note": "原单位的进展", "percent": 30})
    expect_status(pr, 201)
    new_unit = mk_dept(name=ctx.uniq("新责任单位"))
    new_user = dept_user(new_unit["id"])
    expect_problem(new_user.client.get(rpath(c.id)), 404, "not-found")
    for body, ptr in (({"reason": "x"}, "/responsible_department_id"),
                      ({"responsible_department_id": new_unit["id"]}, "/reason"),
                      ({"responsible_department_id": 987654321, "reason": "x"}, "/responsible_department_id")):
        expect_problem(act(inspector(1).client, c.id, "reassign", body), 400, "validation-failed", pointers=[ptr])
    x = act_ok(inspector(1).client, c.id, "reassign", {"responsible_department_id": new_unit["id"],
                                                        "reason": "职责调整"})
    eq((x["responsible_department"], x["status"]), (ref(new_unit), "in_progress"))
    eq(get_rect(new_user.client, c.id)["responsible_department"], ref(new_unit), "the new unit reads it")
    g = get_rect(old_user.client, c.id)
    eq(g["responsible_department"], ref(new_unit), "the earlier unit still reads it")
    r = old_user.client.get(rpath(c.id, "progress"))
    expect_status(r, 200)
    eq([p["note"] for p in r.json["data"]], ["原单位的进展"], "the earlier unit reads what it did")
    # the new unit acts; the earlier one no longer may
    expect_problem(old_user.client.post(rpath(c.id, "progress"), json={"note": "x", "percent": 40}), 404, "not-found")
    expect_problem(upload(old_user.client, "/rectifications/%d/evidence" % c.id, make_pdf(), ctx.uniq("旧单位") + ".pdf",
                          "application/pdf"), 404, "not-found")
    eq(get_rect(ctx.admin, c.id)["evidence_count"], 0)
    expect_problem(act(old_user.client, c.id, "request-extension", default_body("request-extension")), 404,
                   "not-found")
    add_evidence(new_user.client, c.id)
    eq(act_ok(new_user.client, c.id, "submit")["submitted_by"], new_user.ref)


@test
def urge_counts():
    c = Case()
    ins = inspector(1)
    x = act_ok(ins.client, c.id, "urge", {"note": "请加快整改"})
    eq(x["urge_count"], 1)
    check(x["last_urged_at"] and UTC_DATETIME_RE.match(x["last_urged_at"]), "last_urged_at %r" % x["last_urged_at"])
    y = act_ok(ins.client, c.id, "urge")
    eq(y["urge_count"], 2)
    check(y["last_urged_at"] >= x["last_urged_at"], "last_urged_at moves forward")
    expect_problem(act(c.dept().client, c.id, "urge"), 403, "forbidden")
    eq(get_rect(ctx.admin, c.id)["urge_count"], 2)
    eq(len(audit("rectification", c.id, "urge")), 2, "urge events")


@test
def revoke_reopens_the_rectification_and_the_inspection():
    c = Case()
    dep = c.dept()
    drive(c.id, "closed", dep.client)
    eq(c.insp_status(), "closed", "the inspection closed with its only rectification")
    r = ctx.admin.get(API + "/inspections/%d" % c.insp["id"])
    check(r.json["closed_at"], "inspection closed_at")
    expect_problem(act(inspector(2).client, c.id, "revoke", {"reason": "x"}), 403, "forbidden")
    expect_problem(act(dep.client, c.id, "revoke", {"reason": "x"}), 403, "forbidden")
    eq(get_rect(ctx.admin, c.id)["status"], "closed", "still closed after the forbidden revokes")
    x = act_ok(ctx.admin, c.id, "revoke", {"reason": "复核发现整改不到位"})
    eq((x["status"], x["inspection"]["status"]), ("in_progress", "submitted"))
    eq(c.insp_status(), "submitted", "the inspection reopened")
    eq(len(audit("rectification", c.id, "revoke")), 1, "revoke events")
    # and it can be taken to closure again
    act_ok(dep.client, c.id, "submit")
    act_ok(inspector(1).client, c.id, "close", {"opinion": "再次销号"})
    eq(c.insp_status(), "closed")
    eq(len(audit("inspection", c.insp["id"], "close")), 2, "the inspection closed twice")


@test
def inspection_closes_itself_with_its_last_rectification():
    c = Case(n=2)
    dep = c.dept()
    a, b = c.rects[0]["id"], c.rects[1]["id"]
    drive(a, "closed", dep.client)
    eq(c.insp_status(), "submitted", "one rectification still open")
    eq(audit("inspection", c.insp["id"], "close"), [], "no close event yet")
    drive(b, "submitted", dep.client)
    eq(c.insp_status(), "submitted")
    act_ok(inspector(2).client, b, "close", {"opinion": "全部整改完毕"})
    eq(c.insp_status(), "closed", "the inspection closed with its last rectification")
    ev = audit("inspection", c.insp["id"], "close")
    eq(len(ev), 1, "the audit trail shows the inspection closing")
    eq(get_rect(ctx.admin, a)["inspection"]["status"], "closed")


@test
def overdue_while_pending_or_in_progress():
    c = Case(deadline=day(5))
    dep = c.dept()
    eq(get_rect(ctx.admin, c.id)["overdue"], False)
    set_deadline_sql(c.id, day(-1))
    eq(get_rect(ctx.admin, c.id)["overdue"], True, "pending past its deadline")
    act_ok(dep.client, c.id, "start")
    eq(get_rect(ctx.admin, c.id)["overdue"], True, "in_progress past its deadline")
    add_evidence(dep.client, c.id)
    x = act_ok(dep.client, c.id, "submit")
    eq(x["overdue"], False, "submitted is never overdue")
    eq(get_rect(dep.client, c.id)["overdue"], False)
    act_ok(inspector(1).client, c.id, "reject", {"reason": "退回"})
    eq(get_rect(ctx.admin, c.id)["overdue"], True, "a rejected one is overdue again")
    set_deadline_sql(c.id, day(0))
    eq(get_rect(ctx.admin, c.id)["overdue"], False, "due today is not overdue")


@test
def stale_if_match_is_412():
    c = Case()
    dep = c.dept()
    tag = etag_of(ctx.admin, c.id)
    act_ok(inspector(1).client, c.id, "urge")
    r = act(dep.client, c.id, "start", if_match=tag)
    expect_problem(r, 412, "precondition-failed")
    eq(get_rect(ctx.admin, c.id)["status"], "pending")
    cur = etag_of(ctx.admin, c.id)
    check(cur != tag, "urge did not change the ETag")
    r = act(dep.client, c.id, "start", if_match=cur)
    expect_status(r, 200)
    check(r.etag and r.etag != cur, "the action answers with a new ETag (%r, before %r)" % (r.etag, cur))


def _race(c, action, callers, body, if_match=None):
    fns = []
    for i in range(50):
        cl = callers[i % len(callers)]
        kw = {"timeout": 60}
        if if_match and i % 2 == 0:
            kw["if_match"] = if_match
        fns.append(lambda cl=cl, kw=kw: act(cl, c.id, action, body, **kw))
    results = run_concurrently(fns)
    errors = [r for r in results if isinstance(r, Exception)]
    check(not errors, "requests failed: %s" % errors[:3])
    statuses = [r.status for r in results]
    eq(statuses.count(200), 1, "exactly one %s wins (statuses %s)" % (action, sorted(statuses)))
    check(all(s in (200, 409, 412) for s in statuses), "statuses of the losers: %s" % sorted(statuses))
    for r in results:
        if r.status == 409:
            check(r.json and r.json.get("type") in ("urn:ducha:problem:invalid-transition",
                                                    "urn:ducha:problem:conflict"), "409 type %r" % r.json)
    return [r for r in results if r.status == 200][0]


@test
def race_50_closes_by_different_inspectors():
    c = Case()
    drive(c.id, "submitted", c.dept().client)
    inspectors = [inspector(n) for n in range(1, 6)]
    winner = _race(c, "close", [i.client for i in inspectors], {"opinion": "并发销号"}, etag_of(ctx.admin, c.id))
    x = get_rect(ctx.admin, c.id)
    eq((x["status"], x["closed_by"]), ("closed", winner.json["closed_by"]))
    eq(len(audit("rectification", c.id, "close")), 1, "close events in the audit trail")
    eq(len(ctx.admin.list_all(rpath(c.id, "closures"))), 1, "closures")
    eq(len(audit("inspection", c.insp["id"], "close")), 1, "the inspection closed once")


@test
def race_50_closes_by_the_same_inspector():
    c = Case()
    drive(c.id, "submitted", c.dept().client)
    ins = inspector(3)
    _race(c, "close", [ins.client], {"opinion": "同一人并发销号"}, etag_of(ctx.admin, c.id))
    eq(get_rect(ctx.admin, c.id)["closed_by"], ins.ref)
    eq(len(audit("rectification", c.id, "close")), 1, "close events in the audit trail")
    eq(len(ctx.admin.list_all(rpath(c.id, "closures"))), 1, "closures")


@test
def race_50_starts():
    c = Case()
    _race(c, "start", [c.dept().client, c.dept(2).client, inspector(1).client], {}, etag_of(ctx.admin, c.id))
    eq(get_rect(ctx.admin, c.id)["status"], "in_progress")
    eq(len(audit("rectification", c.id, "start")), 1, "start events in the audit trail")


if __name__ == "__main__":
    main()
