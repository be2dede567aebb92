#!/usr/bin/python3
"""The ledger (整改台账), GET /api/v1/rectifications: every filter, Chinese search of 1, 2 and
more characters, the sorts, cursor paging, totals, and what a department user sees."""

import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, check, ctx, day, eq, expect_problem, expect_status, items_of, main, mk_dept,  # noqa: E402
                     mk_inspection, mk_problem, mk_rect, test)
from lifecycle_helpers import (RECT_KEYS, act_ok, add_evidence, dept_user, inspector, set_deadline_sql,  # noqa: E402
                               viewer)

LEDGER = API + "/rectifications"


def ref(d):
    return {"id": d["id"], "name": d["name"]}


class Data:
    """Eight rectifications on units of this file:
    I1 (target T1, batch B1): P1 on item seq 1 -> r1 (R), r2 (R1); P2 on item seq 5 -> r3 (R2), r4 (R)
    I2 (target T2):           P3 on item seq 1 -> r5 (R1), r6 (X), r7 (R)
    I3 (target T2, in progress, not submitted): P4 -> r8 (R, no deadline)
    R1 and R2 are sub-units of R; X is unrelated."""

    def __init__(self):
        a = ctx.admin
        self.R = mk_dept(name=ctx.uniq("台账责任单位"))
        self.R1 = mk_dept(name=ctx.uniq("内设科室甲"), parent_id=self.R["id"])
        self.R2 = mk_dept(name=ctx.uniq("内设科室乙"), parent_id=self.R["id"])
        self.X = mk_dept(name=ctx.uniq("无关单位"))
        self.T1 = mk_dept(name=ctx.uniq("督察对象一"))
        self.T2 = mk_dept(name=ctx.uniq("督察对象二"))
        r = a.post(API + "/batches", json={"name": ctx.uniq("2026年第一批")})
        expect_status(r, 201)
        self.B1 = r.json
        self.I1 = mk_inspection(self.T1["id"], batch_id=self.B1["id"])
        self.I2 = mk_inspection(self.T2["id"])
        self.I3 = mk_inspection(self.T2["id"])
        for i in (self.I1, self.I2, self.I3):
            expect_status(a.post(API + "/inspections/%d/start" % i["id"], json={}), 200)
        it1, it2, it3 = items_of(self.I1["id"]), items_of(self.I2["id"]), items_of(self.I3["id"])
        self.item_seq1, self.item_seq5 = it1[0], it1[4]
        self.P1 = mk_problem(it1[0]["id"], "政务公开目录未及时更新")
        self.P2 = mk_problem(it1[4]["id"], "政策解读形式单一")
        self.P3 = mk_problem(it2[0]["id"], "重大决策预公开不到位")
        self.P4 = mk_problem(it3[0]["id"], "公开栏信息陈旧")
        r = {}
        r[1] = mk_rect(self.P1["id"], self.R["id"], "建立公开目录动态更新机制", deadline=day(10))
        r[2] = mk_rect(self.P1["id"], self.R1["id"], "补充解读材料并同步发布", deadline=day(20))
        r[3] = mk_rect(self.P2["id"], self.R2["id"], "开展专题培训", deadline=day(5))
        r[4] = mk_rect(self.P2["id"], self.R["id"], "完善依申请公开答复流程", deadline=day(30))
        r[5] = mk_rect(self.P3["id"], self.R1["id"], "建立预公开目录", deadline=day(10))
        r[6] = mk_rect(self.P3["id"], self.X["id"], "落实意见收集反馈", deadline=day(25))
        r[7] = mk_rect(self.P3["id"], self.R["id"], "每季度开展自查", deadline=day(12))
        r[8] = mk_rect(self.P4["id"], self.R["id"], "更新公开栏")
        for i in (self.I1, self.I2):
            expect_status(a.post(API + "/inspections/%d/submit" % i["id"], json={}), 200)
        du = dept_user(self.R["id"])   # acts for R and its sub-units
        act_ok(du.client, r[1]["id"], "start")
        for k in (2, 3):
            act_ok(du.client, r[k]["id"], "start")
            add_evidence(du.client, r[k]["id"])
            act_ok(du.client, r[k]["id"], "submit")
        act_ok(inspector(1).client, r[3]["id"], "close", {"opinion": "同意销号"})
        act_ok(du.client, r[7]["id"], "start")
        set_deadline_sql(r[4]["id"], day(-3))
        set_deadline_sql(r[7]["id"], day(-1))
        # touch three of them in a known order (for the updated_at sorts)
        for k in (5, 1, 4):
            act_ok(inspector(1).client, r[k]["id"], "urge")
        self.id = {k: v["id"] for k, v in r.items()}
        self.name = {v: k for k, v in self.id.items()}
        self.family = "responsible_department_id=%d&include_sub_units=true" % self.R["id"]


