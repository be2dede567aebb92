#!/usr/bin/python3
"""Carry-over (上轮问题复查, issue 10): a later inspection of a unit shows, on each row of its
form, the open rectifications of that unit's earlier inspections of the same task, as the same
records (rows[].carried_over): across two and three inspections, gone once closed, across
checklist versions that map their tasks, never from another unit; acting on one changes it in
every form; the form's ETag follows them; the later inspection's closure ignores them."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, check, ctx, day, db, eq, expect_problem, expect_status, items_of, main,  # noqa: E402
                     mk_dept, mk_inspection, mk_problem, mk_rect, test)
from lifecycle_helpers import act_ok, add_evidence, dept_user, drive, inspector  # noqa: E402

ENTRY_KEYS = sorted(["id", "ordinal", "measure", "responsible_department", "deadline", "status", "overdue",
                     "inspection", "problem"])


def ref(d):
    return {"id": d["id"], "name": d["name"]}


class Round:
    """One inspection of `target` on `on`: for each seq of `findings`, one problem with `n`
    measures by `resp`; started, and submitted unless told otherwise."""

    def __init__(self, target, on, findings, resp, submit=True, checklist_id=None):
        extra = {"checklist_id": checklist_id} if checklist_id else {}
        self.insp = mk_inspection(target["id"], inspected_on=on, title=ctx.uniq("督察%s" % on), **extra)
        self.id = self.insp["id"]
        expect_status(ctx.admin.post(API + "/inspections/%d/start" % self.id, json={}), 200)
        self.items = {it["seq"]: it for it in items_of(self.id)}
        self.problems, self.rects = {}, {}
        for seq, n in findings.items():
            p = mk_problem(self.items[seq]["id"], ctx.uniq("问题%d" % seq))
            self.problems[seq] = p
            self.rects[seq] = [mk_rect(p["id"], resp["id"], ctx.uniq("措施%d-%d" % (seq, k + 1)), deadline=day(30))
                               for k in range(n)]
        if submit:
            expect_status(ctx.admin.post(API + "/inspections/%d/submit" % self.id, json={}), 200, "submit")

    def entry(self, seq, k=0, **changed):
        """The carried-over entry of its k-th measure on row seq, as a later form shows it."""
        r, p = self.rects[seq][k], self.problems[seq]
        e = {"id": r["id"], "ordinal": r["ordinal"], "measure": r["measure"],
             "responsible_department": r["responsible_department"], "deadline": r["deadline"], "status": "pending",
             "overdue": False, "inspection": {"id": self.id, "inspected_on": self.insp["inspected_on"],
                                              "title": self.insp["title"]},
             "problem": {"id": p["id"], "ordinal": p["ordinal"], "description": p["description"]}}
        e.update(changed)
        return e


def form(insp_id, client=None):
    r = (client or ctx.admin).get(API + "/inspections/%d/form" % insp_id)
    expect_status(r, 200, "form of %d" % insp_id)
    return r.json


def carried(f):
    """{seq: carried_over} of the rows that carry something over."""
    return {row["seq"]: row["carried_over"] for row in f["rows"] if row["carried_over"]}


def units():
    return mk_dept(name=ctx.uniq("督察对象")), mk_dept(name=ctx.uniq("责任单位"))


@test
def carried_over_from_an_earlier_inspection():
    target, resp = units()
    a = Round(target, "2026-01-10", {3: 2, 5: 1}, resp)
    b = Round(target, "2026-03-15", {}, resp, submit=False)
    fb = form(b.id)
    eq(carried(fb), {3: [a.entry(3, 0), a.entry(3, 1)], 5: [a.entry(5)]}, "B carries A's open measures")
    for e in fb["rows"][2]["carried_over"]:
        eq(sorted(e), ENTRY_KEYS, "entry keys")
    eq([row["problems"] for row in fb["rows"]], [[]] * 38, "B's own problems are its own")
    eq(carried(form(a.id)), {}, "nothing before A")
    eq(ctx.admin.get(API + "/inspections/%d" % b.id).json["counts"]["rectifications"], 0,
       "carried-over measures are not B's")
    # the department user of the target sees the same entries; the responsible unit does not read B
    target_user = dept_user(target["id"])
    eq(carried(form(b.id, target_user.client)), carried(fb), "a department user of the target")
    expect_problem(dept_user(resp["id"]).client.get(API + "/inspections/%d/form" % b.id), 404)


@test
def carried_over_across_three_inspections_in_date_order():
    target, resp = units()
    # created out of date order: the latest first
    c = Round(target, "2026-05-01", {2: 1}, resp)
    a = Round(target, "2026-01-10", {2: 1, 7: 1}, resp)
    b = Round(target, "2026-03-15", {2: 2}, resp)
    eq(carried(form(a.id)), {}, "A: the earliest")
    eq(carried(form(b.id)), {2: [a.entry(2)], 7: [a.entry(7)]}, "B: A's")
    eq(carried(form(c.id)), {2: [a.entry(2), b.entry(2, 0), b.entry(2, 1)], 7: [a.entry(7)]}, "C: A's, then B's")
    # the same day: the lower id is the earlier one
    d = Round(target, "2026-05-01", {2: 1}, resp, submit=False)
    eq(carried(form(d.id)), {2: [a.entry(2), b.entry(2, 0), b.entry(2, 1), c.entry(2)], 7: [a.entry(7)]},
       "D, same day as C and created after it: C's too")
    eq(carried(form(c.id))[2][-1], b.entry(2, 1), "C does not carry D's")


@test
def a_closed_one_disappears_and_comes_back_when_revoked():
    target, resp = units()
    a = Round(target, "2026-01-10", {4: 2}, resp)
    b = Round(target, "2026-03-15", {}, resp, submit=False)
    r1, r2 = a.rects[4]
    dep = dept_user(resp["id"])
    drive(r1["id"], "closed", dep.client)
    eq(carried(form(b.id)), {4: [a.entry(4, 1)]}, "closed: gone from B")
    eq(form(a.id)["rows"][3]["problems"][0]["rectifications"][0]["status"], "closed", "still in A, closed")
    act_ok(ctx.admin, r1["id"], "revoke", {"reason": "复查发现问题"})
    eq(carried(form(b.id)), {4: [a.entry(4, 0, status="in_progress"), a.entry(4, 1)]}, "revoked: back in B")
    drive(r2["id"], "submitted", dep.client)
    eq(carried(form(b.id))[4][1]["status"], "submitted", "a submitted one is still open")


def code():
    return ("co" + ctx.prefix + "-" + str(ctx.uniq("c").rsplit("-", 1)[1])).lower()


def mk_checklist(code_, tasks):
    r = ctx.admin.post(API + "/checklists", json={"code": code_, "title": ctx.uniq("清单"), "tasks": tasks})
    expect_status(r, 201, "create checklist")
    return r.json


def task(content, **fields):
    t = {"content": content}
    t.update(fields)
    return t


def tasks_of(checklist):
    return ctx.admin.list_all(API + "/checklists/%d/tasks" % checklist["id"])


@test
def mapped_tasks_across_checklist_versions():
    k = code()
    v1 = mk_checklist(k, [task("公开目录"), task("政策解读"), task("依申请公开")])
    eq([t["carries_over_seq"] for t in tasks_of(v1)], [None, None, None], "version 1 continues nothing")
    # v2: 1 stays, 2 is v1's 3 (moved up), 3 is new, 4 is new (v1 has no 4)
    v2 = mk_checklist(k, [task("公开目录"), task("依申请公开", carries_over_seq=3), task("新任务", carries_over_seq=None),
                          task("另一新任务")])
    eq(v2["version"], 2)
    eq([t["carries_over_seq"] for t in tasks_of(v2)], [1, 3, None, None], "v2's mapping")
    # v3 keeps v2's places: its 2 is v2's 2, so v1's 3
    v3 = mk_checklist(k, [task("公开目录"), task("依申请公开"), task("新任务")])
    eq([t["carries_over_seq"] for t in tasks_of(v3)], [1, 2, 3])
    # v4's 4: v3 has no 4, the latest version that has one is v2
    v4 = mk_checklist(k, [task("公开目录"), task("依申请公开"), task("新任务"), task("另一新任务")])
    eq([t["carries_over_seq"] for t in tasks_of(v4)], [1, 2, 3, 4])

    target, resp = units()
    other = Round(target, "2026-01-01", {1: 1, 2: 1, 3: 1}, resp)  # the default checklist: another code
    a = Round(target, "2026-01-10", {1: 1, 2: 1, 3: 1}, resp, checklist_id=v1["id"])
    b = Round(target, "2026-02-10", {3: 1, 4: 1}, resp, checklist_id=v2["id"])
    c = Round(target, "2026-03-10", {}, resp, submit=False, checklist_id=v3["id"])
    eq(carried(form(b.id)), {1: [a.entry(1)], 2: [a.entry(3)]}, "v2: row 1 from v1's 1, row 2 from v1's 3")
    eq(carried(form(c.id)), {1: [a.entry(1)], 2: [a.entry(3)], 3: [b.entry(3)]},
       "v3: through v2's mapping; v2's 4 has no row in v3")
    e = Round(target, "2026-03-20", {}, resp, submit=False, checklist_id=v4["id"])
    eq(carried(form(e.id)), {1: [a.entry(1)], 2: [a.entry(3)], 3: [b.entry(3)], 4: [b.entry(4)]},
       "v4: row 4 continues v2's 4 over v3")
    eq(carried(form(other.id)), {}, "the default checklist's inspection carries nothing of the other code")
    d = Round(target, "2026-04-10", {}, resp, submit=False)
    eq(carried(form(d.id)), {1: [other.entry(1)], 2: [other.entry(2)], 3: [other.entry(3)]},
       "a later default-checklist inspection carries only the default checklist's")


@test
def carries_over_seq_is_validated():
    k = code()
    for bad in (0, 201, "3", 1.5, True):
        r = ctx.admin.post(API + "/checklists", json={"code": k, "title": "x", "tasks": [task("a", carries_over_seq=bad)]})
        expect_problem(r, 400, "validation-failed", pointers=["/tasks/0/carries_over_seq"])
    r = ctx.admin.post(API + "/checklists", json={"code": k, "title": "x",
                                                  "tasks": [task("a"), task("b", carries_over_seq=1)]})
    expect_problem(r, 400, "validation-failed", pointers=["/tasks/1/carries_over_seq"], exact_pointers=True)
    eq(ctx.admin.list_all(API + "/checklists?code=" + k), [], "nothing created")
    v1 = mk_checklist(k, [task("a"), task("b")])
    eq(v1["version"], 1, "the failed creations used no version")
    r = ctx.admin.post(API + "/checklists", json={"code": k, "title": "x", "tasks": [
        task("a", carries_over_seq=2), task("b", carries_over_seq=3), task("c", carries_over_seq=None),
        task("d", carries_over_seq=9)]})
    b = expect_problem(r, 400, "validation-failed", pointers=["/tasks/1/carries_over_seq", "/tasks/3/carries_over_seq"],
                       exact_pointers=True)
    check("no earlier version" in str(b["errors"]), "the message says why: %s" % b["errors"])
    v2 = mk_checklist(k, [task("a", carries_over_seq=2), task("b", carries_over_seq=2)])
    eq((v2["version"], [t["carries_over_seq"] for t in tasks_of(v2)]), (2, [2, 2]), "a task split in two")


@test
def other_units_never_appear():
    target, resp = units()
    sub = mk_dept(name=ctx.uniq("下属单位"), parent_id=target["id"])
    elsewhere = mk_dept(name=ctx.uniq("另一对象"))
    Round(elsewhere, "2026-01-10", {1: 1}, resp)
    Round(sub, "2026-01-10", {1: 1}, resp)
    Round(elsewhere, "2026-01-11", {1: 1}, target)  # the target is only responsible there
    mine = Round(target, "2026-01-12", {2: 1}, resp)
    b = Round(target, "2026-03-15", {}, resp, submit=False)
    eq(carried(form(b.id)), {2: [mine.entry(2)]}, "only the target's own earlier inspections")
    eq(sorted(carried(form(Round(sub, "2026-03-15", {}, resp, submit=False).id))), [1], "the sub-unit's own")


@test
def acting_on_a_carried_over_one_changes_it_everywhere():
    target, resp = units()
    new_resp = mk_dept(name=ctx.uniq("新责任单位"))
    a = Round(target, "2026-01-10", {6: 1}, resp)
    b = Round(target, "2026-03-15", {6: 1}, resp)
    c = Round(target, "2026-04-15", {}, resp, submit=False)
    entry = carried(form(b.id))[6][0]
    rid = entry["id"]
    eq(rid, a.rects[6][0]["id"], "the entry is A's rectification itself")
    dep = dept_user(resp["id"])
    act_ok(dep.client, rid, "start")
    act_ok(inspector(1).client, rid, "extend", {"deadline": day(50), "reason": "延期"})
    act_ok(inspector(1).client, rid, "reassign", {"responsible_department_id": new_resp["id"], "reason": "转办"})
    want = a.entry(6, status="in_progress", deadline=day(50), responsible_department=ref(new_resp))
    eq(carried(form(b.id))[6], [want], "B")
    eq(carried(form(c.id))[6], [want, b.entry(6)], "C")
    own = form(a.id)["rows"][5]["problems"][0]["rectifications"][0]
    eq(own, {k: v for k, v in want.items() if k not in ("inspection", "problem")}, "A's own row")
    eq(db("select count(*) from rectifications where id = %d" % rid), "1", "one record")

    # closure: each inspection closes with its own measures only
    drive(b.rects[6][0]["id"], "closed", dep.client)
    eq(ctx.admin.get(API + "/inspections/%d" % b.id).json["status"], "closed", "B closed; A's measure still open")
    eq(ctx.admin.get(API + "/inspections/%d" % a.id).json["status"], "submitted", "A still open")
    dep2 = dept_user(new_resp["id"])
    add_evidence(dep2.client, rid)
    act_ok(dep2.client, rid, "submit")
    act_ok(inspector(1).client, rid, "close", {"opinion": "同意销号"})
    eq(ctx.admin.get(API + "/inspections/%d" % a.id).json["status"], "closed", "A closes with its own last one")
    eq(carried(form(c.id)), {}, "all closed: C carries nothing")


@test
def an_inspection_with_only_carried_over_measures_closes_at_submission():
    target, resp = units()
    a = Round(target, "2026-01-10", {1: 1}, resp)
    b = Round(target, "2026-03-15", {}, resp, submit=False)
    eq(len(carried(form(b.id))[1]), 1)
    r = ctx.admin.post(API + "/inspections/%d/submit" % b.id, json={})
    expect_status(r, 200)
    eq(r.json["status"], "closed", "nothing of its own to rectify")
    eq(ctx.admin.get(API + "/inspections/%d" % a.id).json["status"], "submitted")
    eq(carried(form(b.id))[1], [a.entry(1)], "a closed inspection still shows what it carried")


def tag_of(insp_id):
    r = ctx.admin.get(API + "/inspections/%d/form" % insp_id)
    expect_status(r, 200)
    tag = r.h("ETag")
    r2 = ctx.admin.get(API + "/inspections/%d/form" % insp_id, headers={"If-None-Match": tag})
    # other files rename and create departments meanwhile (the tag counts those): ask until stable
    for _ in range(5):
        if r2.status == 304:
            break
        tag = r2.h("ETag")
        r2 = ctx.admin.get(API + "/inspections/%d/form" % insp_id, headers={"If-None-Match": tag})
    eq(r2.status, 304, "an unchanged form answers 304")
    return tag


def own_part(tag):
    """The parts of a form's ETag that are the inspection's own (version, form version), without the
    department names' counter that other files move: "f<version>.<form version>.<names>.<date>"."""
    return tag.strip('"').split(".")[:2]


