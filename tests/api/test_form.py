#!/usr/bin/python3
"""The seven-column form: a full walk-through of filling one in, checked against
GET /inspections/{id}/form exactly; problems and rectifications with their ordinals."""

import os
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, check, ctx, day, db, eq, expect_problem, expect_status,  # noqa: E402
                     items_of, main, mk_dept, mk_inspection, mk_problem, mk_rect, test, Server, today)

PROBLEM_KEYS = sorted(["id", "item_id", "inspection_id", "ordinal", "description", "public", "public_text",
                       "rectification_count", "created_at", "updated_at"])
from lifecycle_helpers import RECT_KEYS  # noqa: E402  (the full representation, issue 4)

# text that must come back exactly as sent: full-width punctuation, quotes, a character outside
# the BMP, an emoji, a decomposed (NFD) accent that must not be normalised, ideographic space.
A_TEXT = "未按规定公开重大决策预公开事项，“意见收集和采纳情况”未公布（2025年度）；𠀀字与😀\u3000e\u0301"
B_TEXT = "政策解读不到位：解读材料与政策文件未同步发布、关联"
C_TEXT = "临时记录的问题——稍后删除"
MEASURES = {"a1": "建立重大决策预公开目录，明确公开范围和时限", "a2": "补充公开2025年度意见采纳情况",
            "b1": "解读材料与文件同步起草、同步审签、同步发布", "b2": "开展政策解读专题培训"}


def ref(d):
    return {"id": d["id"], "name": d["name"]}


def problems_of(item_id):
    return ctx.admin.list_all(API + "/items/%d/problems" % item_id)


def rects_of(problem_id):
    return ctx.admin.list_all(API + "/problems/%d/rectifications" % problem_id)


def patch(path, body):
    r = ctx.admin.patch(API + path, json=body, if_match="*", ctype="application/merge-patch+json")
    expect_status(r, 200, "PATCH %s" % path)
    return r.json


