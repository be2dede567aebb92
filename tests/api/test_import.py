#!/usr/bin/python3
"""Imports (issue 11): a filled form back into its inspection (XLSX as exported or as a
spreadsheet program saves it, CSV in UTF-8 with or without a BOM, or GB18030), units and users in
bulk; the per-row report and the dry run; export -> import changes nothing; and hostile files (a
zip bomb, an entity bomb, a million rows, a file that is not what its name says): each a clear 4xx
within seconds, with bounded memory and nothing written."""

import csv
import io
import os
import sys
import time
import zipfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, check, ctx, day, db, eq, expect_problem, expect_status, items_of, main,  # noqa: E402
                     mk_dept, mk_inspection, mk_problem, mk_rect, seed_data, test)
from lifecycle_helpers import OWNER_URL, dept_user, inspector, make_pdf, multipart, viewer  # noqa: E402

try:
    import openpyxl
except ImportError:  # pragma: no cover
    print("Bail out! python3-openpyxl is missing (apt-get install python3-openpyxl; run with /usr/bin/python3)")
    sys.exit(1)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LABELS = ["序号", "工作任务", "完成情况", "存在问题", "整改措施", "整改责任主体", "材料提供部门"]


def post_file(path, data, client=None, mode="raw", ctype=XLSX, name="督察表.xlsx", query="", **kw):
    c = client or ctx.admin
    if mode == "multipart":
        body, ct = multipart(name, data, ctype)
        return c.post(API + path + query, body=body, ctype=ct, **kw)
    return c.post(API + path + query, body=data, ctype=ctype, **kw)


def import_form(insp_id, data, **kw):
    return post_file("/inspections/%d/import" % insp_id, data, **kw)


def import_ok(insp_id, data, **kw):
    r = import_form(insp_id, data, **kw)
    expect_status(r, 200, "import")
    return r.json


def form_of(insp_id):
    r = ctx.admin.get(API + "/inspections/%d/form" % insp_id)
    expect_status(r, 200, "read the form")
    return r.json


def fingerprint(insp_id):
    """Everything an import may change, with versions, and the audit events on those records."""
    return db("WITH it AS (SELECT id, version, completion FROM items WHERE inspection_id = %(i)d),"
              " p AS (SELECT p.id, p.version FROM problems p JOIN it ON it.id = p.item_id),"
              " r AS (SELECT r.id, r.version FROM rectifications r JOIN p ON p.id = r.problem_id)"
              " SELECT concat_ws('|', (SELECT string_agg(id || ':' || version || ':' || completion, ',' ORDER BY id) FROM it),"
              " (SELECT string_agg(id || ':' || version, ',' ORDER BY id) FROM p),"
              " (SELECT string_agg(id || ':' || version, ',' ORDER BY id) FROM r),"
              " (SELECT count(*) FROM audit_events a WHERE (a.entity_type = 'item' AND a.entity_id IN (SELECT id FROM it))"
              "   OR (a.entity_type = 'problem' AND a.entity_id IN (SELECT id FROM p))"
              "   OR (a.entity_type = 'rectification' AND a.entity_id IN (SELECT id FROM r))))" % {"i": insp_id})


def export(insp_id, fmt="xlsx"):
    r = ctx.admin.get(API + "/inspections/%d/export?format=%s" % (insp_id, fmt))
    expect_status(r, 200, "export")
    return r.body


def patch_item(item_id, completion):
    r = ctx.admin.patch(API + "/items/%d" % item_id, json={"completion": completion},
                        ctype="application/merge-patch+json", if_match="*")
    expect_status(r, 200)


class Filled:
    """An inspection with row 1 未完成 (two problems, three measures on units A and B) and row 2
    已完成, on fresh units."""

    def __init__(self):
        self.target = mk_dept(name=ctx.uniq("督察对象"))
        self.a, self.b = mk_dept(name=ctx.uniq("责任单位甲")), mk_dept(name=ctx.uniq("责任单位乙"))
        self.insp = mk_inspection(self.target["id"])
        self.items = items_of(self.insp["id"])
        patch_item(self.items[0]["id"], "not_completed")
        patch_item(self.items[1]["id"], "completed")
        self.p1 = mk_problem(self.items[0]["id"], "未公布重大决策意见收集和采纳情况。")
        self.p2 = mk_problem(self.items[0]["id"], "政策解读形式单一，\n图解、视频解读偏少。")
        self.r11 = mk_rect(self.p1["id"], self.a["id"], "建立重大决策预公开制度。", deadline=day(30))
        self.r12 = mk_rect(self.p1["id"], self.b["id"], "按季度公布意见采纳情况。")
        self.r21 = mk_rect(self.p2["id"], self.a["id"], "开展政策解读培训。", deadline=day(60))


