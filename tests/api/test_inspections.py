#!/usr/bin/python3
"""Inspections: create (items copied from the checklist), read, list filters, patch, delete,
start/submit, freezing, batches, items."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, check, ctx, day, eq, expect_problem, expect_status, items_of,  # noqa: E402
                     main, mk_dept, mk_inspection, mk_problem, mk_rect, qs, seed_checklist, test)

INSP_KEYS = sorted(["id", "title", "checklist_id", "checklist", "batch_id", "batch", "target_department_id",
                    "target_department", "inspected_on", "inspectors", "status", "published", "published_at",
                    "submitted_at", "closed_at", "counts", "created_at", "updated_at"])
COUNT_KEYS = sorted(["items", "completed", "not_completed", "not_assessed", "problems", "rectifications"])
ITEM_KEYS = sorted(["id", "inspection_id", "seq", "task_id", "task", "completion", "note", "material_department_ids",
                    "material_departments", "problem_count", "updated_at"])
BATCH_KEYS = sorted(["id", "name", "checklist_id", "checklist", "created_at", "updated_at"])


def ipath(iid, rest=""):
    return API + "/inspections/%d%s" % (iid, rest)


def newest_default():
    versions = ctx.admin.list_all(API + "/checklists?code=default")
    check(versions, "no checklist with code default")
    return max(versions, key=lambda c: c["version"])


def own_checklist(n=2):
    c = ("i" + ctx.prefix + ctx.uniq("c").rsplit("-", 1)[1]).lower()
    r = ctx.admin.post(API + "/checklists", json={"code": c, "title": ctx.uniq("专项清单"),
                                                   "tasks": [{"content": "专项任务%d" % i} for i in range(n)]})
    expect_status(r, 201, "create checklist")
    return r.json


def start(iid, **kw):
    r = ctx.admin.post(ipath(iid, "/start"), json={}, **kw)
    return r


def submit(iid, **kw):
    return ctx.admin.post(ipath(iid, "/submit"), json={}, **kw)


def get(iid):
    r = ctx.admin.get(ipath(iid))
    expect_status(r, 200)
    return r.json


# ------------------------------------------------------------------ create / read

@test
def create_inspection():
    t = mk_dept(name=ctx.uniq("某县人民政府"))
    body = {"target_department_id": t["id"], "inspected_on": "2026-03-15", "title": ctx.uniq("2026年第一季度督察"),
            "inspectors": ["张三", "李四", "欧阳·娜娜"]}
    r = ctx.admin.post(API + "/inspections", json=body)
    expect_status(r, 201)
    b = r.json
    eq(sorted(b), INSP_KEYS, "inspection keys")
    eq(r.h("Location"), ipath(b["id"]))
    eq(r.etag, '"1"')
    cl = seed_checklist()
    newest = newest_default()
    eq(newest["id"], cl["id"], "the newest default checklist is the seed (no test adds default versions)")
    expect = {"title": body["title"], "checklist_id": cl["id"], "checklist": {"id": cl["id"], "name": cl["title"]},
              "batch_id": None, "batch": None, "target_department_id": t["id"],
              "target_department": {"id": t["id"], "name": t["name"]}, "inspected_on": "2026-03-15",
              "inspectors": body["inspectors"], "status": "draft", "published": False, "published_at": None,
              "submitted_at": None, "closed_at": None,
              "counts": {"items": 38, "completed": 0, "not_completed": 0, "not_assessed": 38, "problems": 0,
                         "rectifications": 0}}
    for k, v in expect.items():
        eq(b[k], v, k)
    check(UTC_DATETIME_RE.match(b["created_at"]), "created_at %r" % b["created_at"])
    g = ctx.admin.get(ipath(b["id"]))
    expect_status(g, 200)
    eq(g.json, b, "GET equals the create response")
    eq(g.etag, '"1"')


@test
def inspectors_default_to_empty():
    i = mk_inspection()
    eq(i["inspectors"], [])


@test
def items_copy_their_tasks():
    i = mk_inspection()
    items = items_of(i["id"])
    tasks = ctx.admin.list_all(API + "/checklists/%d/tasks" % i["checklist_id"])
    eq(len(items), 38, "38 items")
    eq([x["seq"] for x in items], list(range(1, 39)), "items in seq order")
    for it, t in zip(items, tasks):
        eq(sorted(it), ITEM_KEYS, "item keys")
        eq((it["inspection_id"], it["task_id"], it["task"]), (i["id"], t["id"], {"id": t["id"], "content": t["content"]}))
        eq(it["material_department_ids"], t["material_department_ids"], "material departments of item %d" % it["seq"])
        eq(it["material_departments"], t["material_departments"])
        eq((it["completion"], it["note"], it["problem_count"]), ("not_assessed", None, 0))
    eq([d["name"] for d in items[0]["material_departments"]], ["市法制办", "市政府办公室"])
    g = ctx.admin.get(API + "/items/%d" % items[4]["id"])
    expect_status(g, 200)
    eq(g.json, items[4], "GET /items/{id} equals the list entry")
    check(g.etag, "ETag on an item")
    r = ctx.admin.get(ipath(i["id"], "/items?include_total=true&limit=5"))
    eq(r.json.get("total"), 38)
    eq([x["seq"] for x in r.json["data"]], [1, 2, 3, 4, 5])


@test
def item_patch_and_counts():
    i = mk_inspection()
    items = items_of(i["id"])
    d1, d2 = mk_dept(), mk_dept()
    r = ctx.admin.patch(API + "/items/%d" % items[0]["id"], json={"completion": "completed"}, if_match='"1"',
                        ctype="application/merge-patch+json")
    expect_status(r, 200)
    eq(r.json["completion"], "completed")
    eq(r.etag, '"2"')
    r = ctx.admin.patch(API + "/items/%d" % items[1]["id"],
                        json={"completion": "not_completed", "note": "未见公开目录", "material_department_ids": [d2["id"], d1["id"]]},
                        if_match="*")
    expect_status(r, 200)
    eq(r.json["material_departments"], [{"id": d2["id"], "name": d2["name"]}, {"id": d1["id"], "name": d1["name"]}])
    eq(r.json["note"], "未见公开目录")
    r = ctx.admin.patch(API + "/items/%d" % items[2]["id"], json={"completion": "not_completed", "material_department_ids": []},
                        if_match="*")
    expect_status(r, 200)
    eq((r.json["material_department_ids"], r.json["material_departments"]), ([], []))
    p = mk_problem(items[1]["id"])
    mk_rect(p["id"], d1["id"], deadline=day(20))
    mk_rect(p["id"], d2["id"])
    eq(get(i["id"])["counts"], {"items": 38, "completed": 1, "not_completed": 2, "not_assessed": 35, "problems": 1,
                                "rectifications": 2})
    eq(ctx.admin.get(API + "/items/%d" % items[1]["id"]).json["problem_count"], 1)
    got = ctx.admin.list_all(ipath(i["id"], "/items?completion=not_completed"))
    eq([x["seq"] for x in got], [2, 3], "completion filter")
    got = ctx.admin.list_all(ipath(i["id"], "/items?completion=not_assessed"))
    eq(len(got), 35)
    r = ctx.admin.get(ipath(i["id"], "/items?completion=done"))
    expect_problem(r, 400, "invalid-query", pointers=["/query/completion"])
    r = ctx.admin.patch(API + "/items/%d" % items[0]["id"], json={"note": "x"}, if_match='"1"')
    expect_problem(r, 412, "precondition-failed")
    r = ctx.admin.patch(API + "/items/%d" % items[0]["id"], json={"note": "x"})
    expect_problem(r, 428, "precondition-required")


@test
def items_have_no_create_or_delete():
    i = mk_inspection()
    item = items_of(i["id"])[0]
    r = ctx.admin.post(ipath(i["id"], "/items"), json={"task_id": item["task_id"]}, validate="problem")
    expect_problem(r, 405, "method-not-allowed")
    r = ctx.admin.delete(API + "/items/%d" % item["id"], if_match="*", validate="problem")
    expect_problem(r, 405, "method-not-allowed")


@test
def unknown_inspection_is_404():
    for p in ("", "/items", "/form"):
        expect_problem(ctx.admin.get(API + "/inspections/987654321" + p), 404, "not-found")
    for p in ("/start", "/submit"):
        expect_problem(ctx.admin.post(API + "/inspections/987654321" + p, json={}), 404, "not-found")


# ------------------------------------------------------------------ list filters

@test
def list_filters():
    t = mk_dept(name=ctx.uniq("筛选对象"))
    b = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("筛选批次")})
    expect_status(b, 201)
    word = ctx.uniq("独特标题")
    a = mk_inspection(t["id"], inspected_on="2026-01-10", title=word + "甲")
    bb = mk_inspection(t["id"], inspected_on="2026-02-10", batch_id=b.json["id"])
    c = mk_inspection(t["id"], inspected_on="2026-03-10")
    expect_status(start(c["id"]), 200)

    def ids(**f):
        return [x["id"] for x in ctx.admin.list_all(API + "/inspections?" + qs(**f))]
    T = t["id"]
    eq(ids(target_department_id=T), [c["id"], bb["id"], a["id"]], "by target, id descending")
    eq(ids(target_department_id=T, status="draft"), [bb["id"], a["id"]], "status=draft")
    eq(ids(target_department_id=T, status="in_progress"), [c["id"]], "status=in_progress")
    eq(ids(target_department_id=T, status="draft,in_progress"), [c["id"], bb["id"], a["id"]], "status list")
    eq(ids(target_department_id=T, status="submitted,closed"), [], "status=submitted,closed")
    eq(ids(batch_id=b.json["id"]), [bb["id"]], "batch_id")
    eq(ids(target_department_id=T, inspected_from="2026-02-01", inspected_to="2026-02-28"), [bb["id"]], "date range")
    eq(ids(target_department_id=T, inspected_from="2026-02-10", inspected_to="2026-02-10"), [bb["id"]], "inclusive range")
    eq(ids(target_department_id=T, inspected_from="2026-02-11"), [c["id"]], "from only")
    eq(ids(target_department_id=T, inspected_to="2026-02-09"), [a["id"]], "to only")
    eq(ids(q=word), [a["id"]], "q on the title")
    eq(ids(q=word[2:-2]), [a["id"]], "q substring")
    eq(ids(q=word, target_department_id=T, status="in_progress"), [], "filters combine")
    for bad in ({"status": "sleeping"}, {"status": "draft,"}, {"target_department_id": "abc"},
                {"inspected_from": "20260101"}, {"inspected_to": "2026-02-30"}, {"batch_id": "-1"}, {"q": ""}):
        r = ctx.admin.get(API + "/inspections?" + qs(**bad))
        expect_problem(r, 400, "invalid-query", pointers=["/query/" + list(bad)[0]])


# ------------------------------------------------------------------ patch / delete

@test
def patch_inspection():
    i = mk_inspection(inspectors=["甲"])
    t2 = mk_dept()
    b = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("批")}).json
    r = ctx.admin.patch(ipath(i["id"]), json={"title": "改后的标题" + ctx.prefix, "inspectors": ["乙", "丙"],
                                                "inspected_on": "2026-04-01", "target_department_id": t2["id"],
                                                "batch_id": b["id"]}, if_match='"1"', ctype="application/merge-patch+json")
    expect_status(r, 200)
    eq(r.etag, '"2"')
    eq((r.json["title"], r.json["inspectors"], r.json["inspected_on"], r.json["target_department"], r.json["batch"]),
       ("改后的标题" + ctx.prefix, ["乙", "丙"], "2026-04-01", {"id": t2["id"], "name": t2["name"]},
        {"id": b["id"], "name": b["name"]}))
    r = ctx.admin.patch(ipath(i["id"]), json={"batch_id": None}, if_match="*")
    expect_status(r, 200)
    eq((r.json["batch_id"], r.json["batch"]), (None, None))
    for body, ptr in (({"inspected_on": "2026-02-30"}, "/inspected_on"), ({"title": ""}, "/title"),
                      ({"target_department_id": 987654321}, "/target_department_id"),
                      ({"target_department_id": None}, "/target_department_id"),
                      ({"status": "closed"}, "/status"), ({"checklist_id": i["checklist_id"]}, "/checklist_id"),
                      ({"inspectors": None}, "/inspectors")):
        r = ctx.admin.patch(ipath(i["id"]), json=body, if_match="*")
        expect_problem(r, 400, "validation-failed", pointers=[ptr])
    expect_status(start(i["id"]), 200)
    r = ctx.admin.patch(ipath(i["id"]), json={"title": "进行中也可改" + ctx.prefix}, if_match="*")
    expect_status(r, 200, "patch while in_progress")


@test
def patch_batch_with_another_checklist_is_400():
    cl = own_checklist(n=1)
    b = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("他清单批次"), "checklist_id": cl["id"]}).json
    i = mk_inspection()
    r = ctx.admin.patch(ipath(i["id"]), json={"batch_id": b["id"]}, if_match="*")
    b2 = expect_problem(r, 400, "validation-failed")
    ptrs = [e["pointer"] for e in b2.get("errors", [])]
    check("/batch_id" in ptrs or "/checklist_id" in ptrs, "pointers %s" % ptrs)
    eq(get(i["id"])["batch_id"], None, "batch unchanged")


@test
def delete_draft_with_findings_cascades():
    i = mk_inspection()
    it = items_of(i["id"])[0]
    p = mk_problem(it["id"])
    x = mk_rect(p["id"], mk_dept()["id"], deadline=day(3))
    expect_status(ctx.admin.delete(ipath(i["id"]), if_match="*"), 204)
    for path in ("/items/%d" % it["id"], "/problems/%d" % p["id"], "/rectifications/%d" % x["id"]):
        expect_problem(ctx.admin.get(API + path), 404, "not-found")


@test
def delete_only_in_draft():
    i = mk_inspection()
    r = ctx.admin.delete(ipath(i["id"]), if_match='"1"')
    expect_status(r, 204)
    expect_problem(ctx.admin.get(ipath(i["id"])), 404, "not-found")
    expect_problem(ctx.admin.get(ipath(i["id"], "/items")), 404, "not-found")
    i = mk_inspection()
    expect_status(start(i["id"]), 200)
    r = ctx.admin.delete(ipath(i["id"]), if_match="*")
    b = expect_problem(r, 409, "invalid-transition")
    check(isinstance(b.get("allowed_transitions"), list), "allowed_transitions missing")
    check("start" not in b["allowed_transitions"], "allowed_transitions %r" % b["allowed_transitions"])
    expect_status(ctx.admin.get(ipath(i["id"])), 200, "still there")


# ------------------------------------------------------------------ transitions

@test
def start_and_submit_transitions():
    i = mk_inspection()
    r = submit(i["id"])
    b = expect_problem(r, 409, "invalid-transition")
    check("start" in b.get("allowed_transitions", []) and "submit" not in b["allowed_transitions"],
          "allowed_transitions from draft: %r" % b.get("allowed_transitions"))
    r = start(i["id"], if_match='"9"')
    expect_problem(r, 412, "precondition-failed")
    r = ctx.admin.post(ipath(i["id"], "/start"), body=b"", ctype=None)
    expect_status(r, 200, "start with an empty body")
    eq(r.json["status"], "in_progress")
    eq(r.etag, '"2"')
    eq(sorted(r.json), INSP_KEYS)
    r = start(i["id"])
    b = expect_problem(r, 409, "invalid-transition")
    eq(b.get("allowed_transitions"), ["submit"], "allowed_transitions while in_progress")
    eq(get(i["id"])["status"], "in_progress")
    r = submit(i["id"], if_match='"2"')
    expect_status(r, 200)
    eq(r.json["status"], "closed", "submit without rectifications closes at once")
    check(r.json["submitted_at"] and UTC_DATETIME_RE.match(r.json["submitted_at"]), "submitted_at %r" % r.json["submitted_at"])
    check(r.json["closed_at"] and UTC_DATETIME_RE.match(r.json["closed_at"]), "closed_at %r" % r.json["closed_at"])
    for action in (start, submit):
        b = expect_problem(action(i["id"]), 409, "invalid-transition")
        check(isinstance(b.get("allowed_transitions"), list), "allowed_transitions missing")
        check(not {"start", "submit"} & set(b["allowed_transitions"]), "allowed_transitions %r" % b["allowed_transitions"])
    r = ctx.admin.post(ipath(i["id"], "/start"), json={"bogus": 1})
    check(r.status in (400, 409), "start with an unknown field on a closed inspection: %d" % r.status)


@test
def submit_refused_while_a_deadline_is_missing():
    i = mk_inspection()
    expect_status(start(i["id"]), 200)
    items = items_of(i["id"])
    resp = mk_dept()
    p1 = mk_problem(items[0]["id"])
    r1 = mk_rect(p1["id"], resp["id"])
    r2 = mk_rect(p1["id"], resp["id"], deadline=None)
    p2 = mk_problem(items[5]["id"])
    r3 = mk_rect(p2["id"], resp["id"], deadline=day(5))
    eq((r1["deadline"], r2["deadline"], r3["deadline"]), (None, None, day(5)))
    r = submit(i["id"])
    b = expect_problem(r, 409, "conflict")
    ptrs = sorted(e["pointer"] for e in b.get("errors", []))
    eq(ptrs, sorted(["/rectifications/%d/deadline" % r1["id"], "/rectifications/%d/deadline" % r2["id"]]),
       "one error per missing deadline")
    g = get(i["id"])
    eq((g["status"], g["submitted_at"]), ("in_progress", None), "still in progress")
    for x in (r1, r2):
        rr = ctx.admin.patch(API + "/rectifications/%d" % x["id"], json={"deadline": day(30)}, if_match="*")
        expect_status(rr, 200)
    r = submit(i["id"])
    expect_status(r, 200)
    eq(r.json["status"], "submitted", "submitted (it has open rectifications)")
    eq(r.json["closed_at"], None)
    eq(r.json["counts"]["problems"], 2)
    eq(r.json["counts"]["rectifications"], 3)
    _frozen_checks(i["id"], items, p1, r1, resp)


def _frozen_checks(iid, items, prob, rect, resp):
    item = API + "/items/%d" % items[0]["id"]
    cases = [ctx.admin.patch(item, json={"completion": "completed"}, if_match="*"),
             ctx.admin.post(item + "/problems", json={"description": "晚到的问题"}),
             ctx.admin.patch(ipath(iid), json={"title": "冻结后改标题"}, if_match="*"),
             ctx.admin.patch(ipath(iid), json={"inspectors": []}, if_match="*")]
    if prob:
        cases += [ctx.admin.patch(API + "/problems/%d" % prob["id"], json={"description": "改"}, if_match="*"),
                  ctx.admin.delete(API + "/problems/%d" % prob["id"], if_match="*"),
                  ctx.admin.post(API + "/problems/%d/rectifications" % prob["id"],
                                 json={"measure": "晚到的措施", "responsible_department_id": resp["id"], "deadline": day(9)})]
    if rect:
        cases += [ctx.admin.patch(API + "/rectifications/%d" % rect["id"], json={"measure": "改"}, if_match="*"),
                  ctx.admin.delete(API + "/rectifications/%d" % rect["id"], if_match="*")]
    for r in cases:
        expect_problem(r, 409, "frozen")
    b = expect_problem(ctx.admin.delete(ipath(iid), if_match="*"), 409, "invalid-transition")
    check(isinstance(b.get("allowed_transitions"), list), "allowed_transitions missing on delete")
    after = items_of(iid)
    eq(after[0]["completion"], items[0]["completion"], "frozen item unchanged")
    if prob:
        eq(ctx.admin.get(API + "/problems/%d" % prob["id"]).json["description"], prob["description"])


@test
def closed_inspection_is_frozen():
    i = mk_inspection()
    items = items_of(i["id"])
    expect_status(start(i["id"]), 200)
    r = ctx.admin.patch(API + "/items/%d" % items[0]["id"], json={"completion": "completed"}, if_match="*")
    expect_status(r, 200)
    items = items_of(i["id"])
    r = submit(i["id"])
    expect_status(r, 200)
    eq(r.json["status"], "closed")
    eq(r.json["counts"]["completed"], 1)
    _frozen_checks(i["id"], items, None, None, None)


@test
def draft_problems_are_allowed():
    # problems and rows may be filled in while the inspection is still a draft
    i = mk_inspection()
    it = items_of(i["id"])[3]
    p = mk_problem(it["id"])
    eq(p["inspection_id"], i["id"])
    eq(p["item_id"], it["id"])
    eq(get(i["id"])["counts"]["problems"], 1)


# ------------------------------------------------------------------ batches

@test
def batches_basics():
    name = ctx.uniq("2026年第一批")
    r = ctx.admin.post(API + "/batches", json={"name": name})
    expect_status(r, 201)
    b = r.json
    eq(sorted(b), BATCH_KEYS, "batch keys")
    nd = newest_default()
    eq((b["name"], b["checklist_id"], b["checklist"]), (name, nd["id"], {"id": nd["id"], "name": nd["title"]}))
    eq(r.h("Location"), API + "/batches/%d" % b["id"])
    eq(r.etag, '"1"')
    g = ctx.admin.get(API + "/batches/%d" % b["id"])
    eq(g.json, b)
    b2 = ctx.admin.post(API + "/batches", json={"name": name + "补充"}).json
    eq([x["id"] for x in ctx.admin.list_all(API + "/batches?" + qs(q=name))], [b2["id"], b["id"]], "q, id descending")
    r = ctx.admin.patch(API + "/batches/%d" % b["id"], json={"name": name + "（改）"}, if_match='"1"')
    expect_status(r, 200)
    eq((r.json["name"], r.etag), (name + "（改）", '"2"'))
    r = ctx.admin.patch(API + "/batches/%d" % b["id"], json={"checklist_id": nd["id"]}, if_match="*")
    expect_problem(r, 400, "validation-failed", pointers=["/checklist_id"])
    for body, ptr in (({"name": ""}, "/name"), ({"name": "批" * 101}, "/name"), ({}, "/name"),
                      ({"name": "x", "checklist_id": 987654321}, "/checklist_id"), ({"name": "a\nb"}, "/name")):
        expect_problem(ctx.admin.post(API + "/batches", json=body), 400, "validation-failed", pointers=[ptr])
    expect_status(ctx.admin.post(API + "/batches", json={"name": ctx.uniq("批") + "批" * 80}), 201)
    all_ids = [x["id"] for x in ctx.admin.list_all(API + "/batches")]
    eq(all_ids, sorted(all_ids, reverse=True), "batches ordered by id descending")


@test
def batch_decides_the_checklist():
    cl = own_checklist(n=2)
    b = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("专项批次"), "checklist_id": cl["id"]}).json
    eq(b["checklist"], {"id": cl["id"], "name": cl["title"]})
    i = mk_inspection(batch_id=b["id"])
    eq((i["checklist_id"], i["batch_id"], i["batch"]), (cl["id"], b["id"], {"id": b["id"], "name": b["name"]}))
    eq(i["counts"]["items"], 2)
    eq(len(items_of(i["id"])), 2)
    i2 = mk_inspection(batch_id=b["id"], checklist_id=cl["id"])
    eq(i2["checklist_id"], cl["id"], "both given and agreeing")
    r = ctx.admin.post(API + "/inspections", json={"target_department_id": mk_dept()["id"], "inspected_on": "2026-05-01",
                                                    "title": ctx.uniq("不一致"), "batch_id": b["id"],
                                                    "checklist_id": seed_checklist()["id"]})
    expect_problem(r, 400, "validation-failed", pointers=["/checklist_id"])
    i3 = mk_inspection(checklist_id=cl["id"])
    eq(i3["counts"]["items"], 2, "explicit checklist without a batch")


@test
def batch_delete_rules():
    b = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("删批次")}).json
    i = mk_inspection(batch_id=b["id"])
    r = ctx.admin.delete(API + "/batches/%d" % b["id"], if_match="*")
    expect_problem(r, 409, slugs=["still-referenced", "conflict"])
    expect_status(ctx.admin.delete(ipath(i["id"]), if_match="*"), 204)
    r = ctx.admin.delete(API + "/batches/%d" % b["id"], if_match='"1"')
    expect_status(r, 204)
    expect_problem(ctx.admin.get(API + "/batches/%d" % b["id"]), 404, "not-found")


if __name__ == "__main__":
    main()