@test
def full_walk_through():
    target = mk_dept(name=ctx.uniq("某某县人民政府"))
    r1 = mk_dept(name=ctx.uniq("县教育局"))
    r1a = mk_dept(name="办公室", parent_id=r1["id"])
    r2 = mk_dept(name=ctx.uniq("县卫生健康委"))
    title = "关于" + target["name"] + "全面推进政务公开工作的督察"
    insp = mk_inspection(target["id"], title=title, inspected_on="2026-03-15", inspectors=["王五", "赵六"])
    expect_status(ctx.admin.post(API + "/inspections/%d/start" % insp["id"], json={}), 200)
    items = items_of(insp["id"])
    tasks = ctx.admin.list_all(API + "/checklists/%d/tasks" % insp["checklist_id"])
    row1, row5 = items[0], items[4]
    patch("/items/%d" % row1["id"], {"completion": "completed"})
    patch("/items/%d" % row5["id"], {"completion": "not_completed"})

    # two problems, a third inserted at the top
    a = mk_problem(row5["id"], A_TEXT)
    eq(sorted(a), PROBLEM_KEYS, "problem keys")
    eq((a["ordinal"], a["item_id"], a["inspection_id"], a["description"], a["rectification_count"]),
       (1, row5["id"], insp["id"], A_TEXT, 0))
    check(UTC_DATETIME_RE.match(a["created_at"]), "created_at %r" % a["created_at"])
    b = mk_problem(row5["id"], B_TEXT)
    eq(b["ordinal"], 2)
    c = mk_problem(row5["id"], C_TEXT, ordinal=1)
    eq(c["ordinal"], 1)
    eq([(p["id"], p["ordinal"]) for p in problems_of(row5["id"])], [(c["id"], 1), (a["id"], 2), (b["id"], 3)],
       "inserting at 1 shifts the others")

    # two measures each
    ra1 = mk_rect(a["id"], r1["id"], MEASURES["a1"], deadline=day(30))
    eq(sorted(ra1), RECT_KEYS, "rectification keys")
    eq((ra1["ordinal"], ra1["problem_id"], ra1["item_id"], ra1["inspection_id"], ra1["responsible_department"],
        ra1["deadline"], ra1["status"], ra1["overdue"]),
       (1, a["id"], row5["id"], insp["id"], ref(r1), day(30), "pending", False))
    ra2 = mk_rect(a["id"], r1a["id"], MEASURES["a2"], deadline=day(60))
    rb1 = mk_rect(b["id"], r2["id"], MEASURES["b1"], deadline=day(0))
    eq(rb1["overdue"], False, "a deadline of today is not overdue")
    rb2 = mk_rect(b["id"], r2["id"], MEASURES["b2"], ordinal=1)
    eq((rb2["ordinal"], rb2["deadline"], rb2["overdue"]), (1, None, False))
    eq([(x["id"], x["ordinal"]) for x in rects_of(b["id"])], [(rb2["id"], 1), (rb1["id"], 2)])
    rc1 = mk_rect(c["id"], r2["id"], deadline=day(5))

    # reorder: b to the top, then a2 before a1
    pb = patch("/problems/%d" % b["id"], {"ordinal": 1})
    eq(pb["ordinal"], 1)
    eq([(p["id"], p["ordinal"]) for p in problems_of(row5["id"])], [(b["id"], 1), (c["id"], 2), (a["id"], 3)],
       "after moving b to 1")
    patch("/rectifications/%d" % ra2["id"], {"ordinal": 1})
    eq([(x["id"], x["ordinal"]) for x in rects_of(a["id"])], [(ra2["id"], 1), (ra1["id"], 2)])

    # delete c: later problems renumber, its rectification goes with it
    r = ctx.admin.delete(API + "/problems/%d" % c["id"], if_match="*")
    expect_status(r, 204)
    expect_problem(ctx.admin.get(API + "/problems/%d" % c["id"]), 404, "not-found")
    expect_problem(ctx.admin.get(API + "/rectifications/%d" % rc1["id"]), 404, "not-found")
    eq([(p["id"], p["ordinal"]) for p in problems_of(row5["id"])], [(b["id"], 1), (a["id"], 2)], "after deleting c")
    eq(ctx.admin.get(API + "/items/%d" % row5["id"]).json["problem_count"], 2)
    eq(ctx.admin.get(API + "/problems/%d" % a["id"]).json["rectification_count"], 2)

    counts = ctx.admin.get(API + "/inspections/%d" % insp["id"]).json["counts"]
    eq(counts, {"items": 38, "completed": 1, "not_completed": 1, "not_assessed": 36, "problems": 2,
                "rectifications": 4})

    def rect(x, ordinal, dept, deadline):
        return {"id": x["id"], "ordinal": ordinal, "measure": x["measure"], "responsible_department": ref(dept),
                "deadline": deadline, "status": "pending", "overdue": False}

    expected_rows = []
    for it, t in zip(items, tasks):
        expected_rows.append({"item_id": it["id"], "seq": t["seq"], "task": {"id": t["id"], "content": t["content"]},
                              "completion": "not_assessed", "material_departments": t["material_departments"],
                              "problems": [], "carried_over": []})
    expected_rows[0]["completion"] = "completed"
    expected_rows[4]["completion"] = "not_completed"
    expected_rows[4]["problems"] = [
        {"id": b["id"], "ordinal": 1, "description": B_TEXT,
         "rectifications": [rect(rb2, 1, r2, None), rect(rb1, 2, r2, day(0))]},
        {"id": a["id"], "ordinal": 2, "description": A_TEXT,
         "rectifications": [rect(ra2, 1, r1a, day(60)), rect(ra1, 2, r1, day(30))]}]
    expected = {"inspection": {"id": insp["id"], "title": title, "target_department": ref(target),
                               "inspected_on": "2026-03-15", "status": "in_progress"},
                "rows": expected_rows}
    r = ctx.admin.get(API + "/inspections/%d/form" % insp["id"])
    expect_status(r, 200)
    form = r.json
    eq(sorted(form), ["inspection", "rows"])
    eq(form["inspection"], expected["inspection"], "form.inspection")
    eq(len(form["rows"]), 38, "38 rows")
    for i, (got, want) in enumerate(zip(form["rows"], expected_rows)):
        eq(got, want, "form row %d" % (i + 1))
    eq(form, expected, "the whole form")
    # Chinese text byte for byte, no normalisation
    got_a = form["rows"][4]["problems"][1]["description"]
    eq(got_a.encode("utf-8"), A_TEXT.encode("utf-8"), "description bytes")
    check(got_a != unicodedata.normalize("NFC", A_TEXT), "the NFD accent was normalised")
    eq([t["content"] for t in (row["task"] for row in form["rows"])], [t["content"] for t in tasks])

    # submitted: the form shows it
    r = ctx.admin.post(API + "/inspections/%d/submit" % insp["id"], json={})
    expect_problem(r, 409, "conflict", pointers=["/rectifications/%d/deadline" % rb2["id"]], exact_pointers=True)
    patch("/rectifications/%d" % rb2["id"], {"deadline": day(90)})
    r = ctx.admin.post(API + "/inspections/%d/submit" % insp["id"], json={})
    expect_status(r, 200)
    form2 = ctx.admin.get(API + "/inspections/%d/form" % insp["id"]).json
    eq(form2["inspection"]["status"], "submitted")
    eq(form2["rows"][4]["problems"][0]["rectifications"][0]["deadline"], day(90))


