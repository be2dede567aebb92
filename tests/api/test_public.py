#!/usr/bin/python3
"""The public view (公示, issue 11): publishing a submitted or closed inspection, withholding or
rewording its problems and measures (editable after submit), and the token-less pages that show
only what may be published — never a redacted text, a note, a person, an opinion or evidence,
not even on a connection that has just served a department user; cacheable with ETags that turn
with the local date; limited per client address."""

import http.client
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, DUCHA_SRC, check, ctx, day, db, db_try, eq, expect_problem, expect_status,  # noqa: E402
                     extra_server, items_of, main, mk_dept, mk_inspection, mk_problem, mk_rect, qs, run_cli, test)
from lifecycle_helpers import (act_ok, add_evidence, audit, dept_user, inspector, owner_db,  # noqa: E402
                               viewer)

PUBLIC = API + "/public/inspections"
PUBLIC_ETAG = re.compile(r'^"(p[0-9]+\.[0-9]+\.[0-9]+\.[0-9]{8}|l[0-9a-f]{32})"$')
HEADER_KEYS = sorted(["id", "title", "target_department", "inspected_on", "status", "published_at", "closed_at",
                      "counts", "closure_rate"])
MEASURE_KEYS = sorted(["ordinal", "measure", "responsible_department", "deadline", "status", "overdue", "closed_at"])


def anon():
    return ctx.server.client(None)


def ipath(iid, rest=""):
    return API + "/inspections/%d%s" % (iid, ("/" + rest) if rest else "")


def action(iid, name, client=None, **kw):
    return (client or ctx.admin).post(ipath(iid, name), json={}, **kw)


def action_ok(iid, name, client=None):
    r = action(iid, name, client)
    expect_status(r, 200, "%s inspection %d" % (name, iid))
    return r.json


def patch(path, body, client=None):
    c = client or ctx.admin
    r = c.get(path)
    expect_status(r, 200)
    return c.patch(path, json=body, if_match=r.etag, ctype="application/merge-patch+json")


def secret(label):
    """A text that must never reach the public view: unique to this run."""
    return "机密%s%s" % (label, ctx.uniq("").replace("-", ""))


class Published:
    """A published inspection of fresh units with all a public page must show and must hide:

    row 1 (未完成, with a note): problem A withheld (with a measure of its own), problem B with a
    public wording and three measures — one reworded and closed (progress, evidence, an opinion),
    one withheld, one as it is — and problem C as it is; row 2 completed."""

    def __init__(self, publish=True, inspected_on="2026-03-15"):
        self.secrets = []
        self.target = mk_dept(name=ctx.uniq("公示对象"))
        self.resp = mk_dept(name=ctx.uniq("公示责任单位"))
        self.inspector_name = secret("督察员")
        self.insp = mk_inspection(self.target["id"], inspected_on=inspected_on, inspectors=[self.inspector_name])
        self.id = self.insp["id"]
        action_ok(self.id, "start")
        self.items = items_of(self.id)
        row1, row2 = self.items[0], self.items[1]
        expect_status(patch(API + "/items/%d" % row1["id"], {"completion": "not_completed", "note": self.hide("备注")}),
                      200)
        expect_status(patch(API + "/items/%d" % row2["id"], {"completion": "completed"}), 200)
        self.a = mk_problem(row1["id"], self.hide("问题甲"), public=False)
        self.a1 = mk_rect(self.a["id"], self.resp["id"], self.hide("问题甲的措施"), deadline=day(30))
        self.b = mk_problem(row1["id"], self.hide("问题乙原文"), public_text="公开表述：问题乙")
        self.b1 = mk_rect(self.b["id"], self.resp["id"], self.hide("措施一原文"), deadline=day(10),
                          public_text="公开表述：措施一")
        self.b2 = mk_rect(self.b["id"], self.resp["id"], self.hide("措施二"), deadline=day(20), public=False)
        self.b3 = mk_rect(self.b["id"], self.resp["id"], "建立公开台账，按月更新" + ctx.uniq(""), deadline=day(30))
        self.c = mk_problem(row1["id"], "未按时公开决策文件" + ctx.uniq(""))
        action_ok(self.id, "submit")
        # the first measure is done and closed: progress, evidence and the opinion stay private
        self.dept = dept_user(self.resp["id"])
        self.closer = inspector(1)
        act_ok(self.dept.client, self.b1["id"], "start")
        r = self.dept.client.post(API + "/rectifications/%d/progress" % self.b1["id"],
                                  json={"note": self.hide("进展"), "percent": 100})
        expect_status(r, 201)
        add_evidence(self.dept.client, self.b1["id"], filename=self.hide("佐证") + ".pdf")
        act_ok(self.dept.client, self.b1["id"], "submit")
        act_ok(self.closer.client, self.b1["id"], "close", {"opinion": self.hide("销号意见")})
        self.people = [self.dept.username, self.closer.username, "测试用户"]  # their display names too
        if publish:
            action_ok(self.id, "publish")

    def hide(self, label):
        s = secret(label)
        self.secrets.append(s)
        return s

    def never_shown(self, r):
        """r's body holds no secret text, no person's name."""
        text = r.body.decode("utf-8")
        for s in self.secrets + [self.inspector_name] + self.people:
            check(s not in text, "%s %s shows %r" % (r.method, r.path, s))


