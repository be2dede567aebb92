#!/usr/bin/python3
"""Exports (issue 11): the form in the seed's own layout (XLSX and CSV), the ledger (整改台账) with
the ledger's filters and scope, and the evidence archive (归档). Every file is read back with an
independent reader (Debian's python3-openpyxl; zipfile for the archive) and checked cell by cell:
merged ranges, print settings, widths and wrapping, not only that a file came back."""

import csv
import hashlib
import io
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, Server, check, cli_token, ctx, day, db, eq, expect_problem, expect_status,  # noqa: E402
                     items_of, main, mk_dept, mk_inspection, mk_problem, mk_rect, own_database, qs, seed_data,
                     stop_all, test)
from lifecycle_helpers import (Case, add_evidence, dept_user, filename_star, make_pdf,  # noqa: E402
                               upload)

try:
    import openpyxl
except ImportError:  # pragma: no cover
    print("Bail out! python3-openpyxl is missing (apt-get install python3-openpyxl; run with /usr/bin/python3)")
    sys.exit(1)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
state = {}


def patch_item(item_id, completion):
    r = ctx.admin.patch(API + "/items/%d" % item_id, json={"completion": completion},
                        ctype="application/merge-patch+json", if_match="*")
    expect_status(r, 200, "set the row's completion")


def filled():
    """An inspection of the seed checklist on fresh units: row 1 未完成 with two problems (the
    second over two lines) and three measures on two units, one without a deadline; row 2 已完成."""
    if "filled" not in state:
        target = mk_dept(name=ctx.uniq("督察对象"))
        a, b = mk_dept(name=ctx.uniq("责任单位甲")), mk_dept(name=ctx.uniq("责任单位乙"))
        insp = mk_inspection(target["id"])
        items = items_of(insp["id"])
        patch_item(items[0]["id"], "not_completed")
        patch_item(items[1]["id"], "completed")
        p1 = mk_problem(items[0]["id"], "未公布重大决策意见收集和采纳情况。")
        p2 = mk_problem(items[0]["id"], "政策解读形式单一，\n图解、视频解读偏少。")
        r11 = mk_rect(p1["id"], a["id"], "建立重大决策预公开制度。", deadline=day(30))
        r12 = mk_rect(p1["id"], b["id"], "按季度公布意见采纳情况。")
        r21 = mk_rect(p2["id"], a["id"], "开展政策解读培训。", deadline=day(60))
        state["filled"] = dict(target=target, a=a, b=b, insp=insp, items=items, p=[p1, p2], r=[r11, r12, r21])
    return state["filled"]


def expected_rows(f):
    """The form's cells as the seed's layout writes them (序号 as a number, the rest as text)."""
    seed = seed_data()
    a, b = f["a"]["name"], f["b"]["name"]
    rows = []
    for task in seed["tasks"]:
        rows.append([task["seq"], task["content"], None, None, None, None, "、".join(task["material_departments"])])
    rows[0][2:6] = ["未完成", "1. 未公布重大决策意见收集和采纳情况。\n2. 政策解读形式单一，\n图解、视频解读偏少。",
                    "1.1 建立重大决策预公开制度。（时限：%s）\n1.2 按季度公布意见采纳情况。\n2.1 开展政策解读培训。（时限：%s）"
                    % (day(30), day(60)), "1.1 %s\n1.2 %s\n2.1 %s" % (a, b, a)]
    rows[1][2] = "已完成"
    return rows


def export(path, fmt=None, client=None, **kw):
    r = (client or ctx.admin).get(API + path + ("?format=" + fmt if fmt else ""), **kw)
    expect_status(r, 200, "export %s" % path)
    return r


def workbook(r):
    eq(r.ctype, XLSX, "Content-Type")
    return openpyxl.load_workbook(io.BytesIO(r.body))


