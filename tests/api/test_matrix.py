#!/usr/bin/python3
"""The role matrix, generated from openapi.yaml: every operation x every role (admin, inspector,
department, viewer) x in scope / out of scope.

Scope: department A with a sub-unit A1, and department B; the department user belongs to A.
Records targeting A1 are in scope, records targeting B out of scope; the other roles run both
variants too. For each cell a valid request (valid body, If-Match where required) is made:
  - a role not in the operation's x-roles -> 403 problem `forbidden`;
  - the department role on an out-of-scope record -> 404; on a list filtered by B -> empty list;
  - otherwise the documented success status.
Every cell that must not change anything (403, 404 and every read) is checked for that: the
target rows (every column), the rows a create would add, the tokens of the users involved and
the audit events carrying the cell's request id are the same before and after. Every allowed
change writes exactly one audit event with the cell's request id.
"""

import datetime as _dt
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, PsqlSession, TestFailure, check, ctx, day, eq, expect_problem,  # noqa: E402
                     expect_status, main, make_user, mk_dept, mk_problem, mk_rect, qs, run_cli, spec,
                     sql_str, test)

ROLES = ("admin", "inspector", "department", "viewer")
SCOPES = ("in", "out")
PASSWORD = "pw-matrix-secret-1"
# The audit key of test_checkpoints.py: every file that makes checkpoints in the shared database
# signs with the same one.
TEST_KEY = b"ducha test audit key; not a secret: 0123456789abcdef"
KEY_DIR = tempfile.mkdtemp(prefix="ducha-matrix-key-")

W = {}              # the world: fixtures shared by the cells
psql = PsqlSession()
_rid = [0]


def rid():
    _rid[0] += 1
    return "mx-%s-%d" % (ctx.prefix, _rid[0])


def code():
    return ("mx" + ctx.prefix + ctx.uniq("c").rsplit("-", 1)[1]).lower()


def now_utc(offset_s=0):
    t = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def q1(sql):
    return psql.q(sql)


# ------------------------------------------------------------------------------ fixtures

def new_checklist(n=1):
    r = ctx.admin.post(API + "/checklists", json={"code": code(), "title": ctx.uniq("矩阵清单"),
                                                   "tasks": [{"content": ctx.uniq("矩阵任务")} for _ in range(n)]})
    expect_status(r, 201, "create checklist")
    return r.json


def new_dept(parent_id):
    return mk_dept(name=ctx.uniq("矩阵单位"), parent_id=parent_id)


def new_inspection(s, started=False):
    r = ctx.admin.post(API + "/inspections", json={
        "target_department_id": W["dept"][s]["id"], "inspected_on": day(0), "title": ctx.uniq("矩阵督察"),
        "checklist_id": W["checklist"]["id"]})
    expect_status(r, 201, "create inspection")
    insp = r.json
    if started:
        expect_status(ctx.admin.post(API + "/inspections/%d/start" % insp["id"], json={}), 200, "start")
    return insp


def first_item(inspection_id):
    return int(q1("SELECT id FROM items WHERE inspection_id = %d ORDER BY seq LIMIT 1" % inspection_id))


def new_user(dept_id, password=PASSWORD):
    r = ctx.admin.post(API + "/users", json={"username": "mxu_%s_%s" % (ctx.prefix, ctx.uniq("u").rsplit("-", 1)[1]),
                                              "role": "department", "department_id": dept_id,
                                              "password": password})
    expect_status(r, 201, "create user")
    return r.json


def new_token(username):
    p = run_cli(["token", "create", "--user", username], check_rc=True)
    return p.stdout.strip().split()[-1]


def new_batch():
    r = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("矩阵批次"), "checklist_id": W["checklist"]["id"]})
    expect_status(r, 201, "create batch")
    return r.json


def world():
    if W.get("ready"):
        return W
    W.clear()
    try:
        make_world()
    except BaseException:
        W.clear()
        raise
    W["ready"] = True
    return W


def make_world():
    W["t0"] = now_utc(-1)
    W["checklist"] = new_checklist(1)
    a = mk_dept(name=ctx.uniq("甲单位"))
    a1 = mk_dept(name=ctx.uniq("甲单位下属"), parent_id=a["id"])
    b = mk_dept(name=ctx.uniq("乙单位"))
    W["A"] = a
    W["dept"] = {"in": a1, "out": b}
    W["users"], W["client"], W["pw"] = {}, {}, {}
    for role in ROLES:
        uname = "mx_%s_%s" % (role[:4], ctx.prefix)
        _, token = make_user(role, department_id=a["id"] if role == "department" else None, username=uname,
                             password=PASSWORD)
        W["users"][role] = {"id": int(q1("SELECT id FROM users WHERE username = %s" % sql_str(uname))),
                            "username": uname, "token": token}
        W["client"][role] = ctx.server.client(token)
        W["pw"][role] = PASSWORD
    W["fx"] = {}
    for s in SCOPES:
        insp = new_inspection(s)
        item = first_item(insp["id"])
        prob = mk_problem(item, description=ctx.uniq("矩阵问题"))
        rect = mk_rect(prob["id"], W["dept"][s]["id"], measure=ctx.uniq("矩阵措施"), deadline=day(30))
        W["fx"][s] = {"insp": insp["id"], "item": item, "prob": prob["id"], "rect": rect["id"],
                      "user": new_user(W["dept"][s]["id"])}
    W["batch"] = new_batch()


def fx(s):
    return world()["fx"][s]


def dept(s):
    return world()["dept"][s]


def role_user(role):
    return world()["users"][role]


# ------------------------------------------------------------------------------ snapshots

TABLES = {"departments", "checklists", "batches", "inspections", "items", "problems", "rectifications", "users",
          "tokens", "webhooks", "webhook_deliveries"}


def snapshot(refs, request_id=None):
    """Every column of the referenced rows, rows a create would add, and audit events of the request."""
    exprs = []
    for ref in refs:
        if ref[0] == "row":
            _, table, rid_ = ref
            check(table in TABLES, table)
            exprs.append("coalesce((SELECT t::text FROM %s t WHERE id = %d), '<no row>')" % (table, rid_))
        elif ref[0] == "tokens":
            exprs.append("coalesce((SELECT json_agg(t ORDER BY id)::text FROM tokens t WHERE user_id = %d), '[]')"
                         % ref[1])
        elif ref[0] == "count":
            _, table, column, value = ref
            exprs.append("(SELECT count(*) FROM %s WHERE %s = %s)::text" % (table, column, sql_str(value)))
        elif ref[0] == "sql":
            exprs.append("coalesce((%s)::text, '<null>')" % ref[2])
        else:
            raise TestFailure("bad ref %r" % (ref,))
    if request_id:
        exprs.append("(SELECT count(*) FROM audit_events WHERE occurred_at >= '%s' AND request_id = %s)::text" % (
            world()["t0"], sql_str(request_id)))
    if not exprs:
        return {}
    out = q1("SELECT concat_ws(E'\\x1f', %s)" % ", ".join(exprs))
    values = out.split("\x1f")
    labels = [ref[1] if ref[0] == "sql" else " ".join(str(x) for x in ref) for ref in refs]
    labels += ["audit events of the request"] if request_id else []
    return dict(zip(labels, values))