@test
def fresh_form_has_empty_rows():
    insp = mk_inspection()
    r = ctx.admin.get(API + "/inspections/%d/form" % insp["id"])
    expect_status(r, 200)
    eq(r.json["inspection"]["status"], "draft")
    eq([row["seq"] for row in r.json["rows"]], list(range(1, 39)))
    for row in r.json["rows"]:
        eq((row["completion"], row["problems"]), ("not_assessed", []))
    eq([d["name"] for d in r.json["rows"][0]["material_departments"]], ["市法制办", "市政府办公室"])


@test
def deadline_rules():
    insp = mk_inspection()
    item = items_of(insp["id"])[0]
    p = mk_problem(item["id"])
    resp = mk_dept()
    for bad in (day(-1), day(-400), "2026-02-30", "2026/12/01", "tomorrow", 20261201):
        r = ctx.admin.post(API + "/problems/%d/rectifications" % p["id"],
                           json={"measure": "x", "responsible_department_id": resp["id"], "deadline": bad})
        expect_problem(r, 400, "validation-failed", pointers=["/deadline"])
    eq(rects_of(p["id"]), [], "nothing created")
    x = mk_rect(p["id"], resp["id"], deadline=day(0))
    eq((x["deadline"], x["overdue"]), (day(0), False))
    r = ctx.admin.patch(API + "/rectifications/%d" % x["id"], json={"deadline": day(-1)}, if_match="*")
    expect_problem(r, 400, "validation-failed", pointers=["/deadline"])
    r = ctx.admin.patch(API + "/rectifications/%d" % x["id"], json={"deadline": None}, if_match="*")
    expect_status(r, 200)
    eq(r.json["deadline"], None)
    for body, ptr in (({"measure": "x"}, "/responsible_department_id"),
                      ({"responsible_department_id": resp["id"]}, "/measure"),
                      ({"measure": "", "responsible_department_id": resp["id"]}, "/measure"),
                      ({"measure": "措" * 2001, "responsible_department_id": resp["id"]}, "/measure"),
                      ({"measure": "x", "responsible_department_id": 987654321}, "/responsible_department_id"),
                      ({"measure": "x", "responsible_department_id": resp["id"], "status": "closed"}, "/status"),
                      ({"measure": "x", "responsible_department_id": resp["id"], "overdue": True}, "/overdue")):
        r = ctx.admin.post(API + "/problems/%d/rectifications" % p["id"], json=body)
        expect_problem(r, 400, "validation-failed", pointers=[ptr])
    eq(len(rects_of(p["id"])), 1)


@test
def overdue_is_derived():
    insp = mk_inspection()
    item = items_of(insp["id"])[0]
    p = mk_problem(item["id"])
    x = mk_rect(p["id"], mk_dept()["id"], deadline=day(1))
    eq(x["overdue"], False)
    # move the deadline into the past behind the API's back: overdue is computed on read
    db("update rectifications set deadline = date %s where id = %d" % ("'" + day(-1) + "'", x["id"]))
    g = ctx.admin.get(API + "/rectifications/%d" % x["id"])
    expect_status(g, 200)
    eq((g.json["deadline"], g.json["overdue"]), (day(-1), True))
    form = ctx.admin.get(API + "/inspections/%d/form" % insp["id"]).json
    eq(form["rows"][0]["problems"][0]["rectifications"][0]["overdue"], True, "overdue in the form")


def _today_in(zone):
    return today(zone).isoformat()


@test
def deadlines_use_ducha_timezone():
    # Pago Pago is UTC-11, Kiritimati UTC+14: Kiritimati's date is always after Pago Pago's
    west = Server({"DUCHA_TIMEZONE": "Pacific/Pago_Pago"}).start()
    east = Server({"DUCHA_TIMEZONE": "Pacific/Kiritimati"}).start()
    try:
        w, e = west.client(ctx.admin.token), east.client(ctx.admin.token)
        insp = mk_inspection()
        item = items_of(insp["id"])[0]
        p = mk_problem(item["id"])
        resp = mk_dept()
        body = {"measure": "时区", "responsible_department_id": resp["id"], "deadline": _today_in("Pacific/Pago_Pago")}
        r = e.post(API + "/problems/%d/rectifications" % p["id"], json=body)
        expect_problem(r, 400, "validation-failed", pointers=["/deadline"])
        r = w.post(API + "/problems/%d/rectifications" % p["id"], json=body)
        expect_status(r, 201, "today in Pago Pago on a server in Pago Pago")
        eq(r.json["overdue"], False)
        g = e.get(API + "/rectifications/%d" % r.json["id"])
        expect_status(g, 200)
        eq(g.json["overdue"], True, "the same deadline read by a server whose day is later")
        eq(w.get(API + "/rectifications/%d" % r.json["id"]).json["overdue"], False)
    finally:
        rcs = (west.stop(), east.stop())
    eq(rcs, (0, 0), "exit status of the two servers")