def blank_form(target_name, date, rows, title="全面推进政务公开工作督察表"):
    """A form written from scratch by openpyxl, as a spreadsheet program saves one: title, header
    fields, the seven columns, and the rows given ({seq: [completion, problems, measures, units]})
    over the seed's tasks."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "督察表"
    ws.append([title])
    ws.merge_cells("A1:G1")
    ws.append(["督察对象：" + target_name, None, None, None, "督察时间：" + date])
    ws.append(LABELS)
    for task in seed_data()["tasks"]:
        filled = rows.get(task["seq"], [None] * 4)
        ws.append([task["seq"], task["content"]] + list(filled) + ["、".join(task["material_departments"])])
    for ref in ("D", "E", "F"):
        for cell in ws[ref]:
            cell.alignment = openpyxl.styles.Alignment(wrap_text=True)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def errors_of(report, seq=None):
    return [(e["column"], e["number"], e["message"]) for row in report["rows"] if seq is None or row.get("seq") == seq
            for e in row["errors"]]


def row_of(report, seq):
    found = [r for r in report["rows"] if r.get("seq") == seq]
    check(len(found) == 1, "one report row for 序号 %s" % seq)
    return found[0]


# --------------------------------------------------------------------------------------------
# round trips

@test
def export_then_import_changes_nothing():
    f = Filled()
    before = fingerprint(f.insp["id"])
    for fmt, ctype in (("xlsx", XLSX), ("csv", "text/csv")):
        for mode in ("raw", "multipart"):
            rep = import_ok(f.insp["id"], export(f.insp["id"], fmt), mode=mode, ctype=ctype, name="表." + fmt)
            eq((rep["format"], rep["changed"], rep["with_errors"], rep["unchanged"]), (fmt, 0, 0, 38),
               "%s (%s): nothing to change" % (fmt, mode))
            eq(rep["rows_read"], 38, "every row read")
    eq(fingerprint(f.insp["id"]), before, "no record and no audit event changed")


@test
def a_form_filled_by_a_spreadsheet_program_imports():
    target = mk_dept(name=ctx.uniq("督察对象"))
    a, b = mk_dept(name=ctx.uniq("整改单位甲")), mk_dept(name=ctx.uniq("整改单位乙"))
    insp = mk_inspection(target["id"])
    data = blank_form(target["name"], insp["inspected_on"], {
        1: ["未完成", "1. 未建立政务公开目录。\n2. 解读材料未同步发布，\n且无图解。",
            "1.1 编制政务公开目录（时限：%s）\n1.2 建立目录动态更新机制\n2.1 同步发布解读材料（时限：%s）" % (day(20), day(40)),
            "1.1 %s\n1.2 %s\n2.1 %s" % (a["name"], b["name"], a["name"])],
        2: ["已完成", None, None, None],
        3: ["未完成", "未按时公开决策事项", "1.1 限期公开决策事项（时限：%s）" % day(10).replace("-", "/"), b["name"]],
    })
    before = int(db("SELECT coalesce(max(id), 0) FROM audit_events"))
    rep = import_ok(insp["id"], data, mode="multipart")
    eq((rep["format"], rep["changed"], rep["with_errors"], rep["dry_run"]), ("xlsx", 3, 0, False), "report")
    eq([c["action"] + " " + c["what"] + " " + (c["number"] or "") for c in row_of(rep, 1)["changes"]],
       ["updated completion ", "added problem 1", "added problem 2", "added measure 1.1", "added measure 1.2",
        "added measure 2.1"], "row 1's changes")
    rows = form_of(insp["id"])["rows"]
    r1 = rows[0]
    eq(r1["completion"], "not_completed", "completion")
    eq([p["description"] for p in r1["problems"]], ["未建立政务公开目录。", "解读材料未同步发布，\n且无图解。"], "problems")
    eq([[(m["ordinal"], m["measure"], m["deadline"], m["responsible_department"]["id"]) for m in p["rectifications"]]
        for p in r1["problems"]],
       [[(1, "编制政务公开目录", day(20), a["id"]), (2, "建立目录动态更新机制", None, b["id"])],
        [(1, "同步发布解读材料", day(40), a["id"])]], "measures, deadlines, units")
    eq(rows[1]["completion"], "completed", "row 2")
    eq([(p["description"], [(m["measure"], m["deadline"]) for m in p["rectifications"]]) for p in rows[2]["problems"]],
       [("未按时公开决策事项", [("限期公开决策事项", day(10))])], "row 3: an unnumbered problem is 1., a unit without a number is every measure's, 2026/5/1 is a date")
    after = int(db("SELECT count(*) FROM audit_events WHERE id > %d AND request_id NOT LIKE 'job:%%'" % before))
    check(after >= 10, "one audit event per record changed (%d)" % after)
    rep = import_ok(insp["id"], data)
    eq((rep["changed"], rep["with_errors"]), (0, 0), "the same file again changes nothing")


@test
def updates_match_by_number_and_nothing_is_deleted():
    f = Filled()
    wb = openpyxl.load_workbook(io.BytesIO(export(f.insp["id"])))
    ws = wb.active
    ws["C4"] = "已完成"
    ws["D4"] = "2. 政策解读形式单一，图解偏少。"  # problem 1 left out: kept as it is
    ws["E4"] = "1.2 按月公布意见采纳情况。（时限：%s）\n2.1 开展政策解读培训。（时限：%s）\n2.2 制作图解（时限：%s）" % (
        day(15), day(61), day(90))
    ws["F4"] = "1.1 %s\n2.2 %s" % (f.b["name"], f.b["name"])
    buf = io.BytesIO()
    wb.save(buf)
    rep = import_ok(f.insp["id"], buf.getvalue())
    eq(rep["with_errors"], 0, "no errors: %s" % errors_of(rep))
    changes = sorted((c["what"], c["number"], c["action"], c["field"]) for c in row_of(rep, 1)["changes"])
    eq(changes, sorted([("completion", None, "updated", "completion"), ("problem", "2", "updated", "description"),
                        ("measure", "1.1", "updated", "responsible_department"),
                        ("measure", "1.2", "updated", "measure"), ("measure", "1.2", "updated", "deadline"),
                        ("measure", "2.1", "updated", "deadline"), ("measure", "2.2", "added", None)]), "changes")
    r1 = form_of(f.insp["id"])["rows"][0]
    eq(r1["completion"], "completed", "completion")
    eq([p["description"] for p in r1["problems"]], ["未公布重大决策意见收集和采纳情况。", "政策解读形式单一，图解偏少。"],
       "problem 1 kept, problem 2 updated")
    m = {"%d.%d" % (p["ordinal"], x["ordinal"]): x for p in r1["problems"] for x in p["rectifications"]}
    eq(sorted(m), ["1.1", "1.2", "2.1", "2.2"], "no measure deleted")
    eq((m["1.1"]["measure"], m["1.1"]["responsible_department"]["id"], m["1.1"]["deadline"]),
       ("建立重大决策预公开制度。", f.b["id"], day(30)), "1.1: only its unit changed")
    eq((m["1.2"]["measure"], m["1.2"]["deadline"]), ("按月公布意见采纳情况。", day(15)), "1.2")
    eq((m["2.2"]["measure"], m["2.2"]["responsible_department"]["id"]), ("制作图解", f.b["id"]), "2.2 added")


@test
def the_dry_run_reports_the_same_and_writes_nothing():
    f = Filled()
    data = blank_form(f.target["name"], f.insp["inspected_on"], {
        1: ["已完成", None, "1.3 新措施（时限：%s）" % day(9), "1.3 " + f.a["name"]], 4: ["未完成", "新问题", None, None]})
    before = fingerprint(f.insp["id"])
    dry = import_ok(f.insp["id"], data, query="?dry_run=true")
    eq(dry["dry_run"], True, "dry_run")
    eq(fingerprint(f.insp["id"]), before, "nothing written")
    real = import_ok(f.insp["id"], data, query="?dry_run=false")
    eq(real["dry_run"], False, "a real run")
    dry["dry_run"] = False
    eq(dry, real, "the same report")
    check(fingerprint(f.insp["id"]) != before, "written")


@test
def what_cannot_be_read_is_reported_row_by_row():
    f = Filled()
    data = blank_form(f.target["name"], f.insp["inspected_on"], {
        2: ["部分完成", None, None, None],
        3: [None, "1. 问题一", "1.1 措施（时限：2026-02-30）", "1.1 " + f.a["name"]],
        4: [None, "1. 问题", "1.1 措施（时限：%s）" % day(-3), "1.1 " + f.a["name"]],
        5: [None, "1. 问题", "1.1 无单位的措施", None],
        6: [None, "1. 问题", "1.1 措施", "1.1 没有这个单位"],
        7: [None, "1. 问题\n3. 跳号的问题", "2.1 没有问题二的措施", None],
        8: [None, "2. 问题", None, None],
        9: [None, "1. 问题", "1.1 措施\n1.1 重复", "1.1 " + f.a["name"]],
    })
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb.active
    ws.append([99, "不在清单中的一行", "已完成"])
    ws.append([None, "填表说明：本行无序号，不导入"])
    ws.append(["一", None, "已完成"])
    buf = io.BytesIO()
    wb.save(buf)
    before = fingerprint(f.insp["id"])
    rep = import_ok(f.insp["id"], buf.getvalue())
    check(any("部分完成" in e[2] for e in errors_of(rep, 2)), "完成情况 not read: %s" % errors_of(rep, 2))
    check(any(e[1] == "1.1" and "deadline" in e[2] for e in errors_of(rep, 3)), "2026-02-30: %s" % errors_of(rep, 3))
    check(any("before today" in e[2] for e in errors_of(rep, 4)), "a past deadline: %s" % errors_of(rep, 4))
    check(any(e[0] == "整改责任主体" and "responsible unit" in e[2] for e in errors_of(rep, 5)),
          "a new measure without a unit: %s" % errors_of(rep, 5))
    check(any("没有这个单位" in e[2] for e in errors_of(rep, 6)), "an unknown unit: %s" % errors_of(rep, 6))
    check(any("new one is number 2" in e[2] for e in errors_of(rep, 7)) and
          any("no problem 2" in e[2] for e in errors_of(rep, 7)), "numbers out of turn: %s" % errors_of(rep, 7))
    check(any("new one is number 1" in e[2] for e in errors_of(rep, 8)), "problem 2 of none: %s" % errors_of(rep, 8))
    check(any("go up" in e[2] for e in errors_of(rep, 9)), "1.1 twice: %s" % errors_of(rep, 9))
    check(any("no row 99" in e[2] for e in errors_of(rep, 99)), "a row not in the checklist")
    eq([r["seq"] for r in rep["rows"] if r["seq"] is None], [None], "the note is skipped, 一 is reported")
    check(any("cannot read 一" in e[2] for e in errors_of(rep, None)), "a 序号 that is not a number")
    eq(rep["with_errors"], 10, "rows with errors")
    # what could be read was written: the problems of rows 3, 4, 6, 7 (problem 1 only), 9
    rows = form_of(f.insp["id"])["rows"]
    eq([len(rows[i - 1]["problems"]) for i in (3, 4, 5, 6, 7, 8, 9)], [1, 1, 1, 1, 1, 0, 1], "problems written")
    eq(sum(len(p["rectifications"]) for i in (3, 4, 5, 6, 7, 8, 9) for p in rows[i - 1]["problems"]), 0,
       "no measure that could not be read")
    eq(rows[1]["completion"], "completed", "row 2 kept its completion")
    check(fingerprint(f.insp["id"]) != before, "the rest was written")


@test
def csv_in_utf8_with_or_without_a_bom_and_in_gb18030():
    f = Filled()
    text = export(f.insp["id"], "csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    rows[4][2] = "未完成"  # row 序号 2
    rows[5][3] = "公开栏信息陈旧"
    rows[5][4] = "1.1 更新公开栏（时限：%s）" % day(12)
    rows[5][5] = "1.1 " + f.b["name"]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    body = out.getvalue()
    for label, data, encoding in (("GB18030", body.encode("gb18030"), "GB18030"),
                                  ("UTF-8 without BOM", body.encode("utf-8"), "UTF-8"),
                                  ("UTF-8 with BOM", b"\xef\xbb\xbf" + body.encode("utf-8"), "UTF-8")):
        rep = import_ok(f.insp["id"], data, ctype="text/csv", query="?dry_run=true")
        eq((rep["format"], rep["encoding"], rep["changed"], rep["with_errors"]), ("csv", encoding, 2, 0), label)
    check(body.encode("gb18030") != body.encode("utf-8"), "the GB18030 file is not UTF-8")
    import_ok(f.insp["id"], body.encode("gb18030"), ctype="text/csv")
    rows = form_of(f.insp["id"])["rows"]
    eq((rows[1]["completion"], rows[2]["problems"][0]["description"],
        rows[2]["problems"][0]["rectifications"][0]["responsible_department"]["id"]),
       ("not_completed", "公开栏信息陈旧", f.b["id"]), "written from GB18030")


@test
def only_staff_on_an_editable_inspection_of_the_same_unit():
    f = Filled()
    data = export(f.insp["id"])
    for who in (dept_user(f.target["id"]), viewer()):
        expect_problem(import_form(f.insp["id"], data, client=who.client), 403, "forbidden")
    rep = import_ok(f.insp["id"], data, client=inspector().client)
    eq(rep["changed"], 0, "an inspector imports")
    expect_problem(import_form(999999999, data), 404, "not-found")
    other = mk_inspection(mk_dept()["id"])
    r = expect_problem(import_form(other["id"], data), 400, "validation-failed", pointers=["/file"])
    check(f.target["name"] in r["detail"], "the form of another unit is refused: %s" % r["detail"])
    expect_status(ctx.admin.post(API + "/inspections/%d/start" % f.insp["id"], json={}), 200)
    expect_status(ctx.admin.post(API + "/inspections/%d/submit" % f.insp["id"], json={}), 409)  # r12 has no deadline
    expect_status(ctx.admin.patch(API + "/rectifications/%d" % f.r12["id"], json={"deadline": day(30)},
                                  ctype="application/merge-patch+json", if_match="*"), 200)
    expect_status(ctx.admin.post(API + "/inspections/%d/submit" % f.insp["id"], json={}), 200)
    expect_problem(import_form(f.insp["id"], data), 409, "frozen")


@test
def idempotency_key_replays_an_import():
    f = Filled()
    data = blank_form(f.target["name"], f.insp["inspected_on"], {5: ["已完成", None, None, None]})
    key = ctx.uniq("import-key")
    r1 = import_form(f.insp["id"], data, headers={"Idempotency-Key": key})
    expect_status(r1, 200)
    r2 = import_form(f.insp["id"], data, headers={"Idempotency-Key": key})
    expect_status(r2, 200)
    eq(r2.h("Idempotent-Replayed"), "true", "replayed")
    eq(r2.json, r1.json, "the first report")


# --------------------------------------------------------------------------------------------
# hostile files

def rss_anon_kib():
    with open("/proc/%d/status" % ctx.server.proc.pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def minimal_xlsx(sheet_xml, extra=None, entries=None):
    """A workbook's zip with the given sheet part (bytes or an iterable of chunks)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
                   ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
                   '<sheet name="s" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"'
                   ' Target="worksheets/sheet1.xml"/></Relationships>')
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=False) as w:
            for chunk in ([sheet_xml] if isinstance(sheet_xml, bytes) else sheet_xml):
                w.write(chunk)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def bomb_chunks(mib):
    yield b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    block = b" " * (1 << 20)
    for _ in range(mib):
        yield block
    yield b"</sheetData></worksheet>"