@test
def the_form_etag_follows_carried_over_measures():
    target, resp = units()
    a = Round(target, "2026-01-10", {2: 1}, resp)
    reopen(a.id)   # findings submitted once, editable again
    b = Round(target, "2026-03-15", {2: 1}, resp)
    tags = [tag_of(b.id)]

    def moved(label):
        t = tag_of(b.id)
        check(own_part(t) != own_part(tags[-1]), "%s: B's ETag did not change (%s)" % (label, t))
        tags.append(t)

    rid = a.rects[2][0]["id"]
    r = ctx.admin.patch(API + "/rectifications/%d" % rid, json={"measure": "改写的措施"}, if_match="*")
    expect_status(r, 200)
    moved("measure")
    eq(carried(form(b.id))[2][0]["measure"], "改写的措施")
    r = ctx.admin.patch(API + "/problems/%d" % a.problems[2]["id"], json={"description": "改写的问题"}, if_match="*")
    expect_status(r, 200)
    moved("problem text")
    r = ctx.admin.patch(API + "/inspections/%d" % a.id, json={"title": "改名的督察"}, if_match="*")
    expect_status(r, 200)
    moved("earlier inspection's title")
    eq(carried(form(b.id))[2][0]["inspection"]["title"], "改名的督察")
    x = mk_rect(a.problems[2]["id"], resp["id"], deadline=day(9))
    moved("measure added")
    r = ctx.admin.patch(API + "/inspections/%d" % a.id, json={"inspected_on": "2026-04-01"}, if_match="*")
    expect_status(r, 200)
    moved("A moved after B")
    eq(carried(form(b.id)), {}, "A is no longer earlier")
    eq(carried(form(a.id)), {2: [b.entry(2)]}, "A now carries B's")
    r = ctx.admin.patch(API + "/inspections/%d" % a.id, json={"inspected_on": "2026-01-10"}, if_match="*")
    expect_status(r, 200)
    moved("A moved back")
    expect_status(ctx.admin.delete(API + "/rectifications/%d" % x["id"], if_match="*"), 204)
    moved("measure deleted")
    expect_status(ctx.admin.post(API + "/inspections/%d/submit" % a.id, json={}), 200)
    tags.append(tag_of(b.id))  # submitting A changes nothing B shows; B's tag may stay
    act_ok(ctx.admin, rid, "start")
    moved("status")
    act_ok(ctx.admin, rid, "extend", {"deadline": day(40), "reason": "延期"})
    moved("deadline")
    act_ok(ctx.admin, rid, "reassign", {"responsible_department_id": mk_dept()["id"], "reason": "转办"})
    moved("unit")
    a_tag = tag_of(a.id)
    act_ok(ctx.admin, b.rects[2][0]["id"], "urge")
    eq(own_part(tag_of(a.id)), own_part(a_tag), "a later inspection's change leaves A's form alone")
    tags.append(tag_of(b.id))  # B's own measure urged: B's own counter moved
    act_ok(ctx.admin, rid, "urge")
    eq(own_part(tag_of(b.id)), own_part(tags[-1]), "urging changes nothing B shows")
    add_evidence(ctx.admin, rid)
    act_ok(ctx.admin, rid, "submit")
    moved("submitted")
    act_ok(inspector(2).client, rid, "close", {"opinion": "同意销号"})
    moved("closed")
    eq(carried(form(b.id)), {})