def page(client, path):
    r = client.get(path)
    expect_status(r, 200, "GET %s" % path)
    return r


@test
def only_a_submitted_or_closed_inspection_is_published():
    target = mk_dept(name=ctx.uniq("公示对象"))
    insp = mk_inspection(target["id"])
    iid = insp["id"]
    eq(insp["published"], False)
    expect_problem(action(iid, "publish"), 409, "invalid-transition")
    action_ok(iid, "start")
    b = expect_problem(action(iid, "publish"), 409, "invalid-transition")
    eq(b["allowed_transitions"], ["submit"])
    expect_problem(action(iid, "unpublish"), 409, "conflict")
    eq(action_ok(iid, "submit")["status"], "closed", "no measures: closed at once")
    expect_problem(action(iid, "publish", viewer().client), 403, "forbidden")
    x = action_ok(iid, "publish", inspector(1).client)
    check(x["published"] is True and x["published_at"], "published, with the moment: %s" % x)
    expect_problem(action(iid, "publish"), 409, "conflict")
    x = action_ok(iid, "unpublish")
    eq((x["published"], x["published_at"]), (False, None))
    expect_problem(action(iid, "unpublish"), 409, "conflict")
    eq([e["after"]["published"] for e in audit("inspection", iid, "publish")], [True])
    eq([(e["before"], e["after"]) for e in audit("inspection", iid, "unpublish")],
       [({"published": True}, {"published": False, "published_at": None})])
    expect_problem(action(iid, "publish", if_match='"1"'), 412, "precondition-failed")


@test
def the_public_page_shows_what_may_be_published_and_nothing_else():
    p = Published()
    r = page(anon(), PUBLIC + "/%d" % p.id)
    p.never_shown(r)
    x = r.json
    eq(sorted(set(x) - {"rows"}), HEADER_KEYS)
    eq((x["id"], x["title"], x["target_department"], x["inspected_on"], x["status"]),
       (p.id, p.insp["title"], {"id": p.target["id"], "name": p.target["name"]}, "2026-03-15", "submitted"))
    check(x["published_at"] and x["closed_at"] is None, "published_at and closed_at: %s" % x)
    eq(x["counts"], {"items": len(p.items), "completed": 1, "not_completed": 1, "problems": 2, "rectifications": 2,
                     "closed": 1, "overdue": 0})
    eq(x["closure_rate"], 0.5)
    eq([row["seq"] for row in x["rows"]], sorted(it["seq"] for it in p.items))
    row1, row2 = x["rows"][0], x["rows"][1]
    eq(sorted(row1), ["completion", "problems", "seq", "task"])
    eq((row1["completion"], row2["completion"], row2["problems"]), ("not_completed", "completed", []))
    eq(row1["task"], p.items[0]["task"]["content"])
    eq([(q["ordinal"], q["description"]) for q in row1["problems"]],
       [(1, "公开表述：问题乙"), (2, p.c["description"])], "withheld A leaves no gap; B in its public wording")
    b = row1["problems"][0]
    eq(row1["problems"][1]["rectifications"], [])
    for m in b["rectifications"]:
        eq(sorted(m), MEASURE_KEYS)
    eq([(m["ordinal"], m["measure"], m["status"], m["deadline"]) for m in b["rectifications"]],
       [(1, "公开表述：措施一", "closed", day(10)), (2, p.b3["measure"], "pending", day(30))])
    eq(b["rectifications"][0]["responsible_department"], {"id": p.resp["id"], "name": p.resp["name"]})
    check(b["rectifications"][0]["closed_at"] and b["rectifications"][1]["closed_at"] is None, "closed_at")
    # the list shows it with the same header, counts and closure rate, and nothing private either
    r = page(anon(), PUBLIC + "?" + qs(target_department_id=p.target["id"]))
    p.never_shown(r)
    eq(r.json["data"], [{k: v for k, v in x.items() if k != "rows"}])