def diff(before, after):
    out = []
    for k in before:
        if before[k] != after.get(k):
            out.append("%s changed: %s -> %s" % (k, before[k][:300], (after.get(k) or "")[:300]))
    return out


# ------------------------------------------------------------------------------ the operations
#
# For each operation of openapi.yaml: how to make a valid request in scope "in" (A1) or "out" (B).
#   scope:   "record" (a department user gets 404 out of scope), "list" (a list filtered by the
#            scope's unit: empty for a department user out of scope), None (not department-scoped)
#   victim:  s -> {"path": ..., "refs": [...], ...}: the target, made fresh when destructive
#   body:    (v, role) -> JSON body;  etag: (v, role) -> If-Match value
#   destructive: an allowed request uses the victim up (the next allowed cell gets a fresh one)
#   check:   (v, role, s, resp) -> None: what a successful answer must show

OPS = {}


def op(method, path, scope=None, victim=None, body=None, etag=None, destructive=False, check=None, token=None,
       upload=False):
    OPS[(method, path)] = dict(scope=scope, victim=victim, body=body, etag=etag, destructive=destructive,
                               check=check, token=token, upload=upload)


def admin_etag(v, role):
    r = ctx.admin.get(v["etag_path"] if "etag_path" in v else v["path"])
    expect_status(r, 200, "admin reads the target for its ETag")
    return r.etag


def ids_of(resp):
    return [x["id"] for x in resp.json["data"]]


def lists(expected_id):
    def chk(v, role, s, resp):
        check(expected_id(v, s) in ids_of(resp), "%s/%s: %s lacks id %s (has %s)" % (
            role, s, resp.path, expected_id(v, s), ids_of(resp)[:10]))
    return chk


def gone_after(v, role, s, resp):
    r = ctx.admin.get(v["path"])
    eq(r.status, 404, "%s/%s: %s after DELETE" % (role, s, v["path"]))


# public
op("GET", "/healthz", victim=lambda s: {"path": "/healthz", "refs": []})
op("GET", "/readyz", victim=lambda s: {"path": "/readyz", "refs": []})
op("GET", "/openapi.yaml", victim=lambda s: {"path": "/openapi.yaml", "refs": []})
op("GET", "/docs", victim=lambda s: {"path": "/docs", "refs": []})
op("GET", "/docs/{file}", victim=lambda s: {"path": "/docs/ducha-docs.js", "refs": []})


def v_login(s):
    u = fx(s)["user"]
    return {"path": API + "/auth/token", "user": u, "refs": [("row", "users", u["id"]), ("tokens", u["id"])]}


def chk_login(v, role, s, resp):
    tok = resp.json["token"]
    r = ctx.server.client(tok).get(API + "/me")
    expect_status(r, 200, "the new token works")
    eq(r.json["user"]["id"], v["user"]["id"], "token's user")


op("POST", "/api/v1/auth/token", victim=v_login,
   body=lambda v, role: {"username": v["user"]["username"], "password": PASSWORD}, check=chk_login)

# departments
op("GET", "/api/v1/departments", scope="list",
   victim=lambda s: {"path": API + "/departments?" + qs(q=dept(s)["name"]),
                     "refs": [("row", "departments", dept(s)["id"])]},
   check=lists(lambda v, s: dept(s)["id"]))


def v_new_dept_body(s):
    name = ctx.uniq("矩阵新单位")
    return {"path": API + "/departments", "name": name, "s": s,
            "refs": [("row", "departments", dept(s)["id"]), ("count", "departments", "name", name)]}


op("POST", "/api/v1/departments", victim=v_new_dept_body, destructive=True,
   body=lambda v, role: {"name": v["name"], "parent_id": dept(v["s"])["id"]})
op("GET", "/api/v1/departments/{id}", scope="record",
   victim=lambda s: {"path": API + "/departments/%d" % dept(s)["id"], "refs": [("row", "departments", dept(s)["id"])]})


def v_dept(s):
    d = new_dept(dept(s)["id"])
    return {"path": API + "/departments/%d" % d["id"], "id": d["id"], "refs": [("row", "departments", d["id"])]}


op("PATCH", "/api/v1/departments/{id}", scope="record", victim=v_dept,
   body=lambda v, role: {"name": ctx.uniq("矩阵改名")}, etag=admin_etag)
op("DELETE", "/api/v1/departments/{id}", scope="record", victim=v_dept, etag=admin_etag, destructive=True,
   check=gone_after)


def v_merge(s):
    old, new = new_dept(dept(s)["id"]), new_dept(dept(s)["id"])
    return {"path": API + "/departments/%d/merge" % old["id"], "etag_path": API + "/departments/%d" % old["id"],
            "old": old["id"], "new": new["id"],
            "refs": [("row", "departments", old["id"]), ("row", "departments", new["id"])]}


def chk_merge(v, role, s, resp):
    eq(resp.json["merged_into_id"], v["new"], "merged_into_id")


op("POST", "/api/v1/departments/{id}/merge", scope="record", victim=v_merge, destructive=True,
   body=lambda v, role: {"successor_id": v["new"], "reason": "机构改革"}, check=chk_merge)

# checklists (not department-scoped)
op("GET", "/api/v1/checklists",
   victim=lambda s: {"path": API + "/checklists?" + qs(code=world()["checklist"]["code"]),
                     "refs": [("row", "checklists", world()["checklist"]["id"])]},
   check=lists(lambda v, s: world()["checklist"]["id"]))


def v_new_checklist(s):
    c, title = code(), ctx.uniq("矩阵新清单")
    return {"path": API + "/checklists", "code": c, "title": title, "refs": [("count", "checklists", "code", c)]}


op("POST", "/api/v1/checklists", victim=v_new_checklist, destructive=True,
   body=lambda v, role: {"code": v["code"], "title": v["title"], "tasks": [{"content": "任务"}]})
op("GET", "/api/v1/checklists/{id}",
   victim=lambda s: {"path": API + "/checklists/%d" % world()["checklist"]["id"],
                     "refs": [("row", "checklists", world()["checklist"]["id"])]})


def v_checklist(s):
    c = new_checklist(1)
    return {"path": API + "/checklists/%d" % c["id"], "refs": [("row", "checklists", c["id"])]}


op("PATCH", "/api/v1/checklists/{id}", victim=v_checklist, body=lambda v, role: {"title": ctx.uniq("矩阵改题")},
   etag=admin_etag)
op("DELETE", "/api/v1/checklists/{id}", victim=v_checklist, etag=admin_etag, destructive=True, check=gone_after)
op("GET", "/api/v1/checklists/{id}/tasks",
   victim=lambda s: {"path": API + "/checklists/%d/tasks" % world()["checklist"]["id"], "refs": []},
   check=lambda v, role, s, resp: check(len(resp.json["data"]) == 1, "one task"))

# batches
op("GET", "/api/v1/batches",
   victim=lambda s: {"path": API + "/batches?" + qs(q=world()["batch"]["name"]),
                     "refs": [("row", "batches", world()["batch"]["id"])]},
   check=lists(lambda v, s: world()["batch"]["id"]))


def v_new_batch_body(s):
    name = ctx.uniq("矩阵新批次")
    return {"path": API + "/batches", "name": name, "refs": [("count", "batches", "name", name)]}