def reopen(insp_id):
    expect_status(ctx.admin.post(API + "/inspections/%d/reopen" % insp_id, json={"reason": "更正查摆问题"}), 200,
                  "reopen")


@test
def an_earlier_inspections_findings_count_once_submitted():
    target, resp = units()
    a = Round(target, "2026-01-10", {1: 1}, resp, submit=False)
    b = Round(target, "2026-03-15", {}, resp, submit=False)
    eq(carried(form(b.id)), {}, "findings not yet submitted are not carried over")
    t = tag_of(b.id)
    expect_status(ctx.admin.post(API + "/inspections/%d/submit" % a.id, json={}), 200)
    check(own_part(tag_of(b.id)) != own_part(t), "A submitted: B's ETag changed")
    eq(carried(form(b.id)), {1: [a.entry(1)]}, "submitted findings are carried over")
    reopen(a.id)
    eq(carried(form(b.id)), {1: [a.entry(1)]}, "reopened for corrections, they still are")
    t = tag_of(b.id)
    expect_status(ctx.admin.delete(API + "/problems/%d" % a.problems[1]["id"], if_match="*"), 204)
    check(own_part(tag_of(b.id)) != own_part(t), "problem deleted: B's ETag changed")
    eq(carried(form(b.id)), {})


if __name__ == "__main__":
    main()
