#!/usr/bin/python3
"""Checklists: the seed form, versions, tasks, immutability once used."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, check, ctx, eq, expect_problem, expect_status, main,  # noqa: E402
                     mk_dept, mk_inspection, qs, seed_checklist, seed_data, seed_dept_id, test, db_int, sql_str)

CL_KEYS = ["code", "created_at", "id", "in_use", "task_count", "title", "version"]
TASK_KEYS = ["carries_over_seq", "checklist_id", "content", "id", "material_department_ids", "material_departments",
             "seq", "source_truncated"]


def code():
    """A checklist code of our own: never create versions of `default` (other files rely on it)."""
    return ("t" + ctx.prefix + "-" + str(ctx.uniq("c").rsplit("-", 1)[1])).lower()


def mk_checklist(code_, n=3, title=None):
    tasks = [{"content": "任务%d：%s" % (i + 1, ctx.uniq("内容")), "material_department_ids": []} for i in range(n)]
    r = ctx.admin.post(API + "/checklists", json={"code": code_, "title": title or ctx.uniq("清单"), "tasks": tasks})
    expect_status(r, 201, "create checklist")
    return r, tasks


@test
def seed_checklist_is_version_1_of_default():
    cl = seed_checklist()
    eq(sorted(cl), CL_KEYS, "checklist keys")
    eq((cl["code"], cl["version"], cl["title"], cl["task_count"]), ("default", 1, "全面推进政务公开工作督察表", 38))
    r = ctx.admin.get(API + "/checklists/%d" % cl["id"])
    expect_status(r, 200)
    eq(r.json, cl, "GET equals the list entry")
    check(r.etag and r.etag.startswith('"'), "ETag %r" % r.etag)
    check(UTC_DATETIME_RE.match(cl["created_at"]), "created_at %r" % cl["created_at"])


@test
def seed_tasks_match_the_form():
    cl = seed_checklist()
    seed = seed_data()["tasks"]
    tasks = ctx.admin.list_all(API + "/checklists/%d/tasks" % cl["id"])
    eq(len(tasks), 38, "task count")
    eq([t["seq"] for t in tasks], list(range(1, 39)), "seq 1..38 in order")
    for t, s in zip(tasks, seed):
        eq(sorted(t), TASK_KEYS, "task keys")
        eq(t["checklist_id"], cl["id"])
        eq(t["content"], s["content"], "content of task %d" % s["seq"])
        eq([d["name"] for d in t["material_departments"]], s["material_departments"],
           "material departments of task %d" % s["seq"])
        eq([d["id"] for d in t["material_departments"]], t["material_department_ids"], "ids and refs agree")
        eq(t["source_truncated"], bool(s.get("source_truncated")), "source_truncated of task %d" % s["seq"])
        for d in t["material_departments"]:
            eq(sorted(d), ["id", "name"], "ref keys")
    eq([d["name"] for d in tasks[0]["material_departments"]], ["市法制办", "市政府办公室"], "task 1 in order")
    eq(tasks[0]["material_department_ids"], [seed_dept_id("市法制办"), seed_dept_id("市政府办公室")])
    eq(tasks[37]["source_truncated"], True, "task 38 truncated")
    check(tasks[37]["content"].endswith("进一……"), "task 38 ends with 进一……")


@test
def seed_tasks_page_in_seq_order():
    cl = seed_checklist()
    seqs, cursor, pages = [], None, 0
    while True:
        url = API + "/checklists/%d/tasks?limit=10" % cl["id"] + ("&" + qs(cursor=cursor) if cursor else "")
        r = ctx.admin.get(url)
        expect_status(r, 200)
        seqs += [t["seq"] for t in r.json["data"]]
        pages += 1
        cursor = r.json["next_cursor"]
        if not cursor:
            break
        check(pages < 10, "too many pages")
    eq(seqs, list(range(1, 39)))
    eq(pages, 4)
    r = ctx.admin.get(API + "/checklists/%d/tasks?include_total=true&limit=1" % cl["id"])
    eq(r.json.get("total"), 38)


@test
def create_checklist_and_versions():
    c = code()
    d1, d2 = mk_dept(), mk_dept()
    title = ctx.uniq("二〇二六年督察清单")
    tasks = [{"content": "第一项：公开“三重一大”决策", "material_department_ids": [d2["id"], d1["id"]]},
             {"content": "第二项\n多行内容", "material_department_ids": []},
             {"content": "第三项", "material_department_ids": [d1["id"]]}]
    r = ctx.admin.post(API + "/checklists", json={"code": c, "title": title, "tasks": tasks})
    expect_status(r, 201)
    b = r.json
    eq(sorted(b), CL_KEYS)
    eq((b["code"], b["version"], b["title"], b["task_count"], b["in_use"]), (c, 1, title, 3, False))
    eq(r.h("Location"), API + "/checklists/%d" % b["id"])
    eq(r.etag, '"1"')
    got = ctx.admin.list_all(API + "/checklists/%d/tasks" % b["id"])
    eq([t["seq"] for t in got], [1, 2, 3])
    eq([t["content"] for t in got], [t["content"] for t in tasks], "contents in the given order")
    eq([t["material_department_ids"] for t in got], [t["material_department_ids"] for t in tasks], "ids kept in order")
    eq(got[0]["material_departments"], [{"id": d2["id"], "name": d2["name"]}, {"id": d1["id"], "name": d1["name"]}])
    eq([t["source_truncated"] for t in got], [False] * 3)
    # next version
    r2 = ctx.admin.post(API + "/checklists", json={"code": c, "title": title + "（修订）", "tasks": tasks[:1]})
    expect_status(r2, 201)
    eq((r2.json["version"], r2.json["task_count"]), (2, 1))
    r3, _ = mk_checklist(c, n=2)
    eq(r3.json["version"], 3)
    listed = ctx.admin.list_all(API + "/checklists?" + qs(code=c))
    eq([x["id"] for x in listed], [b["id"], r2.json["id"], r3.json["id"]], "list by code, id ascending")
    eq([x["version"] for x in listed], [1, 2, 3])
    # the first version is untouched
    eq(ctx.admin.get(API + "/checklists/%d" % b["id"]).json["task_count"], 3)


@test
def default_version_is_unchanged_by_other_codes():
    cl = seed_checklist()
    mk_checklist(code(), n=1)
    versions = [x for x in ctx.admin.list_all(API + "/checklists?code=default")]
    check(any(x["id"] == cl["id"] for x in versions), "seed checklist missing")


@test
def create_checklist_validation():
    c = code()
    d = mk_dept()
    good_task = {"content": "x", "material_department_ids": []}
    cases = [({"code": "UPPER", "title": "t", "tasks": [good_task]}, "/code"),
             ({"code": "a" * 51, "title": "t", "tasks": [good_task]}, "/code"),
             ({"code": "", "title": "t", "tasks": [good_task]}, "/code"),
             ({"code": "有中文", "title": "t", "tasks": [good_task]}, "/code"),
             ({"code": c, "tasks": [good_task]}, "/title"),
             ({"code": c, "title": "", "tasks": [good_task]}, "/title"),
             ({"code": c, "title": "督" * 201, "tasks": [good_task]}, "/title"),
             ({"code": c, "title": "t"}, "/tasks"),
             ({"code": c, "title": "t", "tasks": []}, "/tasks"),
             ({"code": c, "title": "t", "tasks": [good_task] * 201}, "/tasks"),
             ({"code": c, "title": "t", "tasks": [{}]}, "/tasks/0/content"),
             ({"code": c, "title": "t", "tasks": [good_task, {"content": ""}]}, "/tasks/1/content"),
             ({"code": c, "title": "t", "tasks": [{"content": "督" * 2001}]}, "/tasks/0/content"),
             ({"code": c, "title": "t", "tasks": [{"content": "x", "material_department_ids": [d["id"], d["id"]]}]},
              "/tasks/0/material_department_ids"),
             ({"code": c, "title": "t", "tasks": [{"content": "x", "material_department_ids": [987654321]}]},
              "/tasks/0/material_department_ids"),
             ({"code": c, "title": "t", "tasks": [{"content": "x", "material_department_ids": list(range(1, 52))}]},
              "/tasks/0/material_department_ids"),
             ({"code": c, "title": "t", "tasks": [{"content": "x", "bogus": 1}]}, "/tasks/0/bogus"),
             ({"code": c, "title": "t", "tasks": [good_task], "version": 7}, "/version"),
             ({"code": c, "title": "t", "tasks": "x"}, "/tasks")]
    for body, ptr in cases:
        r = ctx.admin.post(API + "/checklists", json=body)
        b = expect_problem(r, 400, "validation-failed")
        got = [e["pointer"] for e in b.get("errors", [])]
        check(any(g == ptr or g.startswith(ptr + "/") for g in got), "case %s: pointers %s lack %s" % (
            str(body)[:80], got, ptr))
    eq(db_int("select count(*) from checklists where code = %s" % sql_str(c)), 0, "checklists written")
    r = ctx.admin.post(API + "/checklists", json={"code": c, "title": "督" * 200,
                                                   "tasks": [{"content": "督" * 2000}] + [{"content": "x"}] * 199})
    expect_status(r, 201, "maximal checklist")
    eq(r.json["task_count"], 200)


@test
def patch_title_when_unused():
    r, _ = mk_checklist(code())
    b = r.json
    new = ctx.uniq("新标题")
    p = ctx.admin.patch(API + "/checklists/%d" % b["id"], json={"title": new}, if_match=r.etag)
    expect_status(p, 200)
    eq(p.json["title"], new)
    eq(p.etag, '"2"')
    eq(p.json["version"], b["version"], "the version number is not the ETag")
    for extra in ({"code": "other"}, {"tasks": []}, {"version": 9}):
        p = ctx.admin.patch(API + "/checklists/%d" % b["id"], json=extra, if_match="*")
        expect_problem(p, 400, "validation-failed", pointers=["/" + list(extra)[0]])


@test
def used_checklist_is_immutable():
    r, tasks = mk_checklist(code(), n=4)
    cl = r.json
    insp = mk_inspection(checklist_id=cl["id"])
    eq(insp["checklist_id"], cl["id"])
    eq(insp["counts"]["items"], 4, "one item per task of our checklist")
    g = ctx.admin.get(API + "/checklists/%d" % cl["id"])
    eq(g.json["in_use"], True, "in_use after an inspection uses it")
    p = ctx.admin.patch(API + "/checklists/%d" % cl["id"], json={"title": "改"}, if_match="*")
    expect_problem(p, 409, "conflict")
    d = ctx.admin.delete(API + "/checklists/%d" % cl["id"], if_match="*")
    expect_problem(d, 409, slugs=["conflict", "still-referenced"])
    eq(ctx.admin.get(API + "/checklists/%d" % cl["id"]).json["title"], cl["title"], "title unchanged")
    eq(len(ctx.admin.list_all(API + "/checklists/%d/tasks" % cl["id"])), 4, "tasks still listed")
    # the seed checklist is in use as soon as any inspection uses it
    mk_inspection()
    eq(ctx.admin.get(API + "/checklists/%d" % seed_checklist()["id"]).json["in_use"], True)


@test
def checklist_used_by_batch_is_in_use():
    r, _ = mk_checklist(code(), n=1)
    cl = r.json
    b = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("批次"), "checklist_id": cl["id"]})
    expect_status(b, 201)
    eq(b.json["checklist"], {"id": cl["id"], "name": cl["title"]})
    eq(ctx.admin.get(API + "/checklists/%d" % cl["id"]).json["in_use"], True)
    expect_problem(ctx.admin.patch(API + "/checklists/%d" % cl["id"], json={"title": "x"}, if_match="*"), 409, "conflict")


@test
def delete_unused_checklist():
    r, _ = mk_checklist(code())
    cl = r.json
    d = ctx.admin.delete(API + "/checklists/%d" % cl["id"], if_match='"1"')
    expect_status(d, 204)
    expect_problem(ctx.admin.get(API + "/checklists/%d" % cl["id"]), 404, "not-found")
    expect_problem(ctx.admin.get(API + "/checklists/%d/tasks" % cl["id"]), 404, "not-found")


@test
def tasks_of_unknown_checklist_is_404():
    expect_problem(ctx.admin.get(API + "/checklists/987654321/tasks"), 404, "not-found")
    expect_problem(ctx.admin.get(API + "/checklists/987654321"), 404, "not-found")


@test
def list_filter_code():
    r = ctx.admin.get(API + "/checklists?" + qs(code="no-such-code-" + ctx.prefix))
    expect_status(r, 200)
    eq(r.json["data"], [])
    r = ctx.admin.get(API + "/checklists?" + qs(code="BAD CODE"))
    check(r.status in (200, 400), "code=BAD CODE -> %d" % r.status)
    all_ = ctx.admin.list_all(API + "/checklists")
    ids = [x["id"] for x in all_]
    eq(ids, sorted(ids), "id ascending")
    eq(len(ids), len(set(ids)))


if __name__ == "__main__":
    main()