op("POST", "/api/v1/batches", victim=v_new_batch_body, destructive=True,
   body=lambda v, role: {"name": v["name"], "checklist_id": world()["checklist"]["id"]})
op("GET", "/api/v1/batches/{id}",
   victim=lambda s: {"path": API + "/batches/%d" % world()["batch"]["id"],
                     "refs": [("row", "batches", world()["batch"]["id"])]})


def v_batch(s):
    b = new_batch()
    return {"path": API + "/batches/%d" % b["id"], "refs": [("row", "batches", b["id"])]}




def v_batch_inspections(s):
    b = new_batch()
    return {"path": API + "/batches/%d/inspections" % b["id"], "batch": b["id"], "s": s,
            "refs": [("row", "batches", b["id"]), ("count", "inspections", "batch_id", str(b["id"]))]}


op("POST", "/api/v1/batches/{id}/inspections", victim=v_batch_inspections, destructive=True,
   body=lambda v, role: {"target_department_ids": [dept(v["s"])["id"]], "inspected_on": day(0),
                         "title": "{department}矩阵督察"},
   check=lambda v, role, s, resp: eq([x["batch_id"] for x in resp.json["data"]], [v["batch"]], "one inspection"))
op("PATCH", "/api/v1/batches/{id}", victim=v_batch, body=lambda v, role: {"name": ctx.uniq("矩阵改批次")},
   etag=admin_etag)
op("DELETE", "/api/v1/batches/{id}", victim=v_batch, etag=admin_etag, destructive=True, check=gone_after)

# inspections
op("GET", "/api/v1/inspections", scope="list",
   victim=lambda s: {"path": API + "/inspections?" + qs(target_department_id=dept(s)["id"]),
                     "refs": [("row", "inspections", fx(s)["insp"])]},
   check=lists(lambda v, s: fx(s)["insp"]))


def v_new_insp_body(s):
    title = ctx.uniq("矩阵新督察")
    return {"path": API + "/inspections", "title": title, "s": s, "refs": [("count", "inspections", "title", title)]}


op("POST", "/api/v1/inspections", victim=v_new_insp_body, destructive=True,
   body=lambda v, role: {"target_department_id": dept(v["s"])["id"], "inspected_on": day(0), "title": v["title"],
                         "checklist_id": world()["checklist"]["id"]})
op("GET", "/api/v1/inspections/{id}", scope="record",
   victim=lambda s: {"path": API + "/inspections/%d" % fx(s)["insp"], "refs": [("row", "inspections", fx(s)["insp"])]})


def v_insp(started=False):
    def make(s):
        i = new_inspection(s, started=started)
        base = API + "/inspections/%d" % i["id"]
        return {"path": base, "etag_path": base, "id": i["id"], "refs": [("row", "inspections", i["id"])]}
    return make


def v_insp_action(action, started):
    def make(s):
        v = v_insp(started)(s)
        v["path"] = v["path"] + "/" + action
        return v
    return make


def field_is(name, want):
    def chk(v, role, s, resp):
        eq(resp.json[name], want, "%s/%s: %s after %s" % (role, s, name, resp.path))
    return chk


def status_is(want):
    return field_is("status", want)


op("PATCH", "/api/v1/inspections/{id}", scope="record", victim=v_insp(),
   body=lambda v, role: {"title": ctx.uniq("矩阵改督察")}, etag=admin_etag)
op("DELETE", "/api/v1/inspections/{id}", scope="record", victim=v_insp(), etag=admin_etag, destructive=True,
   check=gone_after)
op("POST", "/api/v1/inspections/{id}/start", scope="record", victim=v_insp_action("start", False), destructive=True,
   body=lambda v, role: {}, check=status_is("in_progress"))
op("POST", "/api/v1/inspections/{id}/submit", scope="record", victim=v_insp_action("submit", True), destructive=True,
   body=lambda v, role: {}, check=status_is("closed"))


def v_reopen(s):
    v = v_insp_action("submit", True)(s)
    expect_status(ctx.admin.post(v["path"], json={}), 200, "submit")
    v["path"] = v["path"].rsplit("/", 1)[0] + "/reopen"
    return v


op("POST", "/api/v1/inspections/{id}/reopen", scope="record", victim=v_reopen, destructive=True,
   body=lambda v, role: {"reason": "更正督察结论"}, check=status_is("in_progress"))


def v_published(action):
    """A submitted inspection (closed at once: no measures), published first for unpublish; the path of action."""
    def make(s):
        v = v_insp_action("submit", True)(s)
        expect_status(ctx.admin.post(v["path"], json={}), 200, "submit")
        base = v["path"].rsplit("/", 1)[0]
        if action == "unpublish":
            expect_status(ctx.admin.post(base + "/publish", json={}), 200, "publish")
        v["path"] = base + "/" + action
        return v
    return make


op("POST", "/api/v1/inspections/{id}/publish", scope="record", victim=v_published("publish"), destructive=True,
   body=lambda v, role: {}, check=field_is("published", True))
op("POST", "/api/v1/inspections/{id}/unpublish", scope="record", victim=v_published("unpublish"), destructive=True,
   body=lambda v, role: {}, check=field_is("published", False))


def v_public(s):
    """A published inspection of the scope's unit: the public view shows it to everyone."""
    v = v_published("unpublish")(s)
    return {"path": API + "/public/inspections/%d" % v["id"], "id": v["id"], "refs": v["refs"]}


op("GET", "/api/v1/public/inspections",
   victim=lambda s: {"path": API + "/public/inspections?" + qs(target_department_id=dept(s)["id"]), "refs": []})
op("GET", "/api/v1/public/inspections/{id}", victim=v_public,
   check=lambda v, role, s, resp: eq(resp.json["id"], v["id"], "the published inspection"))
op("GET", "/api/v1/inspections/{id}/form", scope="record",
   victim=lambda s: {"path": API + "/inspections/%d/form" % fx(s)["insp"], "refs": [("row", "inspections", fx(s)["insp"])]},
   check=lambda v, role, s, resp: eq(resp.json["inspection"]["id"], fx(s)["insp"], "form of"))
op("GET", "/api/v1/inspections/{id}/items", scope="record",
   victim=lambda s: {"path": API + "/inspections/%d/items" % fx(s)["insp"], "refs": [("row", "items", fx(s)["item"])]},
   check=lists(lambda v, s: fx(s)["item"]))

# items
op("GET", "/api/v1/items/{id}", scope="record",
   victim=lambda s: {"path": API + "/items/%d" % fx(s)["item"], "refs": [("row", "items", fx(s)["item"])]})


def v_item(s):
    i = new_inspection(s)
    it = first_item(i["id"])
    return {"path": API + "/items/%d" % it, "refs": [("row", "items", it)]}


op("PATCH", "/api/v1/items/{id}", scope="record", victim=v_item,
   body=lambda v, role: {"completion": "not_completed", "note": ctx.uniq("矩阵备注")}, etag=admin_etag)
op("GET", "/api/v1/items/{id}/problems", scope="record",
   victim=lambda s: {"path": API + "/items/%d/problems" % fx(s)["item"], "refs": [("row", "problems", fx(s)["prob"])]},
   check=lists(lambda v, s: fx(s)["prob"]))


def v_new_problem_body(s):
    d = ctx.uniq("矩阵新问题")
    return {"path": API + "/items/%d/problems" % fx(s)["item"], "description": d,
            "refs": [("row", "items", fx(s)["item"]), ("count", "problems", "description", d)]}