@test
def ordinal_bounds():
    insp = mk_inspection()
    item = items_of(insp["id"])[1]
    p1 = mk_problem(item["id"])
    p2 = mk_problem(item["id"])
    for bad in (0, 4, -1, "1", 1.5, None):
        r = ctx.admin.post(API + "/items/%d/problems" % item["id"], json={"description": "x", "ordinal": bad})
        expect_problem(r, 400, "validation-failed", pointers=["/ordinal"])
    p3 = mk_problem(item["id"], ordinal=3)
    eq(p3["ordinal"], 3, "n+1 is allowed on create")
    for bad in (0, 4, None):
        r = ctx.admin.patch(API + "/problems/%d" % p1["id"], json={"ordinal": bad}, if_match="*")
        expect_problem(r, 400, "validation-failed", pointers=["/ordinal"])
    eq([x["id"] for x in problems_of(item["id"])], [p1["id"], p2["id"], p3["id"]], "unchanged")
    patch("/problems/%d" % p1["id"], {"ordinal": 3})
    eq([(x["id"], x["ordinal"]) for x in problems_of(item["id"])], [(p2["id"], 1), (p3["id"], 2), (p1["id"], 3)],
       "moving down shifts the others up")
    resp = mk_dept()
    x1 = mk_rect(p2["id"], resp["id"])
    x2 = mk_rect(p2["id"], resp["id"])
    x3 = mk_rect(p2["id"], resp["id"], ordinal=2)
    eq([(x["id"], x["ordinal"]) for x in rects_of(p2["id"])], [(x1["id"], 1), (x3["id"], 2), (x2["id"], 3)])
    r = ctx.admin.post(API + "/problems/%d/rectifications" % p2["id"],
                       json={"measure": "x", "responsible_department_id": resp["id"], "ordinal": 5})
    expect_problem(r, 400, "validation-failed", pointers=["/ordinal"])
    expect_status(ctx.admin.delete(API + "/rectifications/%d" % x1["id"], if_match="*"), 204)
    eq([(x["id"], x["ordinal"]) for x in rects_of(p2["id"])], [(x3["id"], 1), (x2["id"], 2)], "renumbered after delete")
    eq(ctx.admin.get(API + "/problems/%d" % p2["id"]).json["rectification_count"], 2)


@test
def concurrent_problem_creation_keeps_ordinals_unique():
    import threading
    insp = mk_inspection()
    item = items_of(insp["id"])[6]
    results = []

    def one(i):
        try:
            r = ctx.admin.post(API + "/items/%d/problems" % item["id"], json={"description": "并发问题%d" % i})
            results.append((r.status, r.json.get("ordinal") if isinstance(r.json, dict) else None))
        except Exception as exc:
            results.append((repr(exc), None))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = problems_of(item["id"])
    created = sum(1 for st, _ in results if st == 201)
    eq([p["ordinal"] for p in got], list(range(1, created + 1)), "ordinals after concurrent creates")
    check(all(st in (201, 409) for st, _ in results), "statuses %s" % results)
    eq(sorted(st for st, _ in results), [201] * 10, "statuses of 10 concurrent creates on one item "
       "(a lost race must not surface as a 409 to the caller)")


@test
def multi_line_texts_are_accepted():
    insp = mk_inspection()
    item = items_of(insp["id"])[2]
    text = "第一条：未公开；\n第二条：未解读。\r\n\t（附表）"
    p = mk_problem(item["id"], text)
    eq(p["description"], text)
    x = mk_rect(p["id"], mk_dept()["id"], "1. 补充公开\n2. 补充解读", deadline=day(3))
    eq(x["measure"], "1. 补充公开\n2. 补充解读")
    for bad in ("a\u0000b",):
        r = ctx.admin.post(API + "/items/%d/problems" % item["id"], json={"description": bad})
        expect_problem(r, 400, slugs=["validation-failed", "malformed-json"])