@test
def withholding_and_rewording_stay_editable_after_submit():
    p = Published()
    path = API + "/problems/%d" % p.c["id"]
    before = page(anon(), PUBLIC + "/%d" % p.id)
    # the findings are final: their text is not, what the public sees is
    expect_problem(patch(path, {"description": "改写"}), 409, "frozen")
    expect_problem(patch(path, {"public_text": "公开", "ordinal": 1}), 409, "frozen")
    r = patch(path, {"public_text": "公开表述：问题丙"})
    expect_status(r, 200)
    eq((r.json["public"], r.json["public_text"], r.json["description"]), (True, "公开表述：问题丙", p.c["description"]))
    ev = audit("problem", p.c["id"], "update")
    eq((ev[-1]["before"], ev[-1]["after"]), ({"public_text": None}, {"public_text": "公开表述：问题丙"}))
    after = page(anon(), PUBLIC + "/%d" % p.id)
    check(after.etag != before.etag, "rewording changes the ETag")
    eq([q["description"] for q in after.json["rows"][0]["problems"]], ["公开表述：问题乙", "公开表述：问题丙"])
    # a measure withheld after publication disappears; the one left is numbered 1
    r = patch(API + "/rectifications/%d" % p.b1["id"], {"public": False})
    expect_status(r, 200)
    eq(r.json["status"], "closed", "the closed measure can still be withheld")
    x = page(anon(), PUBLIC + "/%d" % p.id).json
    eq([(m["ordinal"], m["measure"]) for m in x["rows"][0]["problems"][0]["rectifications"]], [(1, p.b3["measure"])])
    eq((x["counts"]["rectifications"], x["counts"]["closed"], x["closure_rate"]), (1, 0, 0))
    # the public wording back to the text; bounds and types are checked
    r = patch(path, {"public_text": None})
    expect_status(r, 200)
    eq(r.json["public_text"], None)
    expect_problem(patch(path, {"public_text": ""}), 400, "validation-failed", pointers=["/public_text"])
    expect_problem(patch(path, {"public": None}), 400, "validation-failed", pointers=["/public"])
    expect_problem(patch(path, {"public_text": "字" * 2001}), 400, "validation-failed", pointers=["/public_text"])
    # a withheld problem hides its measures too
    expect_status(patch(API + "/problems/%d" % p.b["id"], {"public": False}), 200)
    x = page(anon(), PUBLIC + "/%d" % p.id).json
    eq([q["description"] for q in x["rows"][0]["problems"]], [p.c["description"]])
    eq((x["counts"]["problems"], x["counts"]["rectifications"], x["closure_rate"]), (1, 0, None))