op("POST", "/api/v1/items/{id}/problems", scope="record", victim=v_new_problem_body, destructive=True,
   body=lambda v, role: {"description": v["description"]})

# problems
op("GET", "/api/v1/problems/{id}", scope="record",
   victim=lambda s: {"path": API + "/problems/%d" % fx(s)["prob"], "refs": [("row", "problems", fx(s)["prob"])]})


def v_problem(s):
    p = mk_problem(fx(s)["item"], description=ctx.uniq("矩阵问题"))
    return {"path": API + "/problems/%d" % p["id"], "refs": [("row", "problems", p["id"])]}


op("PATCH", "/api/v1/problems/{id}", scope="record", victim=v_problem,
   body=lambda v, role: {"description": ctx.uniq("矩阵改问题")}, etag=admin_etag)
op("DELETE", "/api/v1/problems/{id}", scope="record", victim=v_problem, etag=admin_etag, destructive=True,
   check=gone_after)
op("GET", "/api/v1/problems/{id}/rectifications", scope="record",
   victim=lambda s: {"path": API + "/problems/%d/rectifications" % fx(s)["prob"],
                     "refs": [("row", "rectifications", fx(s)["rect"])]},
   check=lists(lambda v, s: fx(s)["rect"]))


def v_new_rect_body(s):
    m = ctx.uniq("矩阵新措施")
    return {"path": API + "/problems/%d/rectifications" % fx(s)["prob"], "measure": m, "s": s,
            "refs": [("row", "problems", fx(s)["prob"]), ("count", "rectifications", "measure", m)]}


op("POST", "/api/v1/problems/{id}/rectifications", scope="record", victim=v_new_rect_body, destructive=True,
   body=lambda v, role: {"measure": v["measure"], "responsible_department_id": dept(v["s"])["id"], "deadline": day(20)})

# rectifications
op("GET", "/api/v1/rectifications/{id}", scope="record",
   victim=lambda s: {"path": API + "/rectifications/%d" % fx(s)["rect"],
                     "refs": [("row", "rectifications", fx(s)["rect"])]})


def v_rect(s):
    r = mk_rect(fx(s)["prob"], dept(s)["id"], measure=ctx.uniq("矩阵措施"), deadline=day(25))
    return {"path": API + "/rectifications/%d" % r["id"], "refs": [("row", "rectifications", r["id"])]}


op("PATCH", "/api/v1/rectifications/{id}", scope="record", victim=v_rect,
   body=lambda v, role: {"measure": ctx.uniq("矩阵改措施")}, etag=admin_etag)
op("DELETE", "/api/v1/rectifications/{id}", scope="record", victim=v_rect, etag=admin_etag, destructive=True,
   check=gone_after)

# users (admin only; "in scope" is a user of A1, "out of scope" one of B)
op("GET", "/api/v1/users",
   victim=lambda s: {"path": API + "/users?" + qs(department_id=dept(s)["id"]),
                     "refs": [("row", "users", fx(s)["user"]["id"])]},
   check=lists(lambda v, s: fx(s)["user"]["id"]))


def v_new_user_body(s):
    name = "mxn_%s_%s" % (ctx.prefix, ctx.uniq("n").rsplit("-", 1)[1])
    return {"path": API + "/users", "username": name, "s": s, "refs": [("count", "users", "username", name)]}


op("POST", "/api/v1/users", victim=v_new_user_body, destructive=True,
   body=lambda v, role: {"username": v["username"], "role": "department", "department_id": dept(v["s"])["id"],
                         "password": PASSWORD})
op("GET", "/api/v1/users/{id}",
   victim=lambda s: {"path": API + "/users/%d" % fx(s)["user"]["id"], "refs": [("row", "users", fx(s)["user"]["id"])]})
op("PATCH", "/api/v1/users/{id}",
   victim=lambda s: {"path": API + "/users/%d" % fx(s)["user"]["id"], "refs": [("row", "users", fx(s)["user"]["id"])]},
   body=lambda v, role: {"display_name": ctx.uniq("矩阵用户")}, etag=admin_etag)


def v_reset(s):
    u = new_user(dept(s)["id"])
    return {"path": API + "/users/%d/password" % u["id"], "refs": [("row", "users", u["id"]), ("tokens", u["id"])]}


op("POST", "/api/v1/users/{id}/password", victim=v_reset, destructive=True,
   body=lambda v, role: {"new_password": "pw-reset-secret-2"},
   check=lambda v, role, s, resp: eq(resp.json["must_change_password"], True, "must_change_password"))

# sessions


def v_logout(s):
    return {"path": API + "/auth/token", "refs": []}


def logout_token(v, role):
    u = role_user(role)
    v["token"] = new_token(u["username"])
    v["refs"] = [("tokens", u["id"])]
    return v["token"]


def chk_logout(v, role, s, resp):
    r = ctx.server.client(v["token"]).get(API + "/me")
    eq(r.status, 401, "%s/%s: the logged-out token" % (role, s))
    r = W["client"][role].get(API + "/me")
    eq(r.status, 200, "%s/%s: the role's other token still works" % (role, s))


op("DELETE", "/api/v1/auth/token", victim=v_logout, token=logout_token, destructive=True, check=chk_logout)
op("GET", "/api/v1/tokens",
   victim=lambda s: {"path": API + "/tokens?" + qs(user_id=fx(s)["user"]["id"]), "refs": [("tokens", fx(s)["user"]["id"])]},
   check=lambda v, role, s, resp: check(all(t["user_id"] == fx(s)["user"]["id"] for t in resp.json["data"]),
                                        "user_id filter"))


def v_token(s):
    u = fx(s)["user"]
    new_token(u["username"])
    tid = int(q1("SELECT max(id) FROM tokens WHERE user_id = %d" % u["id"]))
    return {"path": API + "/tokens/%d" % tid, "tid": tid, "refs": [("tokens", u["id"])]}


op("DELETE", "/api/v1/tokens/{id}", victim=v_token, destructive=True,
   check=lambda v, role, s, resp: check(q1("SELECT revoked_at IS NOT NULL FROM tokens WHERE id = %d" % v["tid"]) == "t",
                                        "token %d not revoked" % v["tid"]))


def v_me(s):
    return {"path": API + "/me", "refs": []}


def me_etag(v, role):
    r = W["client"][role].get(API + "/me")
    expect_status(r, 200, "GET /me for the ETag")
    return r.etag


def chk_me(v, role, s, resp):
    eq((resp.json["user"]["id"], resp.json["user"]["role"]), (role_user(role)["id"], role), "GET /me user")


def me_password_body(v, role):
    new = "pw-%s-%s" % (role, ctx.uniq("p"))
    v["new_password"] = new
    return {"current_password": W["pw"][role], "new_password": new}


def chk_me_password(v, role, s, resp):
    W["pw"][role] = v["new_password"]
    r = W["client"][role].get(API + "/me")
    eq(r.status, 200, "%s/%s: the token used for the change still works" % (role, s))


op("GET", "/api/v1/me", victim=v_me, check=chk_me)
op("PATCH", "/api/v1/me", victim=v_me, body=lambda v, role: {"display_name": ctx.uniq("矩阵我")}, etag=me_etag,
   check=chk_me)
