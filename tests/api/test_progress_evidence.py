#!/usr/bin/python3
"""Progress updates (整改进展) and evidence (佐证材料): percent rules, time order, uploads by
multipart and raw body, binary round trips (PDF, JPEG), content checks (415), the size limit
(413), empty files, scoping of uploads and downloads."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, check, ctx, eq, expect_problem, expect_status, main, test)  # noqa: E402
from lifecycle_helpers import (ELF, EVIDENCE_KEYS, JPEG, PE, Case, act_ok, add_evidence, drive,  # noqa: E402
                               filename_star, get_rect, inspector, make_pdf, rpath, sha256, stored_files_named,
                               upload, viewer)

PROGRESS_KEYS = sorted(["id", "rectification_id", "note", "percent", "reason", "author", "created_at", "evidence"])


def progress(client, rid, **body):
    return client.post(rpath(rid, "progress"), json=body)


def progress_list(client, rid):
    return client.list_all(rpath(rid, "progress"))


def evidence_list(client, rid):
    return client.list_all(rpath(rid, "evidence"))


def check_download(client, ev, data, filename, ctype):
    r = client.get(API + "/evidence/%d/content" % ev["id"])
    expect_status(r, 200, "download")
    eq(len(r.body), len(data), "downloaded size")
    check(r.body == data, "the downloaded bytes differ from the uploaded ones")
    eq((r.h("Content-Type") or "").split(";")[0].strip().lower(), ctype, "Content-Type of the download")
    cd = r.h("Content-Disposition") or ""
    eq(cd.split(";")[0].strip().lower(), "attachment", "Content-Disposition %r" % cd)
    eq(filename_star(cd), filename, "filename* of %r" % cd)
    eq(r.h("X-Content-Type-Options"), "nosniff")
    eq(r.h("ETag"), '"%s"' % sha256(data), "ETag is the SHA-256")
    return r


def check_metadata(ev, data, filename, ctype, uploader):
    eq(sorted(ev), EVIDENCE_KEYS, "evidence properties")
    eq((ev["filename"], ev["content_type"], ev["size"], ev["sha256"], ev["uploaded_by"]),
       (filename, ctype, len(data), sha256(data), uploader.ref))
    check(UTC_DATETIME_RE.match(ev["uploaded_at"] or ""), "uploaded_at %r" % ev["uploaded_at"])


# progress ----------------------------------------------------------------------------------

@test
def progress_update_is_recorded():
    c = Case()
    dep = c.dept()
    act_ok(dep.client, c.id, "start")
    r = progress(dep.client, c.id, note="已完成目录编制，正在审核", percent=30)
    expect_status(r, 201)
    p = r.json
    eq(r.h("Location"), API + "/progress/%d" % p["id"])
    eq(sorted(p), PROGRESS_KEYS, "progress properties")
    eq((p["rectification_id"], p["note"], p["percent"], p["reason"], p["author"], p["evidence"]),
       (c.id, "已完成目录编制，正在审核", 30, None, dep.ref, []))
    check(UTC_DATETIME_RE.match(p["created_at"] or ""), "created_at %r" % p["created_at"])
    g = dep.client.get(API + "/progress/%d" % p["id"])
    expect_status(g, 200)
    eq(g.json, p, "GET /progress/{id}")
    eq(progress_list(ctx.admin, c.id), [p])


@test
def percent_must_be_0_to_100():
    c = Case()
    dep = c.dept()
    act_ok(dep.client, c.id, "start")
    for body, ptr in (({"note": "x", "percent": 150}, "/percent"), ({"note": "x", "percent": -1}, "/percent"),
                      ({"note": "x", "percent": 101}, "/percent"), ({"note": "x", "percent": "50"}, "/percent"),
                      ({"note": "x"}, "/percent"), ({"percent": 10}, "/note"), ({"note": "", "percent": 10}, "/note"),
                      ({"note": "进" * 2001, "percent": 10}, "/note")):
        expect_problem(progress(dep.client, c.id, **body), 400, "validation-failed", pointers=[ptr])
    eq(progress_list(ctx.admin, c.id), [], "nothing written")
    for pct in (0, 100):
        expect_status(progress(dep.client, c.id, note="边界%d" % pct, percent=pct), 201)


@test
def lower_percent_needs_a_reason_and_the_list_is_in_time_order():
    c = Case()
    dep, ins = c.dept(), inspector(1)
    act_ok(dep.client, c.id, "start")
    expect_status(progress(dep.client, c.id, note="第一次", percent=60), 201)
    expect_status(progress(ins.client, c.id, note="督察组核实", percent=60), 201)
    r = progress(dep.client, c.id, note="发现返工", percent=40)
    expect_problem(r, 400, "validation-failed", pointers=["/reason"])
    r = progress(dep.client, c.id, note="发现返工", percent=40, reason="")
    expect_problem(r, 400, "validation-failed", pointers=["/reason"])
    eq(len(progress_list(ctx.admin, c.id)), 2, "nothing written")
    r = progress(dep.client, c.id, note="发现返工", percent=40, reason="部分材料需重新公开")
    expect_status(r, 201)
    eq(r.json["reason"], "部分材料需重新公开")
    expect_status(progress(dep.client, c.id, note="全部完成", percent=100), 201)
    ps = progress_list(dep.client, c.id)
    eq([(p["note"], p["percent"]) for p in ps], [("第一次", 60), ("督察组核实", 60), ("发现返工", 40), ("全部完成", 100)],
       "progress in time order")
    eq([p["author"] for p in ps], [dep.ref, ins.ref, dep.ref, dep.ref])
    check(all(ps[i]["created_at"] <= ps[i + 1]["created_at"] for i in range(len(ps) - 1)), "created_at order")


@test
def no_progress_once_submitted():
    c = Case()
    dep = c.dept()
    drive(c.id, "submitted", dep.client)
    n = len(progress_list(ctx.admin, c.id))
    r = progress(dep.client, c.id, note="提交后补充", percent=100)
    expect_problem(r, 409, "invalid-transition")
    drive_close = act_ok(inspector(1).client, c.id, "close", {"opinion": "同意"})
    eq(drive_close["status"], "closed")
    expect_problem(progress(ctx.admin, c.id, note="销号后补充", percent=100), 409, "invalid-transition")
    eq(len(progress_list(ctx.admin, c.id)), n, "nothing written")


@test
def progress_scoping():
    c = Case()
    outsider = Case().dept()
    r = progress(outsider.client, c.id, note="越权", percent=10)
    expect_problem(r, 404, "not-found")
    expect_problem(progress(viewer().client, c.id, note="只读", percent=10), 403, "forbidden")
    expect_problem(outsider.client.get(rpath(c.id, "progress")), 404, "not-found")
    eq(progress_list(ctx.admin, c.id), [])
    p = progress(c.parent_user().client, c.id, note="上级单位填报", percent=10)
    expect_status(p, 201)
    expect_problem(outsider.client.get(API + "/progress/%d" % p.json["id"]), 404, "not-found")


# evidence ----------------------------------------------------------------------------------

@test
def multipart_pdf_round_trip():
    c = Case()
    dep = c.dept()
    pdf = make_pdf("rectification report")
    name = "整改报告（%s）.pdf" % ctx.uniq("第一批")
    r = upload(dep.client, "/rectifications/%d/evidence" % c.id, pdf, name, "application/pdf", mode="multipart")
    expect_status(r, 201, "multipart upload")
    ev = r.json
    eq(r.h("Location"), API + "/evidence/%d" % ev["id"])
    check_metadata(ev, pdf, name, "application/pdf", dep)
    eq((ev["rectification_id"], ev["progress_id"], ev["item_id"]), (c.id, None, None))
    g = dep.client.get(API + "/evidence/%d" % ev["id"])
    expect_status(g, 200)
    eq(g.json, ev, "GET /evidence/{id}")
    check_download(dep.client, ev, pdf, name, "application/pdf")
    check_download(ctx.admin, ev, pdf, name, "application/pdf")
    eq(get_rect(ctx.admin, c.id)["evidence_count"], 1)
    eq([e["id"] for e in evidence_list(dep.client, c.id)], [ev["id"]])


@test
def raw_jpeg_round_trip_with_a_chinese_filename():
    c = Case()
    dep = c.dept()
    name = "整改照片 “公开栏” %s.jpg" % ctx.uniq("现场")
    r = upload(dep.client, "/rectifications/%d/evidence" % c.id, JPEG, name, "image/jpeg")
    expect_status(r, 201, "raw upload")
    ev = r.json
    check_metadata(ev, JPEG, name, "image/jpeg", dep)
    check_download(dep.client, ev, JPEG, name, "image/jpeg")
    # a plain filename="..." works too
    r = dep.client.post(API + "/rectifications/%d/evidence" % c.id, body=JPEG, ctype="image/jpeg",
                        headers={"Content-Disposition": 'attachment; filename="photo-2.jpg"'})
    expect_status(r, 201)
    eq(r.json["filename"], "photo-2.jpg")
    eq([e["id"] for e in evidence_list(ctx.admin, c.id)], [ev["id"], r.json["id"]], "upload order")


@test
def text_and_a_file_over_the_json_body_limit_are_accepted():
    c = Case()
    dep = c.dept()
    text = "整改说明：\r\n一、已在门户网站公开。\n二、已开展培训。\n".encode("utf-8")
    name = ctx.uniq("说明") + ".txt"
    r = upload(dep.client, "/rectifications/%d/evidence" % c.id, text, name, "text/plain; charset=utf-8")
    expect_status(r, 201)
    check(r.json["content_type"].split(";")[0] == "text/plain", "content_type %r" % r.json["content_type"])
    d = dep.client.get(API + "/evidence/%d/content" % r.json["id"])
    expect_status(d, 200)
    check(d.body == text, "text round trip")
    # 3 MiB: larger than DUCHA_BODY_LIMIT (1 MiB, for JSON) but within the 20 MiB upload limit
    big = make_pdf("big") + bytes(i * 7 % 256 for i in range(256)) * (3 * 4096)
    name = ctx.uniq("扫描件") + ".pdf"
    r = upload(dep.client, "/rectifications/%d/evidence" % c.id, big, name, "application/pdf", mode="multipart",
               timeout=60)
    expect_status(r, 201, "a 3 MiB PDF")
    eq((r.json["size"], r.json["sha256"]), (len(big), sha256(big)))
    check_download(dep.client, r.json, big, name, "application/pdf")


@test
def executable_renamed_pdf_is_415_and_nothing_is_stored():
    c = Case()
    dep = c.dept()
    cases = [(ELF, "raw", "application/pdf"), (PE, "multipart", "application/pdf"),
             (ELF, "multipart", "application/octet-stream"), (PE, "raw", "application/x-msdownload")]
    names = []
    for data, mode, ct in cases:
        name = ctx.uniq("x") + ".pdf"
        names.append(name)
        r = upload(dep.client, "/rectifications/%d/evidence" % c.id, data, name, ct, mode=mode)
        expect_problem(r, 415, "unsupported-media-type")
    eq(evidence_list(ctx.admin, c.id), [], "evidence list")
    eq(get_rect(ctx.admin, c.id)["evidence_count"], 0)
    eq(sum(stored_files_named(n) for n in names), 0, "rows stored for refused files")


@test
def upload_over_the_limit_is_413_and_nothing_is_stored():
    c = Case()
    dep = c.dept()
    huge = make_pdf("huge") + b"\0" * (25 * 1024 * 1024)
    name = ctx.uniq("超大文件") + ".pdf"
    r = upload(dep.client, "/rectifications/%d/evidence" % c.id, huge, name, "application/pdf", timeout=120)
    expect_problem(r, 413, "body-too-large")
    eq(evidence_list(ctx.admin, c.id), [])
    eq(get_rect(ctx.admin, c.id)["evidence_count"], 0)
    eq(stored_files_named(name), 0, "rows stored for the refused file")
    # the server is fine afterwards
    add_evidence(dep.client, c.id)
    eq(get_rect(ctx.admin, c.id)["evidence_count"], 1)


@test
def empty_file_is_400():
    c = Case()
    dep = c.dept()
    name = ctx.uniq("空") + ".pdf"
    r = upload(dep.client, "/rectifications/%d/evidence" % c.id, b"", name, "application/pdf")
    expect_problem(r, 400)
    r = upload(dep.client, "/rectifications/%d/evidence" % c.id, b"", name, "application/pdf", mode="multipart")
    expect_problem(r, 400)
    eq(evidence_list(ctx.admin, c.id), [])
    eq(stored_files_named(name), 0)


@test
def upload_into_another_units_rectification_is_404():
    c = Case()
    outsider = Case().dept()
    name = ctx.uniq("越权上传") + ".pdf"
    for mode in ("raw", "multipart"):
        r = upload(outsider.client, "/rectifications/%d/evidence" % c.id, make_pdf(), name, "application/pdf",
                   mode=mode)
        expect_problem(r, 404, "not-found")
    expect_problem(upload(viewer().client, "/rectifications/%d/evidence" % c.id, make_pdf(), name,
                          "application/pdf"), 403, "forbidden")
    eq(evidence_list(ctx.admin, c.id), [])
    eq(stored_files_named(name), 0)


@test
def evidence_on_an_item():
    c = Case(submit=False)
    ins = inspector(1)
    pdf, jpg = make_pdf("item material"), JPEG
    n1, n2 = ctx.uniq("材料") + ".pdf", ctx.uniq("材料图片") + ".jpg"
    r1 = upload(ins.client, "/items/%d/evidence" % c.item["id"], pdf, n1, "application/pdf", mode="multipart")
    expect_status(r1, 201)
    r2 = upload(ins.client, "/items/%d/evidence" % c.item["id"], jpg, n2, "image/jpeg")
    expect_status(r2, 201)
    check_metadata(r1.json, pdf, n1, "application/pdf", ins)
    eq((r1.json["item_id"], r1.json["rectification_id"], r1.json["progress_id"]), (c.item["id"], None, None))
    lst = ctx.admin.list_all(API + "/items/%d/evidence" % c.item["id"])
    eq([e["id"] for e in lst], [r1.json["id"], r2.json["id"]], "item evidence in upload order")
    check_download(ins.client, r2.json, jpg, n2, "image/jpeg")
    eq(ctx.admin.list_all(API + "/items/%d/evidence" % c.items[1]["id"]), [], "another item has none")


@test
def evidence_on_a_progress_update():
    c = Case()
    dep = c.dept()
    act_ok(dep.client, c.id, "start")
    p = progress(dep.client, c.id, note="附件见扫描件", percent=50)
    expect_status(p, 201)
    pdf = make_pdf("progress")
    name = ctx.uniq("进展附件") + ".pdf"
    ev = add_evidence(dep.client, c.id, pdf, name, progress_id=p.json["id"])
    eq(ev["progress_id"], p.json["id"])
    g = dep.client.get(API + "/progress/%d" % p.json["id"])
    expect_status(g, 200)
    eq(g.json["evidence"], [{"id": ev["id"], "filename": name, "content_type": "application/pdf", "size": len(pdf),
                             "sha256": sha256(pdf)}])
    eq([x["evidence"] for x in progress_list(ctx.admin, c.id)], [g.json["evidence"]])
    check_download(dep.client, ev, pdf, name, "application/pdf")
    # a progress update of another rectification is refused, nothing stored
    other = Case(responsible=c.resp)
    act_ok(dep.client, other.id, "start")
    op = progress(dep.client, other.id, note="另一项", percent=10)
    expect_status(op, 201)
    bad = ctx.uniq("错配") + ".pdf"
    r = upload(dep.client, "/rectifications/%d/evidence?progress_id=%d" % (c.id, op.json["id"]), pdf, bad,
               "application/pdf")
    check(r.status in (400, 404), "progress_id of another rectification: status %d" % r.status)
    expect_problem(r, r.status)
    eq(stored_files_named(bad), 0)


@test
def downloads_are_scoped():
    c = Case()
    dep = c.dept()
    ev = add_evidence(dep.client, c.id)
    outsider = Case().dept()
    expect_problem(outsider.client.get(API + "/evidence/%d" % ev["id"]), 404, "not-found")
    r = outsider.client.get(API + "/evidence/%d/content" % ev["id"])
    expect_problem(r, 404, "not-found")
    check(b"%PDF" not in r.body, "the 404 leaks the file")
    expect_problem(outsider.client.get(rpath(c.id, "evidence")), 404, "not-found")
    expect_status(viewer().client.get(API + "/evidence/%d/content" % ev["id"]), 200)
    expect_status(c.parent_user().client.get(API + "/evidence/%d/content" % ev["id"]), 200)
    expect_problem(ctx.admin.get(API + "/evidence/987654321/content"), 404, "not-found")


@test
def no_rectification_evidence_once_submitted():
    c = Case()
    dep = c.dept()
    drive(c.id, "submitted", dep.client)
    n = get_rect(ctx.admin, c.id)["evidence_count"]
    name = ctx.uniq("提交后") + ".pdf"
    r = upload(dep.client, "/rectifications/%d/evidence" % c.id, make_pdf(), name, "application/pdf")
    expect_problem(r, 409, slugs=["invalid-transition", "conflict", "frozen"])
    eq(get_rect(ctx.admin, c.id)["evidence_count"], n)
    eq(stored_files_named(name), 0)


if __name__ == "__main__":
    main()