@test
def unpublished_reopened_and_unknown_inspections_are_not_found():
    p = Published(publish=False)
    expect_problem(anon().get(PUBLIC + "/%d" % p.id), 404, "not-found")
    listed = lambda: [x["id"] for x in anon().list_all(PUBLIC + "?" + qs(target_department_id=p.target["id"]))]
    eq(listed(), [])
    action_ok(p.id, "publish")
    eq(listed(), [p.id])
    r = anon().get(PUBLIC + "/%d" % p.id)
    expect_status(r, 200)
    action_ok(p.id, "unpublish")
    r = anon().get(PUBLIC + "/%d" % p.id)
    expect_problem(r, 404, "not-found")
    eq(r.headers.get("Cache-Control"), "no-store", "a refusal is not cached")
    eq(listed(), [])
    action_ok(p.id, "publish")
    # reopened: hidden while its findings are corrected, shown again once submitted
    expect_status(ctx.admin.post(ipath(p.id, "reopen"), json={"reason": "更正督察结论"}), 200)
    expect_problem(anon().get(PUBLIC + "/%d" % p.id), 404, "not-found")
    eq(listed(), [])
    action_ok(p.id, "submit")
    expect_status(anon().get(PUBLIC + "/%d" % p.id), 200)
    for path in ("/0", "/abc", "/9007199254740991"):
        expect_problem(anon().get(PUBLIC + path), 404, "not-found")


@test
def a_token_changes_nothing():
    p = Published()
    hidden = Published(publish=False)
    plain = page(anon(), PUBLIC + "/%d" % p.id)
    for client in (ctx.admin, p.dept.client, dept_user(hidden.target["id"]).client):
        r = page(client, PUBLIC + "/%d" % p.id)
        eq(r.body, plain.body, "the same page with a token")
        expect_problem(client.get(PUBLIC + "/%d" % hidden.id), 404, "not-found")
    r = anon().get(PUBLIC + "/%d" % p.id, headers={"Authorization": "Bearer nonsense"})
    expect_status(r, 200, "a bad token is ignored too")


@test
def pages_are_cacheable_with_etags_that_change_with_what_they_show():
    p = Published()
    path = PUBLIC + "/%d" % p.id
    r = page(anon(), path)
    check(PUBLIC_ETAG.match(r.etag or ""), "ETag %r" % r.etag)
    eq(r.headers.get("Cache-Control"), "public, max-age=60")
    r304 = anon().get(path, headers={"If-None-Match": r.etag})
    expect_status(r304, 304)
    eq((r304.body, r304.etag, r304.headers.get("Cache-Control")), (b"", r.etag, "public, max-age=60"))
    lst = page(anon(), PUBLIC + "?" + qs(target_department_id=p.target["id"]))
    check(PUBLIC_ETAG.match(lst.etag or "") and lst.etag.startswith('"l'), "list ETag %r" % lst.etag)
    expect_status(anon().get(lst.path, headers={"If-None-Match": lst.etag}), 304)
    # a measure started: the page and the list change
    act_ok(p.dept.client, p.b3["id"], "start")
    r2 = anon().get(path, headers={"If-None-Match": r.etag})
    expect_status(r2, 200, "a change to a measure")
    check(r2.etag != r.etag, "new ETag")
    eq(r2.json["rows"][0]["problems"][0]["rectifications"][1]["status"], "in_progress")
    expect_status(anon().get(path, headers={"If-None-Match": r2.etag}), 304)
    # a change the page does not show may change its tag too (the tag is not read from the page)
    act_ok(p.closer.client, p.b3["id"], "urge")
    r3 = page(anon(), path)
    # a renamed unit
    expect_status(patch(API + "/departments/%d" % p.resp["id"], {"name": ctx.uniq("改名责任单位")}), 200)
    r4 = page(anon(), path)
    check(r4.etag != r3.etag, "a unit renamed changes the ETag")
    eq(r4.json["rows"][0]["problems"][0]["rectifications"][0]["responsible_department"]["name"],
       ctx.admin.get(API + "/departments/%d" % p.resp["id"]).json["name"])
    # the list's tag follows what it shows: the closure rate
    add_evidence(p.dept.client, p.b3["id"])
    act_ok(p.dept.client, p.b3["id"], "submit")
    act_ok(p.closer.client, p.b3["id"], "close", {"opinion": "同意"})
    lst2 = anon().get(lst.path, headers={"If-None-Match": lst.etag})
    expect_status(lst2, 200)
    check(lst2.etag != lst.etag, "list ETag changes")
    eq((lst2.json["data"][0]["closure_rate"], lst2.json["data"][0]["counts"]["closed"]), (1, 2),
       "the measures shown are all closed (the withheld ones are not counted)")