op("GET", "/api/v1/me/todo", victim=lambda s: {"path": API + "/me/todo", "refs": []},
   check=lambda v, role, s, resp: eq(sorted(resp.json["lists"]), {
       "admin": ["extension_requests", "to_verify"], "inspector": ["extension_requests", "to_verify"],
       "department": ["due_soon", "to_report", "to_resubmit", "to_start"], "viewer": []}[role], "the role's lists"))
op("POST", "/api/v1/me/password", victim=lambda s: {"path": API + "/me/password", "refs": []}, body=me_password_body,
   check=chk_me_password)

# the rectification lifecycle, progress, evidence, the ledger
#
# Actions need the findings submitted: per scope one submitted inspection holds a pool of pending
# rectifications (made before the submit); each victim takes one and is driven to the state its
# action needs by the file's admin (ctx.admin, not one of the role users), so that close and
# reject never meet their own submitter. The pool inspection never closes: it keeps open ones.

EVIDENCE_TEXT = "整改佐证材料：已在门户网站公开。\n".encode("utf-8")
POOL = 44


def upload_evidence(path):
    r = ctx.admin.req("POST", path, body=EVIDENCE_TEXT, ctype="text/plain; charset=utf-8",
                      headers={"Content-Disposition": 'attachment; filename="setup.txt"'})
    expect_status(r, 201, "upload evidence")
    return r.json["id"]


def rect_action(rid, action, body=None, client=None):
    r = (client or ctx.admin).post(API + "/rectifications/%d/%s" % (rid, action), json=body or {})
    expect_status(r, 200, "%s rectification %d" % (action, rid))
    return r.json


def pool(s):
    w = world()
    if "pool" not in w:
        _, closer_token = make_user("inspector", username="mx_closer_%s_%s" % (ctx.prefix, ctx.uniq("c").rsplit("-", 1)[1]),
                                    password=PASSWORD)
        w["closer"] = ctx.server.client(closer_token)
        w["alt"] = {x: new_dept(dept(x)["id"]) for x in SCOPES}
        w["pool"] = {}
    if s not in w["pool"]:
        insp = new_inspection(s, started=True)
        item = first_item(insp["id"])
        prob = mk_problem(item, description=ctx.uniq("矩阵池问题"))
        rects = [mk_rect(prob["id"], dept(s)["id"], measure=ctx.uniq("矩阵池措施"), deadline=day(30))["id"]
                 for _ in range(POOL)]
        expect_status(ctx.admin.post(API + "/inspections/%d/submit" % insp["id"], json={}), 200, "submit")
        p = {"insp": insp["id"], "item": item, "rects": rects}
        # a rectification with a progress update, evidence and an extension request, and a closed one
        fix = rects.pop()
        r = ctx.admin.post(API + "/rectifications/%d/progress" % fix, json={"note": "进展", "percent": 10})
        expect_status(r, 201, "progress")
        p.update(fix=fix, progress=r.json["id"], evidence=upload_evidence(API + "/rectifications/%d/evidence" % fix))
        rect_action(fix, "request-extension", {"deadline": day(60), "reason": "需要时间"})
        p["item_evidence"] = upload_evidence(API + "/items/%d/evidence" % item)
        p["closed"] = drive(rects.pop(), "closed")
        w["pool"][s] = p
    return w["pool"][s]


def take(s):
    rects = pool(s)["rects"]
    check(rects, "the pool of rectifications for scope %s is used up (raise POOL)" % s)
    return rects.pop()


def drive(rid, state):
    if state in ("pending+request",):
        rect_action(rid, "request-extension", {"deadline": day(60), "reason": "需要时间"})
        return rid
    if state == "pending":
        return rid
    rect_action(rid, "start")
    if state == "in_progress":
        return rid
    upload_evidence(API + "/rectifications/%d/evidence" % rid)
    if state == "in_progress+evidence":
        return rid
    rect_action(rid, "submit")
    if state == "submitted":
        return rid
    rect_action(rid, "close", {"opinion": "同意销号"}, client=world()["closer"])
    check(state == "closed", state)
    return rid


def rect_refs(rid):
    return [("row", "rectifications", rid),
            ("sql", "extension requests", "SELECT json_agg(x ORDER BY id) FROM extension_requests x"
                                          " WHERE rectification_id = %d" % rid),
            ("sql", "closures", "SELECT json_agg(x ORDER BY id) FROM closures x WHERE rectification_id = %d" % rid),
            ("sql", "progress", "SELECT count(*) FROM progress_updates WHERE rectification_id = %d" % rid),
            ("sql", "evidence", "SELECT count(*) FROM evidence WHERE rectification_id = %d" % rid)]


def v_action(action, state):
    def make(s):
        rid = drive(take(s), state)
        return {"path": API + "/rectifications/%d/%s" % (rid, action), "etag_path": API + "/rectifications/%d" % rid,
                "rid": rid, "s": s, "refs": rect_refs(rid)}
    return make


ACTIONS = [  # action, the state it starts from, body, the status after it
    ("start", "pending", {}, "in_progress"),
    ("submit", "in_progress+evidence", {}, "submitted"),
    ("close", "submitted", {"opinion": "材料齐全，同意销号"}, "closed"),
    ("reject", "submitted", {"reason": "佐证材料不足"}, "in_progress"),
    ("request-extension", "pending", {"deadline": "+60", "reason": "需要更多时间"}, "pending"),
    ("extend", "pending", {"deadline": "+45", "reason": "延期"}, "pending"),
    ("refuse-extension", "pending+request", {"reason": "理由不充分"}, "pending"),
    ("reassign", "pending", {"responsible_department_id": "alt", "reason": "职责调整"}, "pending"),
    ("urge", "pending", {"note": "请抓紧"}, "pending"),
    ("revoke", "closed", {"reason": "材料不实"}, "in_progress"),
]


def action_body(template):
    def body(v, role):
        out = {}
        for k, x in template.items():
            if x == "alt":
                x = world()["alt"][v["s"]]["id"]
            elif isinstance(x, str) and x.startswith("+"):
                x = day(int(x[1:]))
            out[k] = x
        return out
    return body


def action_check(action, after):
    def chk(v, role, s, resp):
        eq(resp.json["status"], after, "%s/%s: status after %s" % (role, s, action))
        if action == "reassign":
            eq(resp.json["responsible_department_id"], world()["alt"][s]["id"], "responsible unit after reassign")
        if action == "urge":
            check(resp.json["urge_count"] >= 1, "urge_count")
    return chk


op("GET", "/api/v1/rectifications", scope="list",
   victim=lambda s: {"path": API + "/rectifications?" + qs(inspection_id=pool(s)["insp"]),
                     "refs": [("row", "rectifications", pool(s)["fix"])]},
   check=lists(lambda v, s: pool(s)["fix"]))
for _a, _state, _body, _after in ACTIONS:
    op("POST", "/api/v1/rectifications/{id}/" + _a, scope="record", victim=v_action(_a, _state), destructive=True,
       body=action_body(_body), check=action_check(_a, _after))


def v_urge_many(s):
    rid = take(s)
    return {"path": API + "/rectifications/urge", "rid": rid, "refs": rect_refs(rid)}