_data = None


def data():
    global _data
    if _data is None:
        _data = Data()
    return _data


def ledger(query="", client=None, limit=200):
    c = client or ctx.admin
    return c.list_all(LEDGER + ("?" + query if query else ""), limit=limit)


def names(rows):
    d = data()
    return [d.name.get(x["id"], "other:%d" % x["id"]) for x in rows]


def same(got, want, msg):
    eq(sorted(got, key=str), sorted(want, key=str), msg)


def fam(extra=""):
    d = data()
    return d.family + ("&" + extra if extra else "")


@test
def filters():
    d = data()
    cases = [
        (fam(), {1, 2, 3, 4, 5, 7, 8}),
        ("responsible_department_id=%d" % d.R["id"], {1, 4, 7, 8}),
        ("responsible_department_id=%d&include_sub_units=false" % d.R["id"], {1, 4, 7, 8}),
        ("responsible_department_id=%d" % d.R1["id"], {2, 5}),
        ("responsible_department_id=%d&include_sub_units=true" % d.R1["id"], {2, 5}),
        ("responsible_department_id=%d" % d.X["id"], {6}),
        (fam("status=pending"), {4, 5, 8}),
        (fam("status=pending,submitted"), {2, 4, 5, 8}),
        (fam("status=pending&status=submitted"), {2, 4, 5, 8}),  # the form common clients send
        (fam("status=in_progress"), {1, 7}),
        (fam("status=closed"), {3}),
        (fam("overdue=true"), {4, 7}),
        (fam("overdue=false"), {1, 2, 3, 5, 8}),
        ("inspection_id=%d" % d.I1["id"], {1, 2, 3, 4}),
        ("inspection_id=%d" % d.I2["id"], {5, 6, 7}),
        ("target_department_id=%d" % d.T1["id"], {1, 2, 3, 4}),
        ("target_department_id=%d" % d.T2["id"], {5, 6, 7, 8}),
        ("batch_id=%d" % d.B1["id"], {1, 2, 3, 4}),
        (fam("task_id=%d" % d.item_seq5["task_id"]), {3, 4}),
        ("inspection_id=%d&task_id=%d" % (d.I1["id"], d.item_seq1["task_id"]), {1, 2}),
        (fam("deadline_from=%s&deadline_to=%s" % (day(5), day(10))), {1, 3, 5}),
        (fam("deadline_from=%s" % day(12)), {2}),
        (fam("deadline_to=%s" % day(-1)), {4, 7}),
        (fam("status=pending&overdue=true"), {4}),
        ("target_department_id=%d&status=pending" % d.T2["id"], {5, 6, 8}),
    ]
    for q, want in cases:
        same(names(ledger(q)), want, "ledger ?%s" % q)


@test
def search_in_chinese_of_any_length():
    d = data()
    cases = [("训", {3}),                           # one character, in a measure
             ("解读", {2, 3, 4}),                    # two characters: r2's measure, P2's description
             ("目录", {1, 2, 5}),                    # measures of r1 and r5, P1's description
             ("目", {1, 2, 5}),
             ("建立公开目录动态更新", {1}),          # a longer phrase
             ("政务公开目录未及时更新", {1, 2}),     # a problem's whole description
             ("公开答复", {4}),
             ("不存在的词语组合", set())]
    for q, want in cases:
        same(names(ledger(fam("q=" + urllib.parse.quote(q)))), want, "q=%s" % q)
    got = names(ledger("q=" + urllib.parse.quote("落实意见收集反馈") + "&inspection_id=%d" % d.I2["id"]))
    eq(got, [6], "q with inspection_id")