@test
def form_xlsx_is_the_seed_form_with_its_print_settings():
    f = filled()
    seed = seed_data()
    r = export("/inspections/%d/export" % f["insp"]["id"])
    eq(filename_star(r.h("Content-Disposition")),
       "%s-%s-%s.xlsx" % (f["target"]["name"], seed["form"]["title"], f["insp"]["inspected_on"]), "Chinese file name")
    wb = workbook(r)
    eq(len(wb.worksheets), 1, "one sheet")
    ws = wb.active
    eq(ws["A1"].value, seed["form"]["title"], "title")
    eq(ws["A2"].value, "督察对象：" + f["target"]["name"], "督察对象")
    eq(ws["E2"].value, "督察时间：" + f["insp"]["inspected_on"], "督察时间")
    eq(sorted(str(m) for m in ws.merged_cells.ranges), ["A1:G1", "A2:D2", "E2:G2"], "merged ranges")
    eq([c.value for c in ws[3]], [c["label"] for c in seed["form"]["columns"]], "the seven columns of the seed")
    got = [list(row) for row in ws.iter_rows(min_row=4, values_only=True)]
    want = expected_rows(f)
    eq(len(got), len(seed["tasks"]), "one row per task")
    for i, (g, w) in enumerate(zip(got, want)):
        eq(g, w, "row %d (序号 %d)" % (4 + i, w[0]))
    check(ws["A1"].font.b and ws["A1"].font.sz >= 16, "a large bold title")
    check(all(ws.cell(row=3, column=c).font.b for c in range(1, 8)), "a bold header row")
    for ref in ("B4", "D4", "E4", "F4", "G4"):
        check(ws[ref].alignment.wrap_text, "%s wraps its text" % ref)
        eq(ws[ref].border.left.style, "thin", "%s has borders" % ref)
    widths = {col: ws.column_dimensions[col].width for col in "ABCDEFG"}
    check(widths["B"] > 30 and widths["E"] > 30 and widths["A"] < 10, "sensible widths: %s" % widths)
    eq(ws.page_setup.orientation, "landscape", "landscape")
    eq(str(ws.page_setup.paperSize), "9", "A4 (paper size 9)")
    eq(ws.print_title_rows, "$3:$3", "the header row repeats on every printed page")
    check(ws.sheet_properties.pageSetUpPr.fitToPage and int(ws.page_setup.fitToWidth or 1) == 1 and
          int(ws.page_setup.fitToHeight) == 0, "fitted to the page's width (fitToWidth 1 is the default)")
    eq(ws.freeze_panes, "A4", "the header stays on screen")
    check("&P" in (ws.oddFooter.center.text or ""), "page numbers in the footer")


@test
def form_csv_has_a_bom_and_the_same_cells():
    f = filled()
    seed = seed_data()
    r = export("/inspections/%d/export" % f["insp"]["id"], "csv")
    eq(r.ctype, "text/csv", "Content-Type")
    check(r.body.startswith(b"\xef\xbb\xbf"), "a UTF-8 BOM, so that Excel shows Chinese")
    eq(filename_star(r.h("Content-Disposition")),
       "%s-%s-%s.csv" % (f["target"]["name"], seed["form"]["title"], f["insp"]["inspected_on"]), "file name")
    rows = list(csv.reader(io.StringIO(r.body.decode("utf-8-sig"), newline="")))
    eq(rows[0][0], seed["form"]["title"], "title")
    eq(rows[1][0], "督察对象：" + f["target"]["name"], "督察对象")
    eq(rows[1][4], "督察时间：" + f["insp"]["inspected_on"], "督察时间")
    eq(rows[2], [c["label"] for c in seed["form"]["columns"]], "header")
    want = [[str(c) if c is not None else "" for c in row] for row in expected_rows(f)]
    eq(rows[3:], want, "the rows")


@test
def form_export_has_an_etag_and_answers_304():
    f = filled()
    path = "/inspections/%d/export" % f["insp"]["id"]
    x, c = export(path), export(path, "csv")
    check(x.etag and c.etag and x.etag != c.etag, "an ETag per format: %s %s" % (x.etag, c.etag))
    r = ctx.admin.get(API + path, headers={"If-None-Match": x.etag})
    eq(r.status, 304, "unchanged form: 304")
    eq(r.body, b"", "no body")
    ev = ctx.admin.get(API + path + "?format=csv", headers={"If-None-Match": x.etag})
    eq(ev.status, 200, "another format's tag does not match")
    g = ctx.admin.get(API + "/inspections/%d/export" % mk_inspection(f["target"]["id"])["id"],
                      headers={"If-None-Match": x.etag})
    eq(g.status, 200, "another inspection's tag does not match")