op("POST", "/api/v1/rectifications/urge", victim=v_urge_many, body=lambda v, role: {"ids": [v["rid"]], "note": "请抓紧"},
   check=lambda v, role, s, resp: eq([x["id"] for x in resp.json["data"]], [v["rid"]], "urged"))


def v_fix(rest, key="fix"):
    return lambda s: {"path": API + "/rectifications/%d/%s" % (pool(s)[key], rest), "refs": rect_refs(pool(s)[key])}


def non_empty(v, role, s, resp):
    check(resp.json["data"], "%s/%s: %s is empty" % (role, s, resp.path))


op("GET", "/api/v1/rectifications/{id}/closures", scope="record", victim=v_fix("closures", "closed"), check=non_empty)
op("GET", "/api/v1/rectifications/{id}/deadlines", scope="record", victim=v_fix("deadlines"), check=non_empty)
op("GET", "/api/v1/rectifications/{id}/extension-requests", scope="record", victim=v_fix("extension-requests"),
   check=non_empty)
op("GET", "/api/v1/rectifications/{id}/progress", scope="record", victim=v_fix("progress"),
   check=lists(lambda v, s: pool(s)["progress"]))


def v_progress_post(s):
    rid = take(s)
    return {"path": API + "/rectifications/%d/progress" % rid, "rid": rid, "refs": rect_refs(rid)}


op("POST", "/api/v1/rectifications/{id}/progress", scope="record", victim=v_progress_post,
   body=lambda v, role: {"note": ctx.uniq("矩阵进展"), "percent": 20})
op("GET", "/api/v1/progress/{id}", scope="record",
   victim=lambda s: {"path": API + "/progress/%d" % pool(s)["progress"], "refs": rect_refs(pool(s)["fix"])})
op("GET", "/api/v1/rectifications/{id}/evidence", scope="record", victim=v_fix("evidence"),
   check=lists(lambda v, s: pool(s)["evidence"]))


def v_evidence_post(s):
    rid = take(s)
    return {"path": API + "/rectifications/%d/evidence" % rid, "rid": rid, "refs": rect_refs(rid)}


op("POST", "/api/v1/rectifications/{id}/evidence", scope="record", victim=v_evidence_post, upload=True)
op("GET", "/api/v1/items/{id}/evidence", scope="record",
   victim=lambda s: {"path": API + "/items/%d/evidence" % pool(s)["item"], "refs": []},
   check=lists(lambda v, s: pool(s)["item_evidence"]))
op("POST", "/api/v1/items/{id}/evidence", scope="record",
   victim=lambda s: {"path": API + "/items/%d/evidence" % pool(s)["item"], "refs": [
       ("sql", "item evidence", "SELECT count(*) FROM evidence WHERE item_id = %d" % pool(s)["item"])]},
   upload=True)
op("GET", "/api/v1/evidence/{id}", scope="record",
   victim=lambda s: {"path": API + "/evidence/%d" % pool(s)["evidence"], "refs": []})
op("GET", "/api/v1/evidence/{id}/content", scope="record",
   victim=lambda s: {"path": API + "/evidence/%d/content" % pool(s)["evidence"], "refs": []},
   check=lambda v, role, s, resp: eq(resp.body, EVIDENCE_TEXT, "the evidence's bytes"))

# exports and imports (issue 11): the files are read back, a change is one record and one event


def csv_rows(resp):
    import csv
    import io
    return list(csv.reader(io.StringIO(resp.body.decode("utf-8-sig"), newline="")))


def chk_ledger_export(v, role, s, resp):
    ids = [int(r[0]) for r in csv_rows(resp)[1:]]
    if role == "department" and s == "out":
        eq(ids, [], "department user, another unit's ledger: only the header")
    else:
        check(pool(s)["fix"] in ids, "%s/%s: the export lacks rectification %d" % (role, s, pool(s)["fix"]))


def chk_archive(v, role, s, resp):
    import io
    import zipfile
    names = zipfile.ZipFile(io.BytesIO(resp.body)).namelist()
    check(names[0] == "manifest.csv" and len(names) >= 3, "%s/%s: the archive holds %s" % (role, s, names))


def v_import_form(s):
    insp = new_inspection(s)
    item = first_item(insp["id"])
    return {"path": API + "/inspections/%d/import" % insp["id"], "refs": [("row", "inspections", insp["id"]),
                                                                        ("row", "items", item)]}


def v_import_units(s):
    name = ctx.uniq("矩阵导入单位")
    return {"path": API + "/departments/import", "name": name, "s": s,
            "refs": [("count", "departments", "name", name)]}


def v_import_users(s):
    name = "mxi_%s_%s" % (ctx.prefix, ctx.uniq("u").rsplit("-", 1)[1])
    return {"path": API + "/users/import", "name": name, "refs": [("count", "users", "username", name)]}


op("GET", "/api/v1/inspections/{id}/export", scope="record",
   victim=lambda s: {"path": API + "/inspections/%d/export?format=csv" % fx(s)["insp"],
                     "refs": [("row", "inspections", fx(s)["insp"])]},
   check=lambda v, role, s, resp: eq(csv_rows(resp)[2][0], "序号", "%s/%s: the form's header row" % (role, s)))
op("GET", "/api/v1/inspections/{id}/evidence-archive", scope="record",
   victim=lambda s: {"path": API + "/inspections/%d/evidence-archive" % pool(s)["insp"], "refs": []},
   check=chk_archive)
op("GET", "/api/v1/rectifications/export",
   victim=lambda s: {"path": API + "/rectifications/export?" + qs(format="csv", responsible_department_id=dept(s)["id"]),
                     "refs": [("row", "rectifications", pool(s)["fix"])]},
   check=chk_ledger_export)
op("POST", "/api/v1/inspections/{id}/import", scope="record", victim=v_import_form, destructive=True,
   upload=lambda v, role: ("序号,工作任务,完成情况\r\n1,矩阵任务,已完成\r\n".encode("utf-8"), "text/csv"))
op("POST", "/api/v1/departments/import", victim=v_import_units, destructive=True,
   upload=lambda v, role: (("名称,上级单位\r\n%s,%s\r\n" % (v["name"], dept(v["s"])["name"])).encode("utf-8"),
                           "text/csv"))
op("POST", "/api/v1/users/import", victim=v_import_users, destructive=True,
   upload=lambda v, role: (("用户名,角色,初始密码\r\n%s,viewer,%s\r\n" % (v["name"], PASSWORD)).encode("utf-8"),
                           "text/csv"))

# audit
op("GET", "/api/v1/audit-events", scope="list",
   victim=lambda s: {"path": API + "/audit-events?" + qs(entity_type="inspection", entity_id=fx(s)["insp"]),
                     "refs": [("row", "inspections", fx(s)["insp"])]},
   check=lambda v, role, s, resp: check(
       any(e["action"] == "create" and e["entity_id"] == fx(s)["insp"] for e in resp.json["data"]),
       "%s/%s: the inspection's create event is not listed" % (role, s)))
op("GET", "/api/v1/audit-events/verify",
   victim=lambda s: {"path": API + "/audit-events/verify?" + qs(**{"from": world()["t0"], "to": now_utc(60)}),
                     "refs": []},
   check=lambda v, role, s, resp: check(resp.json["events_checked"] > 0, "events_checked"))