@test
def sorts():
    eq(names(ledger(fam())), [4, 7, 3, 1, 5, 2, 8], "default sort: deadline, soonest first, ties by id, none last")
    eq(names(ledger(fam("sort=deadline"))), [4, 7, 3, 1, 5, 2, 8], "sort=deadline")
    rows = ledger(fam("sort=-deadline"))
    with_deadline = [x for x in rows if x["deadline"] is not None]
    eq([x["deadline"] for x in with_deadline], sorted((x["deadline"] for x in with_deadline), reverse=True),
       "sort=-deadline: latest first")
    check(names(rows)[0] == 8 or names(rows)[-1] == 8, "the one without a deadline is at one end: %s" % names(rows))
    eq(len(rows), 7)
    up = ledger(fam("sort=updated_at"))
    down = ledger(fam("sort=-updated_at"))
    eq([x["updated_at"] for x in up], sorted(x["updated_at"] for x in up), "sort=updated_at")
    eq([x["updated_at"] for x in down], sorted((x["updated_at"] for x in down), reverse=True), "sort=-updated_at")
    eq(names(down)[:3], [4, 1, 5], "the last three touched come first with -updated_at")
    eq(names(up)[-3:], [5, 1, 4], "and last with updated_at")
    eq(sorted(names(up)), sorted(names(down)))


@test
def cursor_paging_has_no_duplicates_or_gaps():
    for sort in ("deadline", "-deadline", "updated_at", "-updated_at"):
        full = [x["id"] for x in ledger(fam("sort=" + sort))]
        eq(len(full), 7)
        pages = []
        url = LEDGER + "?" + fam("sort=%s&limit=2&include_total=true" % sort)
        for _ in range(10):
            r = ctx.admin.get(url)
            expect_status(r, 200)
            eq(r.json.get("total"), 7, "total with include_total=true (sort %s)" % sort)
            check(len(r.json["data"]) <= 2, "page size")
            pages.append([x["id"] for x in r.json["data"]])
            nc = r.json["next_cursor"]
            if not nc:
                check(not r.h("Link"), "a Link header on the last page")
                break
            link = r.h("Link") or ""
            check('rel="next"' in link, "Link header %r" % link)
            url = LEDGER + "?" + fam("sort=%s&limit=2&include_total=true&cursor=%s" % (
                sort, urllib.parse.quote(nc, safe="")))
        flat = [i for p in pages for i in p]
        eq(flat, full, "pages of 2 joined (sort %s)" % sort)
        eq(len(pages), 4, "pages (sort %s)" % sort)
    r = ctx.admin.get(LEDGER + "?" + fam())
    check("total" not in r.json, "total without include_total")


@test
def bad_queries_are_400():
    d = data()
    for q, name in (("sort=deadline_at", "sort"), ("sort=name", "sort"), ("status=open", "status"),
                    ("overdue=yes", "overdue"), ("deadline_from=2026-13-01", "deadline_from"),
                    ("deadline_to=tomorrow", "deadline_to"), ("q=", "q"), ("q=" + urllib.parse.quote("字" * 101), "q"),
                    ("responsible_department_id=abc", "responsible_department_id"), ("limit=0", "limit"),
                    ("colour=red", "colour"), ("sort=deadline&sort=-deadline", "sort"),
                    ("include_sub_units=maybe&responsible_department_id=%d" % d.R["id"], "include_sub_units")):
        r = ctx.admin.get(LEDGER + "?" + q)
        expect_problem(r, 400, "invalid-query", pointers=["/query/" + name])