@test
def the_etag_and_overdue_turn_with_the_local_date():
    """Kiritimati (UTC+14) and Pago Pago (UTC-11) are always on different dates: a deadline that is
    yesterday in the first is today or tomorrow in the second."""
    p = Published()
    east = extra_server({"DUCHA_TIMEZONE": "Pacific/Kiritimati", "DUCHA_PUBLIC_RATE_LIMIT": "0"})
    west = extra_server({"DUCHA_TIMEZONE": "Pacific/Pago_Pago", "DUCHA_PUBLIC_RATE_LIMIT": "0"})
    owner_db("UPDATE rectifications SET deadline = (now() AT TIME ZONE 'Pacific/Kiritimati')::date - 1"
             " WHERE id = %d" % p.b3["id"])
    path = PUBLIC + "/%d" % p.id
    a, b = page(east.client(None), path), page(west.client(None), path)
    ma = a.json["rows"][0]["problems"][0]["rectifications"][1]
    mb = b.json["rows"][0]["problems"][0]["rectifications"][1]
    eq((ma["deadline"], ma["overdue"], mb["overdue"]), (mb["deadline"], True, False))
    eq((a.json["counts"]["overdue"], b.json["counts"]["overdue"]), (1, 0))
    # "p<inspection>.<form>.<unit names>.<date>": the unit names' version is every unit's, which the
    # other files running beside this one may move between the two reads
    ta, tb = a.etag.strip('"').split("."), b.etag.strip('"').split(".")
    check(ta[:2] == tb[:2] and ta[3] != tb[3], "the same data, another date: %s vs %s" % (a.etag, b.etag))
    la = page(east.client(None), PUBLIC + "?" + qs(target_department_id=p.target["id"]))
    lb = page(west.client(None), PUBLIC + "?" + qs(target_department_id=p.target["id"]))
    check(la.etag != lb.etag, "the list's ETag follows its overdue count")
    expect_status(west.client(None).get(path, headers={"If-None-Match": a.etag}), 200)


@test
def the_list_is_paged_and_filtered_like_the_others():
    target = mk_dept(name=ctx.uniq("公示对象"))
    ids = []
    for inspected_on in ("2026-01-10", "2026-02-10", "2026-03-10"):
        iid = mk_inspection(target["id"], inspected_on=inspected_on)["id"]
        action_ok(iid, "start")
        action_ok(iid, "submit")
        action_ok(iid, "publish")
        ids.append(iid)
    base = PUBLIC + "?" + qs(target_department_id=target["id"])
    r = page(anon(), base + "&limit=2&include_total=true")
    eq(([x["id"] for x in r.json["data"]], r.json["total"]), (ids[::-1][:2], 3), "newest first")
    check(r.json["next_cursor"] and "rel=\"next\"" in (r.headers.get("Link") or ""), "a next page")
    r2 = page(anon(), base + "&limit=2&cursor=" + r.json["next_cursor"])
    eq(([x["id"] for x in r2.json["data"]], r2.json["next_cursor"]), ([ids[0]], None))
    r = page(anon(), base + "&" + qs(inspected_from="2026-02-01", inspected_to="2026-02-28"))
    eq([x["id"] for x in r.json["data"]], [ids[1]])
    expect_problem(anon().get(PUBLIC + "?status=closed"), 400, "invalid-query", pointers=["/query/status"])
    expect_problem(anon().get(PUBLIC + "?limit=0"), 400, "invalid-query")
    expect_problem(ctx.admin.post(PUBLIC, json={}, validate="problem"), 405, "method-not-allowed")