def lying_sizes(data):
    """The zip with the sheet's uncompressed size said to be 1,000 bytes, in its local header and its
    central directory."""
    b = bytearray(data)
    name = b"xl/worksheets/sheet1.xml"
    for sig, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        i = 0
        while (i := b.find(sig, i)) >= 0:
            if b[i + name_at:i + name_at + len(name)] == name:
                b[i + size_at:i + size_at + 4] = (1000).to_bytes(4, "little")
            i += 4
    return bytes(b)


ENTITY_BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
               + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                          for i in range(1, 10))
               + b']>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                 b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>')

EXTERNAL_ENTITY = (b'<?xml version="1.0"?>\n<!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                   b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                   b'<row r="1"><c r="A1" t="inlineStr"><is><t>&x;</t></is></c></row></sheetData></worksheet>')


def million_rows():
    yield b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    row = b"<row><c><v>1</v></c></row>"
    for _ in range(1000):
        yield row * 1000
    yield b"</sheetData></worksheet>"


def hostile_files():
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    bomb = minimal_xlsx(bomb_chunks(512))
    return [
        ("a zip bomb (512 MiB of XML in %d KiB)" % (len(bomb) // 1024), bomb, 413, "body-too-large"),
        ("a zip bomb whose directory lies about its size", lying_sizes(minimal_xlsx(bomb_chunks(256))), None, None),
        ("an XML entity bomb (billion laughs)", minimal_xlsx(ENTITY_BOMB), 400, "validation-failed"),
        ("an external entity", minimal_xlsx(EXTERNAL_ENTITY), 400, "validation-failed"),
        ("an entity bomb in the shared strings", minimal_xlsx(b"<worksheet><sheetData/></worksheet>",
                                                              {"xl/sharedStrings.xml": ENTITY_BOMB}), 400,
         "validation-failed"),
        ("a sheet of 1,000,000 rows", minimal_xlsx(million_rows()), 413, "body-too-large"),
        ("a CSV of 1,000,000 rows", b"1,x\n" * 1000000, 413, "body-too-large"),
        ("a PDF named .xlsx", make_pdf("not a sheet"), 415, "unsupported-media-type"),
        ("a Word document named .xlsx", docx.getvalue(), 415, "unsupported-media-type"),
        ("a legacy .xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, 415, "unsupported-media-type"),
        ("UTF-16 text", "序号,工作任务\n1,x\n".encode("utf-16"), 415, "unsupported-media-type"),
        ("binary data", bytes(range(256)) * 64, 415, "unsupported-media-type"),
        ("a truncated zip", minimal_xlsx(b"<worksheet/>")[:200], 400, "validation-failed"),
        ("XML that is not well-formed", minimal_xlsx(b"<worksheet><sheetData><row>"), 400, "validation-failed"),
    ]


@test
def hostile_files_are_refused_quickly_with_bounded_memory_and_nothing_written():
    f = Filled()
    before = fingerprint(f.insp["id"])
    rss0 = rss_anon_kib()
    peak = rss0
    for label, data, status, slug in hostile_files():
        t0 = time.monotonic()
        for path in ("/inspections/%d/import" % f.insp["id"], "/departments/import", "/users/import"):
            r = post_file(path, data, name="督察表.xlsx", timeout=30)
            if status:
                expect_problem(r, status, slug)
            else:
                check(400 <= r.status < 500, "%s: a 4xx, got %d" % (label, r.status))
            check(r.json.get("detail"), "%s: the problem says why" % label)
        took = time.monotonic() - t0
        check(took < 10, "%s: answered within seconds (%.1f s for three)" % (label, took))
        peak = max(peak, rss_anon_kib())
        sys.stdout.write("# %s: %d %s (%.2f s for three routes)\n" % (label, r.status, r.json["detail"][:90], took))
    eq(fingerprint(f.insp["id"]), before, "nothing written")
    grew = (peak - rss0) / 1024
    sys.stdout.write("# server RssAnon %d KiB before, %d KiB at most after each file (+%.1f MiB)\n" % (rss0, peak, grew))
    check(grew < 96, "memory stays bounded: +%.1f MiB" % grew)


# --------------------------------------------------------------------------------------------
# units and users in bulk

def units_csv(rows):
    return ("名称,上级单位,类型\r\n" + "".join(",".join(r) + "\r\n" for r in rows)).encode("utf-8")


@test
def units_import_with_parents_by_name_or_path_in_any_order():
    top, office = ctx.uniq("示范县"), ctx.uniq("办公室")
    rows = [[office, top + "/财政局", ""], [top, "", "部门"], ["财政局", top, ""], [office, top, ""],
            ["股室", top + "/财政局/" + office, ""], ["孙单位", ctx.uniq("不存在"), ""], [ctx.uniq("重点组"), "", "分组"],
            [office, top, ""], ["某局", office, ""], ["坏类型", top, "委员会"]]
    data = units_csv(rows)
    dry = post_file("/departments/import", data, ctype="text/csv", query="?dry_run=true")
    expect_status(dry, 200)
    eq(db("SELECT count(*) FROM departments WHERE name = '%s'" % top), "0", "the dry run wrote nothing")
    r = post_file("/departments/import", data, ctype="text/csv")
    expect_status(r, 200)
    rep = r.json
    dry.json["dry_run"] = False
    eq(dry.json, rep, "the dry run reported the same")
    eq([x["result"] for x in rep["rows"]],
       ["changed", "changed", "changed", "changed", "changed", "error", "changed", "error", "error", "error"], "results")
    check("several units are named " + office in rep["rows"][8]["errors"][0]["message"], "an ambiguous parent")
    check("row 5" in rep["rows"][7]["errors"][0]["message"], "a unit named twice in the file")
    tree = db("WITH RECURSIVE t(id, path) AS (SELECT id, name FROM departments WHERE name = '%s' AND parent_id IS NULL"
              " UNION ALL SELECT d.id, t.path || '/' || d.name FROM departments d JOIN t ON d.parent_id = t.id)"
              " SELECT string_agg(path, ',' ORDER BY path) FROM t" % top)
    eq(tree.split(","), sorted([top, top + "/" + office, top + "/财政局", top + "/财政局/" + office,
                                top + "/财政局/%s/股室" % office]), "the tree")
    events = db("SELECT count(*) FROM audit_events WHERE action = 'create' AND entity_type = 'department'"
                " AND after->>'name' IN ('%s', '%s', '财政局', '股室') AND occurred_at > now() - interval '1 minute'"
                % (top, office))
    check(int(events) >= 5, "one audit event per unit (%s)" % events)
    again = post_file("/departments/import", units_csv(rows[:5]), ctype="text/csv")
    expect_status(again, 200)
    eq((again.json["changed"], again.json["unchanged"]), (0, 5), "imported again: nothing new")


@test
def users_import_creates_and_updates_and_never_touches_a_password():
    unit = mk_dept(name=ctx.uniq("导入单位"))
    u1, u2, u3 = ("imp_%s_%d" % (ctx.prefix, i) for i in range(3))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["用户名", "姓名", "角色", "所属单位", "初始密码"])
    ws.append([u1, "联络员", "部门用户", unit["name"], "Init-pass-1"])
    ws.append([u2, "督察员甲", "督察员", None, "Init-pass-2"])
    ws.append([u3, "无单位", "department", None, "Init-pass-3"])
    ws.append(["bad name", "x", "viewer", None, "Init-pass-4"])
    ws.append([u1, "重复", None, None, None])
    buf = io.BytesIO()
    wb.save(buf)
    r = post_file("/users/import", buf.getvalue())
    expect_status(r, 200)
    eq(r.headers.get("Cache-Control"), "no-store", "no-store")
    check("Init-pass" not in r.body.decode(), "no password in the report")
    eq([x["result"] for x in r.json["rows"]], ["changed", "changed", "error", "error", "error"], "results")
    tok = ctx.admin.post(API + "/auth/token", json={"username": u1, "password": "Init-pass-1"}, token=None)
    expect_status(tok, 201, "the new user logs in")
    eq((tok.json["user"]["role"], tok.json["user"]["department_id"]), ("department", unit["id"]), "its role and unit")
    ws2 = openpyxl.Workbook()
    s2 = ws2.active
    s2.append(["用户名", "姓名", "角色", "初始密码"])
    s2.append([u2, "督察员乙", "viewer", None])
    s2.append([u1, None, None, "New-pass-9"])
    buf = io.BytesIO()
    ws2.save(buf)
    r = post_file("/users/import", buf.getvalue())
    expect_status(r, 200)
    eq([x["result"] for x in r.json["rows"]], ["changed", "error"], "an update, and a password refused")
    check("password" in r.json["rows"][1]["errors"][0]["message"], "why")
    eq(db("SELECT display_name || ',' || role FROM users WHERE username = '%s'" % u2), "督察员乙,viewer", "updated")
    tok = ctx.admin.post(API + "/auth/token", json={"username": u1, "password": "Init-pass-1"}, token=None)
    expect_status(tok, 201, "the old password still works")
    expect_problem(post_file("/users/import", buf.getvalue(), client=inspector().client), 403, "forbidden")


if __name__ == "__main__":
    main()