@test
def rows_carry_what_a_front_end_shows():
    d = data()
    rows = {x["id"]: x for x in ledger(fam())}
    for x in rows.values():
        eq(sorted(x), RECT_KEYS, "ledger row properties")
    r3 = rows[d.id[3]]
    eq(r3["problem"], {"id": d.P2["id"], "ordinal": d.P2["ordinal"], "description": "政策解读形式单一"})
    eq(r3["item"], {"id": d.item_seq5["id"], "seq": 5})
    eq(r3["inspection"], {"id": d.I1["id"], "title": d.I1["title"], "status": "submitted"})
    eq(r3["target_department"], ref(d.T1))
    eq(r3["responsible_department"], ref(d.R2))
    eq((r3["status"], r3["measure"]), ("closed", "开展专题培训"))
    r8 = rows[d.id[8]]
    eq((r8["inspection"]["status"], r8["target_department"], r8["deadline"], r8["item"]["seq"]),
       ("in_progress", ref(d.T2), None, 1))
    r4 = rows[d.id[4]]
    eq((r4["overdue"], r4["deadline"]), (True, day(-3)))
    for k in (1, 4, 7):
        single = ctx.admin.get(API + "/rectifications/%d" % d.id[k]).json
        eq(rows[d.id[k]], single, "ledger row r%d vs GET /rectifications/{id}" % k)


@test
def department_users_see_their_scope():
    d = data()
    u_r = dept_user(d.R["id"])
    u_r1 = dept_user(d.R1["id"])
    u_t2 = dept_user(d.T2["id"])
    u_x = dept_user(d.X["id"])
    same(names(ledger("", u_r.client)), [1, 2, 3, 4, 5, 7, 8], "R's user: R and its sub-units")
    same(names(ledger("", u_r1.client)), [2, 5], "R1's user")
    same(names(ledger("", u_t2.client)), [5, 6, 7, 8], "the inspected unit's user")
    same(names(ledger("", u_x.client)), [6], "X's user")
    eq(names(ledger("inspection_id=%d" % d.I1["id"], u_r1.client)), [2], "filters inside the scope")
    eq(names(ledger("responsible_department_id=%d" % d.X["id"], u_r.client)), [], "another unit's rows stay hidden")
    r = u_r1.client.get(LEDGER + "?include_total=true")
    expect_status(r, 200)
    eq(r.json["total"], 2, "total counts only what the user sees")
    # inspectors and viewers see everything
    for c in (inspector(1).client, viewer().client):
        same(names(ledger(fam(), c)), [1, 2, 3, 4, 5, 7, 8], "inspectors and viewers see all")
        eq(names(ledger("responsible_department_id=%d" % d.X["id"], c)), [6])


@test
def reassigned_rows_stay_in_the_earlier_units_ledger():
    a = mk_dept(name=ctx.uniq("原单位"))
    b = mk_dept(name=ctx.uniq("新单位"))
    insp = mk_inspection()
    expect_status(ctx.admin.post(API + "/inspections/%d/start" % insp["id"], json={}), 200)
    p = mk_problem(items_of(insp["id"])[2]["id"], "转办测试问题")
    x = mk_rect(p["id"], a["id"], "转办测试措施", deadline=day(9))
    expect_status(ctx.admin.post(API + "/inspections/%d/submit" % insp["id"], json={}), 200)
    ua, ub = dept_user(a["id"]), dept_user(b["id"])
    eq([r["id"] for r in ledger("", ua.client)], [x["id"]])
    eq(ledger("", ub.client), [])
    act_ok(inspector(1).client, x["id"], "reassign", {"responsible_department_id": b["id"], "reason": "职责划转"})
    eq([r["id"] for r in ledger("", ub.client)], [x["id"]], "the new unit's ledger")
    eq([r["id"] for r in ledger("", ua.client)], [x["id"]], "the earlier unit's ledger")
    eq([r["id"] for r in ledger("responsible_department_id=%d" % b["id"])], [x["id"]])
    eq(ledger("responsible_department_id=%d" % a["id"]), [], "the filter follows the current unit")


if __name__ == "__main__":
    main()