def v_checkpoint(s):
    r = ctx.admin.post(API + "/audit-events/checkpoints")
    expect_status(r, 201, "make a checkpoint")
    return {"path": API + "/audit-events/checkpoints/%d" % r.json["seq"], "seq": r.json["seq"], "refs": []}


def v_calendar(s):
    days = "SELECT coalesce(json_agg(d ORDER BY day)::text, '[]') FROM calendar_days d WHERE day BETWEEN " \
           "'2033-01-01' AND '2033-12-31'"
    return {"path": API + "/calendar/2033", "refs": [("sql", "calendar days of 2033", days),
                                                    ("sql", "calendar of 2033", "SELECT version FROM calendar_years"
                                                     " WHERE year = 2033")]}


op("GET", "/api/v1/calendar/{id}", victim=v_calendar)
op("PUT", "/api/v1/calendar/{id}", victim=v_calendar, etag=lambda v, role: "*",
   body=lambda v, role: {"days": [{"date": "2033-01-03", "working": False, "name": "矩阵假日"}]})

# statistics: every role but the department's sees both units; a department user its own only

def units_seen(ids_of_resp):
    def chk(v, role, s, resp):
        seen = set(ids_of_resp(resp.json))
        want = {dept("in")["id"]} | (set() if role == "department" else {dept("out")["id"]})
        eq(seen & {dept("in")["id"], dept("out")["id"]}, want, "%s/%s: the units counted" % (role, s))
    return chk


def v_statistics(query):
    return lambda s: {"path": API + "/statistics/" + query(), "refs": []}


op("GET", "/api/v1/statistics/inspections/{id}", scope="record",
   victim=lambda s: {"path": API + "/statistics/inspections/%d" % fx(s)["insp"], "refs": []},
   check=lambda v, role, s, resp: eq(resp.json["inspection"]["id"], fx(s)["insp"], "the inspection"))
op("GET", "/api/v1/statistics/departments", victim=v_statistics(lambda: "departments"),
   check=units_seen(lambda b: [x["department"]["id"] for x in b["data"]]))
op("GET", "/api/v1/statistics/matrix", victim=v_statistics(lambda: "matrix?checklist_id=%d" % world()["checklist"]["id"]),
   check=units_seen(lambda b: [x["department"]["id"] for x in b["units"]]))
op("GET", "/api/v1/statistics/ranking", victim=v_statistics(lambda: "ranking"),
   check=units_seen(lambda b: [x["department"]["id"] for x in b["data"]]))
op("GET", "/api/v1/statistics/trend", victim=lambda s: {
       "path": API + "/statistics/trend?responsible_department_id=%d" % dept(s)["id"], "refs": []},
   check=lambda v, role, s, resp: eq(sum(p["created"] for p in resp.json["data"]) > 0,
                                     role != "department" or s == "in", "%s/%s: the unit's counted" % (role, s)))

op("GET", "/api/v1/audit-events/checkpoints", victim=lambda s: {"path": API + "/audit-events/checkpoints", "refs": []})
op("POST", "/api/v1/audit-events/checkpoints", victim=lambda s: {"path": API + "/audit-events/checkpoints", "refs": []},
   destructive=True, check=lambda v, role, s, resp: eq(len(resp.json["heads"]), 16, "heads of a checkpoint"))
op("GET", "/api/v1/audit-events/checkpoints/{id}", victim=v_checkpoint,
   check=lambda v, role, s, resp: eq(resp.json["seq"], v["seq"], "the checkpoint"))


# webhooks: administrators only. The subscriptions are inactive and name a public address
# literal, so the shared database's changes queue nothing for them and no name is looked up.
HOOK = {"url": "https://93.184.215.14/ducha-matrix", "events": ["inspection.created"],
        "secret": "matrix-webhook-secret-0123456789", "active": False}


def new_webhook(description=None):
    r = ctx.admin.post(API + "/webhooks", json=dict(HOOK, description=description or ctx.uniq("矩阵订阅")))
    expect_status(r, 201, "make a webhook")
    return r.json


def v_webhook(s):
    w = new_webhook()
    return {"path": API + "/webhooks/%d" % w["id"], "refs": [("row", "webhooks", w["id"])]}


def v_new_webhook(s):
    d = ctx.uniq("矩阵新订阅")
    return {"path": API + "/webhooks", "description": d, "refs": [("count", "webhooks", "description", d)]}


def v_delivery(s):
    """A delivered delivery, written in SQL: no delivery loop runs on the shared database."""
    w = new_webhook()
    event = q1("INSERT INTO webhook_events (type, occurred_at, audit_event_id, resource_type, resource_id, change)"
               " VALUES ('inspection.created', now(), 1, 'inspection', 1, '{\"action\": \"create\", \"audit_event_id\": 1,"
               " \"actor_id\": null, \"request_id\": null, \"before\": null, \"after\": null}') RETURNING id")
    d = int(q1("INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, delivered_at)"
               " VALUES (%d, %s, 'delivered', 1, now()) RETURNING id" % (w["id"], event)))
    return {"path": API + "/webhook-deliveries/%d" % d, "id": d, "webhook": w["id"],
            "refs": [("row", "webhook_deliveries", d), ("count", "webhook_deliveries", "webhook_id", str(w["id"]))]}


def v_deliveries(s):
    v = v_delivery(s)
    return dict(v, path=API + "/webhooks/%d/deliveries" % v["webhook"])


op("GET", "/api/v1/webhooks", victim=lambda s: {"path": API + "/webhooks", "refs": []})
op("POST", "/api/v1/webhooks", victim=v_new_webhook, destructive=True,
   body=lambda v, role: dict(HOOK, description=v["description"]))
op("GET", "/api/v1/webhooks/{id}", victim=v_webhook,
   check=lambda v, role, s, resp: check("secret" not in resp.json, "the secret is not shown"))
op("PATCH", "/api/v1/webhooks/{id}", victim=v_webhook, body=lambda v, role: {"events": ["inspection.closed"]},
   etag=admin_etag)
op("DELETE", "/api/v1/webhooks/{id}", victim=v_webhook, etag=admin_etag, destructive=True, check=gone_after)
op("GET", "/api/v1/webhooks/{id}/deliveries", victim=v_deliveries,
   check=lambda v, role, s, resp: eq([d["id"] for d in resp.json["data"]], [v["id"]], "the delivery"))
op("GET", "/api/v1/webhook-deliveries/{id}", victim=v_delivery,
   check=lambda v, role, s, resp: eq(resp.json["status"], "delivered", "the delivery"))
op("POST", "/api/v1/webhook-deliveries/{id}/redeliver", victim=lambda s: (lambda v: dict(v, path=v["path"] + "/redeliver"))(v_delivery(s)), destructive=True,
   check=lambda v, role, s, resp: eq(resp.json["redelivery_of"], v["id"], "a new delivery of it"))


# ------------------------------------------------------------------------------ the matrix

def operations():
    out = []
    for method, path in spec().operations():
        item = spec().doc["paths"][path][method.lower()]
        out.append((method, path, item.get("x-roles"), item))
    return out


def success_status(item):
    codes = sorted(int(c) for c in (item.get("responses") or {}) if str(c).isdigit() and 200 <= int(c) < 300)
    check(len(codes) >= 1, "no 2xx response documented")
    return codes[0]


