#!/usr/bin/python3
"""Departments: the seed, CRUD, filters, hierarchy, cycles, references."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, check, ctx, eq, expect_problem, expect_status, main,  # noqa: E402
                     make_user, mk_dept, mk_inspection, mk_problem, mk_rect, items_of, qs, seed_data,
                     seed_dept_id, test, day, run_cli)

KEYS = ["created_at", "id", "kind", "merged_at", "merged_into", "merged_into_id", "name", "parent", "parent_id", "updated_at"]


def path(did):
    return API + "/departments/%d" % did


def find(q, **filters):
    return ctx.admin.list_all(API + "/departments?" + qs(q=q, **filters))


@test
def seed_has_22_departments_2_groups():
    seed = seed_data()["departments"]
    eq(len(seed), 22)
    everything = ctx.admin.list_all(API + "/departments")
    by_name = {}
    for d in everything:
        if d["parent_id"] is None:
            by_name.setdefault(d["name"], []).append(d)
    for s in seed:
        got = by_name.get(s["name"], [])
        eq(len(got), 1, "root departments named %s" % s["name"])
        eq(got[0]["kind"], s.get("kind", "department"), "kind of %s" % s["name"])
    seed_ids = [by_name[s["name"]][0]["id"] for s in seed]
    eq(seed_ids, sorted(seed_ids), "seed departments are inserted in order of first appearance")
    groups = [d for d in ctx.admin.list_all(API + "/departments?kind=group") if d["name"] in {s["name"] for s in seed}]
    eq(sorted(d["name"] for d in groups), sorted(["市直重点领域信息公开牵头单位", "市直有关部门"]), "seed groups")
    for d in ctx.admin.list_all(API + "/departments?kind=group"):
        eq(d["kind"], "group", "kind filter")


@test
def create_and_get():
    name = ctx.uniq("市教育局")
    r = ctx.admin.post(API + "/departments", json={"name": name})
    expect_status(r, 201)
    b = r.json
    eq(sorted(b), KEYS, "department keys")
    eq(r.h("Location"), path(b["id"]), "Location")
    eq(r.etag, '"1"', "ETag")
    eq((b["name"], b["kind"], b["parent_id"], b["parent"]), (name, "department", None, None))
    check(isinstance(b["id"], int) and b["id"] > 0, "id %r" % b["id"])
    check(UTC_DATETIME_RE.match(b["created_at"]), "created_at %r is not RFC 3339 UTC" % b["created_at"])
    check(UTC_DATETIME_RE.match(b["updated_at"]), "updated_at %r is not RFC 3339 UTC" % b["updated_at"])
    g = ctx.admin.get(path(b["id"]))
    expect_status(g, 200)
    eq(g.json, b, "GET equals the create response")
    eq(g.etag, '"1"')
    g2 = ctx.admin.get(API + "/departments?" + qs(q=name))
    eq(g2.json["data"], [b], "list item equals the resource")


@test
def create_group_with_parent():
    parent = mk_dept(name=ctx.uniq("市直属机关"))
    r = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("办公室"), "kind": "group",
                                                    "parent_id": parent["id"]})
    expect_status(r, 201)
    eq(r.json["kind"], "group")
    eq(r.json["parent_id"], parent["id"])
    eq(r.json["parent"], {"id": parent["id"], "name": parent["name"]}, "parent ref")
    r = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("x"), "parent_id": None})
    expect_status(r, 201, "explicit null parent")
    eq(r.json["parent"], None)


@test
def q_filter_with_chinese():
    mark = ctx.uniq("查询")
    a = mk_dept(name=mark + "市教育局")
    b = mk_dept(name=mark + "市卫生健康委员会")
    c = mk_dept(name=mark + "市教育局督导室")
    eq([d["id"] for d in find(mark + "市教")], [a["id"], c["id"]], "q=市教 prefix")
    eq([d["id"] for d in find(mark)], [a["id"], b["id"], c["id"]], "q=mark")
    check(c["id"] in [d["id"] for d in find("育局督导")], "middle substring")
    eq(find(mark + "不存在"), [], "no match")
    # raw UTF-8 in the query string, not percent-encoded, is not required; percent-encoded is
    r = ctx.admin.get(API + "/departments?q=" + "%E6%9F%A5%E8%AF%A2")
    expect_status(r, 200)


@test
def q_filter_is_literal():
    mark = ctx.uniq("lit")
    a = mk_dept(name=mark + "a_b")
    mk_dept(name=mark + "axb")
    c = mk_dept(name=mark + "100%达标")
    mk_dept(name=mark + "100x达标")
    eq([d["id"] for d in find(mark + "a_b")], [a["id"]], "underscore is literal")
    eq([d["id"] for d in find(mark + "100%")], [c["id"]], "percent is literal")
    d = mk_dept(name=mark + "back\\slash")
    eq([x["id"] for x in find(mark + "back\\")], [d["id"]], "backslash is literal")
    eq(find(mark + "'; drop table departments; --"), [], "quote")


@test
def q_filter_bounds():
    r = ctx.admin.get(API + "/departments?q=")
    expect_problem(r, 400, "invalid-query", pointers=["/query/q"])
    r = ctx.admin.get(API + "/departments?" + qs(q="督" * 101))
    expect_problem(r, 400, "invalid-query", pointers=["/query/q"])
    r = ctx.admin.get(API + "/departments?" + qs(q="督" * 100))
    expect_status(r, 200, "q of 100 characters")


@test
def parent_and_kind_filters():
    p = mk_dept(name=ctx.uniq("父"))
    kids = [mk_dept(name=ctx.uniq("子"), parent_id=p["id"]) for _ in range(3)]
    g = mk_dept(name=ctx.uniq("子组"), parent_id=p["id"], kind="group")
    mk_dept(name=ctx.uniq("孙"), parent_id=kids[0]["id"])
    got = ctx.admin.list_all(API + "/departments?parent_id=%d" % p["id"])
    eq([d["id"] for d in got], [k["id"] for k in kids] + [g["id"]], "children of the parent, id order")
    for d in got:
        eq(d["parent"], {"id": p["id"], "name": p["name"]})
    got = ctx.admin.list_all(API + "/departments?parent_id=%d&kind=group" % p["id"])
    eq([d["id"] for d in got], [g["id"]], "kind=group under the parent")
    got = ctx.admin.list_all(API + "/departments?parent_id=%d&kind=department" % p["id"])
    eq([d["id"] for d in got], [k["id"] for k in kids])
    r = ctx.admin.get(API + "/departments?parent_id=987654321")
    expect_status(r, 200)
    eq(r.json["data"], [], "unknown parent_id filter")


@test
def rename_keeps_the_id():
    p = mk_dept(name=ctx.uniq("旧名"))
    child = mk_dept(name=ctx.uniq("下属"), parent_id=p["id"])
    new = ctx.uniq("新名")
    r = ctx.admin.patch(path(p["id"]), json={"name": new}, if_match='"1"')
    expect_status(r, 200)
    eq(r.json["id"], p["id"])
    eq(r.json["name"], new)
    eq(r.json["created_at"], p["created_at"], "created_at unchanged")
    check(r.json["updated_at"] >= p["updated_at"], "updated_at moved back")
    eq(r.etag, '"2"')
    eq(ctx.admin.get(path(p["id"])).json["name"], new)
    eq(ctx.admin.get(path(child["id"])).json["parent"], {"id": p["id"], "name": new}, "child's parent ref shows the new name")
    eq(find(new)[0]["id"], p["id"])


@test
def patch_parent_and_kind():
    a = mk_dept(name=ctx.uniq("甲"))
    b = mk_dept(name=ctx.uniq("乙"))
    r = ctx.admin.patch(path(b["id"]), json={"parent_id": a["id"], "kind": "group"}, if_match="*")
    expect_status(r, 200)
    eq((r.json["parent_id"], r.json["kind"]), (a["id"], "group"))
    eq(r.json["name"], b["name"], "name untouched by a merge patch without it")
    r = ctx.admin.patch(path(b["id"]), json={"parent_id": None}, if_match="*")
    expect_status(r, 200)
    eq((r.json["parent_id"], r.json["parent"]), (None, None))
    r = ctx.admin.patch(path(b["id"]), json={}, if_match="*")
    expect_status(r, 200, "empty merge patch")


@test
def cycles_are_refused():
    a = mk_dept(name=ctx.uniq("环A"))
    b = mk_dept(name=ctx.uniq("环B"), parent_id=a["id"])
    c = mk_dept(name=ctx.uniq("环C"), parent_id=b["id"])
    for target, parent in ((a, c), (a, b), (a, a), (b, c)):
        r = ctx.admin.patch(path(target["id"]), json={"parent_id": parent["id"]}, if_match="*")
        expect_problem(r, 400, "validation-failed", pointers=["/parent_id"])
    eq(ctx.admin.get(path(a["id"])).json["parent_id"], None, "a unchanged")
    eq(ctx.admin.get(path(a["id"])).etag, '"1"', "a's version unchanged")
    r = ctx.admin.patch(path(c["id"]), json={"parent_id": a["id"]}, if_match="*")
    expect_status(r, 200, "moving c under its grandparent is fine")


@test
def unknown_parent_on_patch():
    a = mk_dept()
    for bad in (987654321, 2 ** 53 - 1):
        r = ctx.admin.patch(path(a["id"]), json={"parent_id": bad}, if_match="*")
        expect_problem(r, 400, "validation-failed", pointers=["/parent_id"])


@test
def duplicate_name_under_same_parent_is_409():
    p = mk_dept(name=ctx.uniq("同名父"))
    name = ctx.uniq("同名")
    mk_dept(name=name, parent_id=p["id"])
    r = ctx.admin.post(API + "/departments", json={"name": name, "parent_id": p["id"]})
    expect_problem(r, 409, "conflict")
    r = ctx.admin.post(API + "/departments", json={"name": name})
    expect_status(r, 201, "the same name under another parent (root)")
    r = ctx.admin.post(API + "/departments", json={"name": name})
    expect_problem(r, 409, "conflict")
    other = mk_dept(parent_id=p["id"])
    r = ctx.admin.patch(path(other["id"]), json={"name": name}, if_match="*")
    expect_problem(r, 409, "conflict")


@test
def duplicate_seed_name_at_root_is_409():
    r = ctx.admin.post(API + "/departments", json={"name": "市财政局"})
    expect_problem(r, 409, "conflict")


@test
def delete():
    d = mk_dept()
    r = ctx.admin.delete(path(d["id"]), if_match='"1"')
    expect_status(r, 204)
    eq(r.body, b"")
    expect_problem(ctx.admin.get(path(d["id"])), 404, "not-found")
    expect_problem(ctx.admin.patch(path(d["id"]), json={"name": "x"}, if_match="*"), 404, "not-found")
    expect_problem(ctx.admin.delete(path(d["id"]), if_match="*"), 404, "not-found")


@test
def delete_with_sub_unit_is_409():
    p = mk_dept()
    c = mk_dept(parent_id=p["id"])
    r = ctx.admin.delete(path(p["id"]), if_match="*")
    expect_problem(r, 409, "still-referenced")
    expect_status(ctx.admin.get(path(p["id"])), 200, "still there")
    expect_status(ctx.admin.delete(path(c["id"]), if_match="*"), 204)
    expect_status(ctx.admin.delete(path(p["id"]), if_match="*"), 204)


@test
def delete_seed_department_used_by_tasks_is_409():
    r = ctx.admin.delete(path(seed_dept_id("市法制办")), if_match="*")
    expect_problem(r, 409, "still-referenced")


@test
def delete_inspected_department_is_409():
    t = mk_dept()
    insp = mk_inspection(target_id=t["id"])
    r = ctx.admin.delete(path(t["id"]), if_match="*")
    expect_problem(r, 409, "still-referenced")
    expect_status(ctx.admin.delete(API + "/inspections/%d" % insp["id"], if_match="*"), 204)
    expect_status(ctx.admin.delete(path(t["id"]), if_match="*"), 204, "deletable once the inspection is gone")


@test
def delete_item_material_department_is_409():
    m = mk_dept()
    insp = mk_inspection()
    item = items_of(insp["id"])[0]
    r = ctx.admin.patch(API + "/items/%d" % item["id"], json={"material_department_ids": [m["id"]]}, if_match="*")
    expect_status(r, 200)
    r = ctx.admin.delete(path(m["id"]), if_match="*")
    expect_problem(r, 409, "still-referenced")


@test
def delete_responsible_department_is_409():
    resp = mk_dept()
    insp = mk_inspection()
    item = items_of(insp["id"])[0]
    prob = mk_problem(item["id"])
    mk_rect(prob["id"], resp["id"], deadline=day(10))
    r = ctx.admin.delete(path(resp["id"]), if_match="*")
    expect_problem(r, 409, "still-referenced")


@test
def delete_department_with_user_is_409():
    d = mk_dept()
    make_user("department", department_id=d["id"])
    r = ctx.admin.delete(path(d["id"]), if_match="*")
    expect_problem(r, 409, "still-referenced")


@test
def user_with_unknown_department_is_refused():
    p = run_cli(["user", "create", "--username", "t_%s_nodept" % ctx.prefix, "--role", "department",
                 "--department-id", "987654321", "--password-stdin"], stdin="pw-secret-1")
    check(p.returncode != 0, "user create with an unknown department exited 0")


if __name__ == "__main__":
    main()