@test
def form_export_is_scoped_and_checks_its_query():
    f = filled()
    path = "/inspections/%d/export" % f["insp"]["id"]
    own = dept_user(f["target"]["id"])
    r = export(path, "csv", client=own.client)
    check(r.body.decode("utf-8-sig").count("\n") > 38, "the target's user exports its form")
    other = dept_user(f["a"]["id"])
    expect_problem(other.client.get(API + path), 404, "not-found")
    expect_problem(ctx.admin.get(API + path + "?format=xls"), 400, "invalid-query", pointers=["/query/format"])
    expect_problem(ctx.admin.get(API + path + "?limit=5"), 400, "invalid-query")
    expect_problem(ctx.admin.get(API + "/inspections/999999999/export"), 404, "not-found")


# --------------------------------------------------------------------------------------------
# the ledger

LABELS = ["编号", "督察", "督察对象", "督察时间", "任务序号", "工作任务", "问题序号", "存在问题", "措施序号", "整改措施",
          "整改责任主体", "整改时限", "状态", "逾期", "督办", "提交时间", "销号时间", "创建时间", "更新时间"]


def ledger_ids(client, query):
    return [x["id"] for x in client.list_all(API + "/rectifications?" + query)]


@test
def ledger_xlsx_has_the_ledgers_rows_in_its_order():
    c = Case(n=3, measures=["建立台账一", "=HYPERLINK(\"http://example.com\")", "建立台账三"])
    query = qs(inspection_id=c.insp["id"], sort="-deadline")
    r = export("/rectifications/export?" + query + "&format=xlsx")
    check(filename_star(r.h("Content-Disposition")).startswith("整改台账-"), "file name")
    ws = workbook(r).active
    eq([x.value for x in ws[1]], LABELS, "header")
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    eq([row[0] for row in rows], ledger_ids(ctx.admin, query), "the ledger's rows, in its order")
    by_id = {x["id"]: x for x in ctx.admin.list_all(API + "/rectifications?" + query)}
    for row in rows:
        x = by_id[row[0]]
        eq(row[1], c.insp["title"], "督察")
        eq(row[2], c.target["name"], "督察对象")
        eq(row[3].date().isoformat(), c.insp["inspected_on"], "督察时间 is a date")
        eq(row[4], 1, "任务序号")
        eq(row[6], 1, "问题序号")
        eq(row[7], c.problem["description"], "存在问题")
        eq(row[8], "1.%d" % x["ordinal"], "措施序号")
        eq(row[9], x["measure"], "整改措施: text, never a formula")
        eq(row[10], c.resp["name"], "整改责任主体")
        eq(row[11].date().isoformat(), x["deadline"], "整改时限 is a date")
        eq(row[12:15], ("待整改", "否", "无"), "状态, 逾期, 督办")
        check(row[15] is None and row[16] is None and row[17] is not None, "提交时间, 销号时间, 创建时间")
    eq(ws.auto_filter.ref, "A1:S1", "an AutoFilter on the header")
    eq(ws.print_title_rows, "$1:$1", "the header repeats when printed")
    eq(ws.freeze_panes, "A2", "and stays on screen")
    eq(ws.page_setup.orientation, "landscape", "landscape")