@test
def each_address_is_limited_and_told_when_to_come_back():
    srv = extra_server({"DUCHA_PUBLIC_RATE_LIMIT": "3"})
    p_first = srv.client(None).from_address("127.0.0.51")
    for i in range(3):
        expect_status(p_first.get(PUBLIC + "?limit=1"), 200, "request %d of 3" % (i + 1))
    r = p_first.get(PUBLIC + "?limit=1")
    expect_problem(r, 429, "too-many-requests")
    wait = int(r.headers.get("Retry-After") or "0")
    check(1 <= wait <= 20, "Retry-After %r: about 20 s for the next of 3 a minute" % r.headers.get("Retry-After"))
    eq(r.headers.get("Cache-Control"), "no-store")
    expect_problem(p_first.get(PUBLIC + "/1"), 429, "too-many-requests")
    # another address is served; the private API is not limited by it
    expect_status(srv.client(None).from_address("127.0.0.52").get(PUBLIC + "?limit=1"), 200)
    admin = srv.client(ctx.admin.token).from_address("127.0.0.51")
    for _ in range(5):
        expect_status(admin.get(API + "/inspections?limit=1"), 200)
    p = run_cli(["--help"])
    check("DUCHA_PUBLIC_RATE_LIMIT" in p.stdout + p.stderr, "--help lists DUCHA_PUBLIC_RATE_LIMIT")
    with open(os.path.join(DUCHA_SRC, "openapi.yaml"), encoding="utf-8") as f:
        check("DUCHA_PUBLIC_RATE_LIMIT" in f.read(), "openapi.yaml documents it")


def raw(conn, path, token=None):
    """One request on an open keep-alive connection: (status, headers, parsed body)."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    return resp.status, resp, body


@test
def a_connection_that_served_a_department_user_serves_the_public_only_public_data():
    """One worker and one database connection: the department user's identity must not outlive
    its request, neither on the HTTP connection nor on the database's."""
    srv = extra_server({"DUCHA_THREADS": "1", "DUCHA_PUBLIC_RATE_LIMIT": "0"})
    shown = Published()
    hidden = Published(publish=False)
    unit_user = dept_user(hidden.target["id"])
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=15)
    try:
        for turn in range(3):
            status, _, body = raw(conn, ipath(hidden.id), unit_user.client.token)
            eq(status, 200, "the department user reads its unit's inspection")
            sock = conn.sock
            status, resp, body = raw(conn, PUBLIC + "/%d" % hidden.id)
            check(conn.sock is sock, "the same TCP connection")
            eq(status, 404, "turn %d: the unpublished inspection, right after its unit's user" % turn)
            status, _, body = raw(conn, PUBLIC + "?" + qs(target_department_id=hidden.target["id"]))
            eq((status, json.loads(body)["data"]), (200, []), "the list leaves it out")
            status, _, body = raw(conn, PUBLIC + "/%d" % shown.id)
            eq(status, 200)
            text = body.decode("utf-8")
            for s in shown.secrets + hidden.secrets + [shown.inspector_name, unit_user.username]:
                check(s not in text, "a public page shows %r" % s)
            status, _, body = raw(conn, ipath(hidden.id))
            eq(status, 401, "no token, no private data")
            status, _, body = raw(conn, API + "/rectifications?" + qs(inspection_id=hidden.id), unit_user.client.token)
            eq(status, 200)
            check(json.loads(body)["data"], "and the department user's next request still sees its own")
            check(conn.sock is sock, "the same TCP connection throughout")
    finally:
        conn.close()


@test
def the_public_statements_read_only_the_published_views():
    """src/public.c names no table of the service; the database refuses one under its search path."""
    with open(os.path.join(DUCHA_SRC, "src", "public.c"), encoding="utf-8") as f:
        source = f.read()
    names = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_.]*)", source))
    eq(sorted(n for n in names if not n.startswith("published_")), [], "relations other than the published views")
    check("set_config('search_path', 'disclosure', true)" in source, "the search path is the schema disclosure")
    # what the service's role meets under that path (psql -c: one transaction)
    out = db("SELECT set_config('search_path', 'disclosure', true);"
             " SELECT count(*) FROM published_inspections WHERE NOT EXISTS"
             "  (SELECT 1 FROM public.inspections i WHERE i.id = published_inspections.id AND i.published)")
    eq(out.splitlines()[-1], "0", "published_inspections holds published inspections only")
    rc, _, err = db_try("SELECT set_config('search_path', 'disclosure', true); SELECT count(*) FROM inspections")
    check(rc != 0 and "does not exist" in err, "a table of the service is out of reach: %s" % err)
    eq(db("SELECT count(*) FROM disclosure.published_problems p JOIN problems x ON x.id = p.id WHERE NOT x.public"),
       "0", "no withheld problem is in the view")


if __name__ == "__main__":
    main(server_env={"DUCHA_PUBLIC_RATE_LIMIT": "0"})