def expectation(method, path, xroles, role, s):
    d = OPS[(method, path)]
    if "public" in xroles:
        return "ok"
    if role not in xroles:
        return "forbidden"
    if role == "department" and s == "out" and d["scope"] == "record":
        return "hidden"
    if role == "department" and s == "out" and d["scope"] == "list":
        return "empty"
    return "ok"


def send(method, path, d, v, role, request_id):
    token = d["token"](v, role) if d["token"] else role_user(role)["token"]
    headers = {"X-Request-Id": request_id}
    kw = {}
    if d["etag"]:
        kw["if_match"] = d["etag"](v, role)
    if callable(d["upload"]):  # a file of the operation's own
        kw["body"], kw["ctype"] = d["upload"](v, role)
    elif d["upload"]:
        headers["Content-Disposition"] = 'attachment; filename="%s.txt"' % request_id
        kw["body"], kw["ctype"] = EVIDENCE_TEXT, "text/plain; charset=utf-8"
    elif d["body"] is not None:
        kw["json"] = d["body"](v, role)
        if method == "PATCH":
            kw["ctype"] = "application/merge-patch+json"
    return ctx.server.client(token).req(method, v["path"], headers=headers, **kw)


def judge(method, path, xroles, item, d, v, role, s, want, resp):
    """Raises TestFailure when the answer is not what the cell expects."""
    if want == "forbidden":
        expect_problem(resp, 403, "forbidden")
    elif want == "hidden":
        expect_problem(resp, 404, "not-found")
    else:
        expect_status(resp, success_status(item))
        if want == "empty":
            eq(resp.json["data"], [], "department user, list filtered by an out-of-scope unit")
        elif d["check"]:
            d["check"](v, role, s, resp)


TALLY = {}


def run_operation(method, path):
    found = [(x, it) for m, p, x, it in operations() if (m, p) == (method, path)]
    check(found, "%s %s is not in openapi.yaml" % (method, path))
    xroles, item = found[0]
    d = OPS[(method, path)]
    world()
    failures = []
    cells = [(role, s) for s in SCOPES for role in ROLES]
    victims = {}

    def victim(s):
        if s not in victims or victims[s] is None:
            victims[s] = d["victim"](s)
            victims[s].setdefault("refs", [])
        return victims[s]

    # 1. every cell that must not change anything: refused ones and reads
    changing = []
    for role, s in cells:
        want = expectation(method, path, xroles, role, s)
        kind = "change" if want == "ok" and method != "GET" else "read" if want == "ok" else want
        TALLY[kind] = TALLY.get(kind, 0) + 1
        if kind == "change":
            changing.append((role, s))
            continue
        try:
            v = victim(s)
            if d["token"] and want != "ok":
                d["token"](v, role)
            request_id = rid()
            before = snapshot(v["refs"], request_id)
            resp = send(method, path, d, v, role, request_id)
            after = snapshot(v["refs"], request_id)
            problems = []
            try:
                judge(method, path, xroles, item, d, v, role, s, want, resp)
            except TestFailure as exc:
                problems.append(str(exc))
            changed = diff(before, after)
            if changed:
                problems.append("a %s answer changed something: %s" % (resp.status, "; ".join(changed)))
                victims[s] = None  # the next cell gets an untouched target
            check(not problems, " / ".join(problems))
        except TestFailure as exc:
            failures.append("%s/%s (expected %s): %s" % (role, s, want, exc))
    # 2. the allowed changes: the documented success, one audit event each
    sent = []
    for role, s in changing:
        try:
            v = victim(s)
            request_id = rid()
            resp = send(method, path, d, v, role, request_id)
            judge(method, path, xroles, item, d, v, role, s, "ok", resp)
            sent.append((role, s, request_id))
        except TestFailure as exc:
            failures.append("%s/%s (expected success): %s" % (role, s, exc))
        if d["destructive"]:
            victims[s] = None
    if sent:
        counts = dict(line.split("|") for line in q1(
            "SELECT request_id, count(*) FROM audit_events WHERE occurred_at >= '%s' AND request_id IN (%s)"
            " GROUP BY 1" % (world()["t0"], ", ".join(sql_str(x[2]) for x in sent))).splitlines() if line)
        for role, s, request_id in sent:
            n = int(counts.get(request_id, 0))
            if n != 1:
                failures.append("%s/%s: the change wrote %d audit events with its request id %s, expected 1" % (
                    role, s, n, request_id))
    if failures:
        raise TestFailure("%d of %d cells failed:\n  %s" % (len(failures), len(cells), "\n  ".join(failures)))


@test
def every_operation_declares_known_roles():
    ops = operations()
    bad = []
    for method, path, xroles, _ in ops:
        if not isinstance(xroles, list) or not xroles:
            bad.append("%s %s: no x-roles" % (method, path))
        elif not set(xroles) <= set(ROLES) | {"public"} or ("public" in xroles and len(xroles) > 1):
            bad.append("%s %s: x-roles %s" % (method, path, xroles))
        elif (method, path) not in OPS:
            bad.append("%s %s: the matrix has no valid request for this operation (add it to OPS)" % (method, path))
    stale = sorted(set(OPS) - {(m, p) for m, p, _, _ in ops})
    bad.extend("%s %s: in the matrix, not in openapi.yaml" % k for k in stale)
    check(not bad, "\n".join(bad))
    n = len(ops)
    sys.stdout.write("# matrix: %d operations x %d roles x %d scopes = %d cells\n" % (
        n, len(ROLES), len(SCOPES), n * len(ROLES) * len(SCOPES)))
    sys.stdout.flush()


@test
def public_operations_work_without_a_token():
    world()
    public = [(m, p) for m, p, x, _ in operations() if x == ["public"]]
    check(public, "no public operation")
    for method, path in public:
        d = OPS[(method, path)]
        v = d["victim"]("in")
        kw = {"json": d["body"](v, None)} if d["body"] else {}
        r = ctx.server.client(None).req(method, v["path"], **kw)
        want = 201 if method == "POST" else 200
        eq(r.status, want, "%s %s without a token" % (method, path))
    # and nothing else does
    for method, path, x, _ in operations():
        if x == ["public"]:
            continue
        concrete = path.replace("{id}", "1")
        kw = {"json": {}} if method in ("POST", "PATCH") else {}
        r = ctx.server.client(None).req(method, concrete, if_match="*" if method in ("PATCH", "DELETE") else None, **kw)
        if r.status != 401:
            raise TestFailure("%s %s without a token: %d, expected 401" % (method, concrete, r.status))


def _register(method, path):
    def fn():
        run_operation(method, path)
    test("%s %s: 4 roles x 2 scopes" % (method, path))(fn)


for _m, _p in list(OPS):
    _register(_m, _p)


@test
def tally():
    sys.stdout.write("# cells: %s\n" % ", ".join("%s %d" % kv for kv in sorted(TALLY.items())))
    eq(sum(TALLY.values()), len(operations()) * len(ROLES) * len(SCOPES), "cells run")


if __name__ == "__main__":
    try:
        fd = os.open(os.path.join(KEY_DIR, "audit.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, TEST_KEY)
        os.close(fd)
        main(server_env={"DUCHA_AUDIT_KEY_FILE": os.path.join(KEY_DIR, "audit.key")})
    finally:
        psql.close()
        shutil.rmtree(KEY_DIR, ignore_errors=True)