@test
def problem_and_rectification_etags():
    insp = mk_inspection()
    item = items_of(insp["id"])[0]
    r = ctx.admin.post(API + "/items/%d/problems" % item["id"], json={"description": "x"})
    expect_status(r, 201)
    eq(r.etag, '"1"')
    eq(r.h("Location"), API + "/problems/%d" % r.json["id"])
    pid = r.json["id"]
    expect_problem(ctx.admin.patch(API + "/problems/%d" % pid, json={"description": "y"}), 428, "precondition-required")
    expect_problem(ctx.admin.patch(API + "/problems/%d" % pid, json={"description": "y"}, if_match='"2"'), 412,
                   "precondition-failed")
    r = ctx.admin.patch(API + "/problems/%d" % pid, json={"description": "y"}, if_match='"1"')
    expect_status(r, 200)
    eq(r.etag, '"2"')
    r = ctx.admin.post(API + "/problems/%d/rectifications" % pid,
                       json={"measure": "m", "responsible_department_id": mk_dept()["id"]})
    expect_status(r, 201)
    # a rectification's tag: its version, then what its derived fields depend on (the date, ...)
    check(r.etag.startswith('"1.'), "a new rectification's ETag is version 1 and more: %s" % r.etag)
    eq(r.h("Location"), API + "/rectifications/%d" % r.json["id"])
    rid = r.json["id"]
    expect_problem(ctx.admin.delete(API + "/rectifications/%d" % rid), 428, "precondition-required")
    expect_problem(ctx.admin.delete(API + "/rectifications/%d" % rid, if_match='"2"'), 412, "precondition-failed")
    expect_status(ctx.admin.delete(API + "/rectifications/%d" % rid, if_match='"1"'), 204)
    cur = ctx.admin.get(API + "/problems/%d" % pid).etag
    expect_problem(ctx.admin.delete(API + "/problems/%d" % pid, if_match='"999"'), 412, "precondition-failed")
    expect_status(ctx.admin.delete(API + "/problems/%d" % pid, if_match=cur), 204)


@test
def form_etag_changes_with_every_change_and_answers_304():
    target = mk_dept()
    insp = mk_inspection(target["id"])
    url = API + "/inspections/%d/form" % insp["id"]
    tags = []

    def current(label):
        r = ctx.admin.get(url)
        expect_status(r, 200)
        tag = r.h("ETag")
        check(tag and tag not in tags, "%s: a new ETag (%s, before %s)" % (label, tag, tags))
        # The tag counts every department's renames, and other suites create departments in the
        # same database meanwhile: a 200 is right only with a tag that moved on; then ask again.
        for _ in range(5):
            r2 = ctx.admin.get(url, headers={"If-None-Match": tag})
            if r2.status != 200:
                break
            check(r2.h("ETag") != tag, "%s: a 200 to If-None-Match carries a new ETag" % label)
            r, tag = r2, r2.h("ETag")
        eq(r2.status, 304, "%s: unchanged form answers 304" % label)
        eq(r2.body, b"", "a 304 has no body")
        tags.append(tag)
        return r.json

    current("new")
    item = items_of(insp["id"])[0]
    r = ctx.admin.get(API + "/items/%d" % item["id"])
    expect_status(ctx.admin.patch(API + "/items/%d" % item["id"], json={"completion": "not_completed"},
                                  headers={"If-Match": r.h("ETag")}), 200)
    current("row completion")
    prob = mk_problem(item["id"])
    current("problem added")
    other = mk_dept()
    rect = mk_rect(prob["id"], other["id"], deadline=day(10))
    current("measure added")
    expect_status(ctx.admin.patch(API + "/rectifications/%d" % rect["id"], json={"deadline": day(20)},
                                  headers={"If-Match": "*"}), 200)
    current("deadline changed")
    expect_status(ctx.admin.patch(API + "/departments/%d" % other["id"], json={"name": other["name"] + "改"},
                                  headers={"If-Match": "*"}), 200)
    form = current("a department it shows renamed")
    eq(form["rows"][0]["problems"][0]["rectifications"][0]["responsible_department"]["name"], other["name"] + "改",
       "the form shows the new name")
    check(tags[-1].endswith(today().strftime("%Y%m%d") + '"'), "the local date is part of the ETag: %s" % tags[-1])
    expect_status(ctx.admin.delete(API + "/rectifications/%d" % rect["id"], headers={"If-Match": "*"}), 204)
    current("measure deleted")


if __name__ == "__main__":
    main()