@test
def ledger_csv_guards_formulas_and_matches_the_xlsx():
    c = Case(n=2, measures=["=HYPERLINK(\"http://example.com\",\"x\")", "普通措施"])
    query = qs(inspection_id=c.insp["id"])
    r = export("/rectifications/export?" + query + "&format=csv")
    check(r.body.startswith(b"\xef\xbb\xbf"), "BOM")
    rows = list(csv.reader(io.StringIO(r.body.decode("utf-8-sig"), newline="")))
    eq(rows[0], LABELS, "header")
    eq([int(x[0]) for x in rows[1:]], ledger_ids(ctx.admin, query), "rows in the ledger's order")
    measures = {int(x[0]): x[9] for x in rows[1:]}
    eq(measures[c.rects[0]["id"]], "'=HYPERLINK(\"http://example.com\",\"x\")",
       "a measure that would be a formula is guarded by an apostrophe")
    eq(measures[c.rects[1]["id"]], "普通措施", "others are as they are")


@test
def ledger_export_takes_the_ledgers_filters_and_nothing_else():
    c = Case(n=2)
    expect_problem(ctx.admin.get(API + "/rectifications/export?format=pdf"), 400, "invalid-query",
                   pointers=["/query/format"])
    expect_problem(ctx.admin.get(API + "/rectifications/export?limit=10"), 400, "invalid-query")
    expect_problem(ctx.admin.get(API + "/rectifications/export?include_sub_units=true"), 400, "invalid-query")
    r = export("/rectifications/export?" + qs(inspection_id=c.insp["id"], status="closed", format="csv"))
    eq(r.body.decode("utf-8-sig").strip().count("\n"), 0, "no closed rows: the header alone")
    r = export("/rectifications/export?" + qs(responsible_department_id=c.parent["id"], include_sub_units="true",
                                               format="csv"))
    ids = [int(x[0]) for x in list(csv.reader(io.StringIO(r.body.decode("utf-8-sig"))))[1:]]
    eq(sorted(ids), sorted(x["id"] for x in c.rects), "a unit with its sub-units")


@test
def a_department_user_exports_what_it_may_read_and_nothing_more():
    mine = Case(n=2)
    theirs = Case(n=2, target=mine.target)  # same target, another responsible unit
    user = dept_user(mine.resp["id"])
    for query in ("", qs(inspection_id=theirs.insp["id"]), qs(q=theirs.rects[0]["measure"])):
        r = export("/rectifications/export?" + query + ("&" if query else "") + "format=csv", client=user.client)
        ids = [int(x[0]) for x in list(csv.reader(io.StringIO(r.body.decode("utf-8-sig"))))[1:]]
        eq(ids, ledger_ids(user.client, query), "the export is the user's own ledger (%s)" % (query or "no filter"))
        for x in theirs.rects:
            check(x["id"] not in ids, "another unit's rectification %d is not exported" % x["id"])
    r = export("/rectifications/export?format=csv", client=user.client)
    ids = [int(x[0]) for x in list(csv.reader(io.StringIO(r.body.decode("utf-8-sig"))))[1:]]
    check({x["id"] for x in mine.rects} <= set(ids), "its own rectifications are all there")


@test
def a_ledger_of_many_chunks_is_whole_and_in_order():
    """4,500 rectifications (written straight into the database) come back whole, across the
    export's chunks of 2,000, in the ledger's order, as XLSX and CSV. In a database of its own: a
    statement of 4,499 rows' triggers is a long transaction beside the other files' requests (it
    held statistics_trend's all-units row of the day before 0019, and test_import's writes with it)."""
    name = "ducha_t_%s_export" % ctx.prefix
    owner_url, app_url = own_database(name)
    srv = Server({}, database_url=app_url).start()
    shared = ctx.admin
    ctx.admin = srv.client(cli_token(app_url, "ex_admin"))
    try:
        c = Case(n=1)
        n = 4500
        db("INSERT INTO rectifications (problem_id, ordinal, measure, responsible_department_id, deadline)"
           " SELECT %d, g + 1, '批量措施' || g, %d, current_date + (g %% 97) FROM generate_series(1, %d) g"
           % (c.problem["id"], c.resp["id"], n - 1), url=owner_url)
        want = [int(x) for x in db("SELECT r.id FROM rectifications r WHERE r.problem_id = %d"
                                   " ORDER BY coalesce(r.deadline, 'infinity'), r.id" % c.problem["id"],
                                   url=owner_url).split()]
        eq(len(want), n, "rows written")
        r = export("/rectifications/export?" + qs(inspection_id=c.insp["id"], format="csv"), timeout=60)
        ids = [int(x[0]) for x in list(csv.reader(io.StringIO(r.body.decode("utf-8-sig"))))[1:]]
        eq(ids, want, "every row once, in order")
        r = export("/rectifications/export?" + qs(inspection_id=c.insp["id"], sort="-deadline"), timeout=60)
        ids = [row[0] for row in workbook(r).active.iter_rows(min_row=2, values_only=True)]
        eq(len(ids), n, "XLSX rows")
        eq(len(set(ids)), n, "no row twice")
    finally:
        ctx.admin = shared
        stop_all([srv], [name], strict=True)


