#!/usr/bin/python3
"""Issue 4's "done means": the whole flow through the API with real users of each role —
inspection → problem → measure → the department adds progress with a PDF → submits → an
inspector rejects → the department resubmits → another inspector closes → the inspection closes
itself → the admin revokes → it reopens — with bad input along the way answered by a clear 4xx
that writes nothing."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, check, ctx, day, eq, expect_problem, expect_status, main, mk_dept, test)  # noqa: E402
from lifecycle_helpers import (ELF, audit, dept_user, filename_star, get_rect, inspector, make_pdf, rpath,  # noqa: E402
                               sha256, stored_files_named, upload)

TRANSITIONS = {"start", "submit", "close", "reject", "request-extension", "extend", "refuse-extension", "reassign",
               "urge", "revoke"}


def ok(r, status, what):
    expect_status(r, status, what)
    return r.json


def etag(client, rid):
    r = client.get(rpath(rid))
    expect_status(r, 200)
    return r.etag


def insp_status(iid):
    r = ctx.admin.get(API + "/inspections/%d" % iid)
    expect_status(r, 200)
    return r.json["status"]


@test
def rectification_to_closure_and_back():
    # people and units
    county = mk_dept(name=ctx.uniq("某某县人民政府"))
    office = mk_dept(name=ctx.uniq("县政务服务中心"))
    other = mk_dept(name=ctx.uniq("县统计局"))
    insp_a, insp_b = inspector("A"), inspector("B")
    d_office, d_other = dept_user(office["id"]), dept_user(other["id"])
    a, b, dep = insp_a.client, insp_b.client, d_office.client

    # inspector A: inspection, finding, measure
    insp = ok(a.post(API + "/inspections", json={"target_department_id": county["id"], "inspected_on": day(-1),
                                                 "title": ctx.uniq("政务公开督察"), "inspectors": ["王五", "赵六"]}),
              201, "create inspection")
    ok(a.post(API + "/inspections/%d/start" % insp["id"], json={}), 200, "start inspection")
    item = a.list_all(API + "/inspections/%d/items" % insp["id"])[2]
    ok(a.patch(API + "/items/%d" % item["id"], json={"completion": "not_completed"}, if_match="*"), 200, "item")
    prob = ok(a.post(API + "/items/%d/problems" % item["id"], json={"description": "政务服务事项办事指南未公开"}),
              201, "problem")
    rp = API + "/problems/%d/rectifications" % prob["id"]
    r = a.post(rp, json={"measure": "全面公开办事指南", "responsible_department_id": office["id"],
                         "deadline": day(-1)})
    expect_problem(r, 400, "validation-failed", pointers=["/deadline"])
    eq(a.list_all(rp), [], "a deadline in the past wrote nothing")
    rect = ok(a.post(rp, json={"measure": "全面公开办事指南", "responsible_department_id": office["id"],
                               "deadline": day(30)}), 201, "measure")
    rid = rect["id"]
    ok(a.post(API + "/inspections/%d/submit" % insp["id"], json={}), 200, "submit inspection")
    eq(insp_status(insp["id"]), "submitted")

    # another unit's rectification, for the cross-unit upload below
    insp2 = ok(a.post(API + "/inspections", json={"target_department_id": county["id"], "inspected_on": day(-1),
                                                  "title": ctx.uniq("另一次督察")}), 201, "inspection 2")
    ok(a.post(API + "/inspections/%d/start" % insp2["id"], json={}), 200, "start 2")
    item2 = a.list_all(API + "/inspections/%d/items" % insp2["id"])[0]
    p2 = ok(a.post(API + "/items/%d/problems" % item2["id"], json={"description": "统计数据未公开"}), 201, "problem 2")
    rect_other = ok(a.post(API + "/problems/%d/rectifications" % p2["id"],
                           json={"measure": "按时公开统计数据", "responsible_department_id": other["id"],
                                 "deadline": day(20)}), 201, "other unit's measure")

    # the department sees its rectification; an action out of order writes nothing
    x = get_rect(dep, rid)
    eq((x["status"], x["responsible_department"]["id"], sorted(x["allowed_transitions"])),
       ("pending", office["id"], ["request-extension", "start"]))
    tag = etag(ctx.admin, rid)
    r = dep.post(rpath(rid, "submit"), json={})
    expect_problem(r, 409, "invalid-transition")
    eq(sorted(r.json["allowed_transitions"]), ["request-extension", "start"])
    expect_problem(b.post(rpath(rid, "close"), json={"opinion": "未提交就销号"}), 409, "invalid-transition")
    eq(etag(ctx.admin, rid), tag, "the out-of-order actions wrote nothing")

    x = ok(dep.post(rpath(rid, "start"), json={"note": "已部署整改"}), 200, "start")
    eq(x["status"], "in_progress")

    # progress: 150 is refused, 50 with a PDF is kept
    r = dep.post(rpath(rid, "progress"), json={"note": "进度", "percent": 150})
    expect_problem(r, 400, "validation-failed", pointers=["/percent"])
    eq(dep.list_all(rpath(rid, "progress")), [], "percent 150 wrote nothing")
    pr = ok(dep.post(rpath(rid, "progress"), json={"note": "已公开办事指南清单（第一批）", "percent": 50}), 201,
            "progress")
    pdf = make_pdf("guide list")
    pdf_name = "办事指南公开截图%s.pdf" % ctx.uniq("")
    r = upload(dep, "/rectifications/%d/evidence?progress_id=%d" % (rid, pr["id"]), pdf, pdf_name,
               "application/pdf", mode="multipart")
    ev = ok(r, 201, "upload the PDF")
    eq((ev["progress_id"], ev["size"], ev["sha256"]), (pr["id"], len(pdf), sha256(pdf)))

    # bad uploads: too large, an executable renamed .pdf, another unit's rectification
    before = get_rect(ctx.admin, rid)["evidence_count"]
    big_name = ctx.uniq("超大") + ".pdf"
    r = upload(dep, "/rectifications/%d/evidence" % rid, b"%PDF-1.4\n" + b"\0" * (25 * 1024 * 1024), big_name,
               "application/pdf", timeout=120)
    expect_problem(r, 413, "body-too-large")
    exe_name = ctx.uniq("报告") + ".pdf"
    expect_problem(upload(dep, "/rectifications/%d/evidence" % rid, ELF, exe_name, "application/pdf"), 415,
                   "unsupported-media-type")
    cross_name = ctx.uniq("越权") + ".pdf"
    expect_problem(upload(dep, "/rectifications/%d/evidence" % rect_other["id"], pdf, cross_name, "application/pdf"),
                   404, "not-found")
    eq(get_rect(ctx.admin, rid)["evidence_count"], before, "evidence count after the refused uploads")
    eq(get_rect(ctx.admin, rect_other["id"])["evidence_count"], 0)
    eq([stored_files_named(n) for n in (big_name, exe_name, cross_name)], [0, 0, 0], "rows for refused files")

    # submit, reject by inspector A, resubmit
    x = ok(dep.post(rpath(rid, "submit"), json={"note": "请审核"}), 200, "submit")
    eq((x["status"], x["submitted_by"]), ("submitted", d_office.ref))
    expect_problem(a.post(rpath(rid, "reject"), json={}), 400, "validation-failed", pointers=["/reason"])
    x = ok(a.post(rpath(rid, "reject"), json={"reason": "第二批办事指南尚未公开"}), 200, "reject")
    eq(x["status"], "in_progress")
    ok(dep.post(rpath(rid, "progress"), json={"note": "第二批已公开", "percent": 100}), 201, "progress 100")
    x = ok(dep.post(rpath(rid, "submit"), json={}), 200, "resubmit")
    eq(x["status"], "submitted")

    # another inspector closes; the inspection closes itself
    x = ok(b.post(rpath(rid, "close"), json={"opinion": "经核查，办事指南已全部公开，同意销号"}), 200, "close")
    eq((x["status"], x["closed_by"], x["closed_on_time"]), ("closed", insp_b.ref, True))
    eq(insp_status(insp["id"]), "closed", "the inspection closed itself")
    eq(len(audit("inspection", insp["id"], "close")), 1, "the inspection's close in the audit trail")
    cl = ctx.admin.list_all(rpath(rid, "closures"))
    eq([[(e["id"], e["sha256"]) for e in c["evidence"]] for c in cl], [[(ev["id"], ev["sha256"])]], "what was verified")

    # the department downloads its PDF; the other unit cannot
    d = dep.get(API + "/evidence/%d/content" % ev["id"])
    expect_status(d, 200)
    check(d.body == pdf, "the PDF round-trips")
    eq(filename_star(d.h("Content-Disposition")), pdf_name)
    expect_problem(d_other.client.get(API + "/evidence/%d/content" % ev["id"]), 404, "not-found")

    # only the admin revokes; it reopens the rectification and the inspection
    expect_problem(b.post(rpath(rid, "revoke"), json={"reason": "x"}), 403, "forbidden")
    x = ok(ctx.admin.post(rpath(rid, "revoke"), json={"reason": "群众反映指南内容有误"}), 200, "revoke")
    eq(x["status"], "in_progress")
    eq(insp_status(insp["id"]), "submitted", "the inspection reopened")
    form = ok(ctx.admin.get(API + "/inspections/%d/form" % insp["id"]), 200, "form")
    eq(form["inspection"]["status"], "submitted")
    row = [rw for rw in form["rows"] if rw["item_id"] == item["id"]][0]
    eq(row["problems"][0]["rectifications"][0]["status"], "in_progress")
    eq([r_["id"] for r_ in dep.list_all(API + "/rectifications?status=in_progress")], [rid], "the department's ledger")

    # the audit trail tells the story in order
    events = sorted(audit("rectification", rid), key=lambda e: e["id"])
    eq([e["action"] for e in events if e["action"] in TRANSITIONS],
       ["start", "submit", "reject", "submit", "close", "revoke"], "transitions in the audit trail")
    actors = {e["action"]: e["actor_id"] for e in events if e["action"] in TRANSITIONS}
    eq((actors["start"], actors["reject"], actors["close"]), (d_office.id, insp_a.id, insp_b.id), "who did what")
    eq(len(audit("inspection", insp["id"], "close")), 1)


if __name__ == "__main__":
    main()