# --------------------------------------------------------------------------------------------
# the evidence archive

@test
def evidence_archive_holds_every_file_with_a_manifest():
    c = Case(n=2, submit=True)
    big = make_pdf("大文件") + os.urandom(600 * 1024)  # more than two of the stored 256 KiB chunks
    e1 = add_evidence(ctx.admin, c.rects[0]["id"], data=big, filename="整改报告.pdf")
    e2 = add_evidence(ctx.admin, c.rects[1]["id"], data=make_pdf("第二份"), filename="会议纪要.pdf")
    e3 = upload(ctx.admin, "/items/%d/evidence" % c.item["id"], "材料说明\n".encode(), "材料说明.txt",
                "text/plain; charset=utf-8")
    expect_status(e3, 201, "item evidence")
    r = export("/inspections/%d/evidence-archive" % c.insp["id"], timeout=60)
    eq(r.ctype, "application/zip", "Content-Type")
    eq(int(r.h("Content-Length")), len(r.body), "the size is known before the first byte")
    eq(filename_star(r.h("Content-Disposition")), "%s-%s-佐证材料.zip" % (c.target["name"], c.insp["inspected_on"]),
       "file name")
    z = zipfile.ZipFile(io.BytesIO(r.body))
    eq(z.testzip(), None, "every CRC-32 is right")
    names = z.namelist()
    eq(names[0], "manifest.csv", "the manifest first")
    want = {"01/1.1/%d-整改报告.pdf" % e1["id"]: big, "01/1.2/%d-会议纪要.pdf" % e2["id"]: make_pdf("第二份"),
            "01/材料/%d-材料说明.txt" % e3.json["id"]: "材料说明\n".encode()}
    eq(sorted(names[1:]), sorted(want), "one entry per file, under its row and measure")
    for name, data in want.items():
        eq(z.read(name), data, name)
        check(z.getinfo(name).flag_bits & 0x800, "%s: a UTF-8 name" % name)
    manifest = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode("utf-8-sig"))))
    eq(len(manifest), 3, "one manifest line per file")
    for line in manifest:
        eq(line["SHA-256"], hashlib.sha256(want[line["文件"]]).hexdigest(), "SHA-256 of %s" % line["文件"])
    eq({x["整改措施编号"] for x in manifest}, {str(c.rects[0]["id"]), str(c.rects[1]["id"]), ""}, "rectifications")


@test
def evidence_archive_is_scoped():
    c = Case(n=1)
    add_evidence(ctx.admin, c.rects[0]["id"])
    path = API + "/inspections/%d/evidence-archive" % c.insp["id"]
    expect_problem(dept_user(mk_dept()["id"]).client.get(path), 404, "not-found")
    r = dept_user(c.target["id"]).client.get(path)
    expect_status(r, 200, "the target's user")
    eq(len(zipfile.ZipFile(io.BytesIO(r.body)).namelist()), 2, "the manifest and the file")
    e = mk_inspection(mk_dept()["id"])
    r = export("/inspections/%d/evidence-archive" % e["id"])
    z = zipfile.ZipFile(io.BytesIO(r.body))
    eq(z.namelist(), ["manifest.csv"], "no evidence: the manifest alone")
    eq(z.read("manifest.csv").decode("utf-8-sig").count("\n"), 1, "its header line")


if __name__ == "__main__":
    main()
