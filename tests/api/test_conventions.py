#!/usr/bin/python3
"""Conventions shared by every route: auth, request ids, 404/405, CORS, health, lists,
ETag/If-Match, Idempotency-Key."""

import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, GENERATED_ID_RE, check, ctx, eq, expect_problem, expect_status, main,  # noqa: E402
                     make_user, mk_dept, mk_inspection, qs, test, yaml, db, db_int, sql_str, DUCHA_SRC)

ORIGIN = "https://app.example"
# what a browser front end reads: Content-Disposition names the exports (issue 11)
EXPOSE = ["ETag", "Location", "Link", "X-Request-Id", "Idempotent-Replayed", "Retry-After", "Content-Disposition"]


def anon():
    return ctx.server.client(None)


# ------------------------------------------------------------------ auth

@test
def no_token_is_401_problem():
    for path in ("/departments", "/checklists", "/inspections", "/batches", "/departments/1",
                 "/inspections/1/form", "/items/1"):
        r = anon().get(API + path)
        expect_problem(r, 401, "unauthorized")
    r = anon().post(API + "/departments", json={"name": ctx.uniq("x")})
    expect_problem(r, 401, "unauthorized")


@test
def bad_tokens_are_401_problem():
    bad = ["Bearer dch_" + "A" * 43, "Bearer nonsense", "Bearer ", "Basic dXNlcjpwYXNz",
           "bearer", "Token " + ctx.admin.token, "Bearer " + ctx.admin.token + "x",
           "Bearer " + ctx.admin.token[:-1]]
    for h in bad:
        r = anon().get(API + "/departments", headers={"Authorization": h})
        expect_problem(r, 401, "unauthorized")


@test
def bad_token_writes_nothing():
    name = ctx.uniq("unauth")
    r = anon().post(API + "/departments", json={"name": name},
                    headers={"Authorization": "Bearer dch_" + "B" * 43})
    expect_problem(r, 401, "unauthorized")
    eq(db_int("select count(*) from departments where name = %s" % sql_str(name)), 0, "rows written")


@test
def valid_token_is_accepted():
    r = ctx.admin.get(API + "/departments")
    expect_status(r, 200)
    eq(r.ctype, "application/json", "Content-Type")
    # the scheme is case-insensitive (RFC 7235)
    r = anon().get(API + "/departments", headers={"Authorization": "bearer " + ctx.admin.token})
    expect_status(r, 200, "lower-case scheme")


@test
def token_format():
    check(re.match(r"^dch_[A-Za-z0-9_-]{43}$", ctx.admin.token), "token %r is not dch_ + 43 base64url chars" % ctx.admin.token)


# ------------------------------------------------------------------ request ids

@test
def request_id_is_echoed():
    for rid in ("abc-123", "A.b_c:d-9", "x" * 128, "0"):
        r = ctx.admin.get(API + "/departments?limit=1", headers={"X-Request-Id": rid})
        expect_status(r, 200)
        eq(r.h("X-Request-Id"), rid, "echoed X-Request-Id")
    # also on errors, and inside the problem body
    r = anon().get(API + "/departments", headers={"X-Request-Id": "trace-401"})
    b = expect_problem(r, 401, "unauthorized")
    eq(r.h("X-Request-Id"), "trace-401")
    eq(b.get("request_id"), "trace-401")
    r = ctx.admin.get("/healthz", headers={"X-Request-Id": "health-1"})
    eq(r.h("X-Request-Id"), "health-1", "on /healthz")


@test
def request_id_is_generated():
    seen = set()
    for _ in range(3):
        r = ctx.admin.get(API + "/departments?limit=1")
        rid = r.h("X-Request-Id") or ""
        check(GENERATED_ID_RE.match(rid), "generated X-Request-Id %r is not 32 hex chars" % rid)
        seen.add(rid)
    eq(len(seen), 3, "distinct generated ids")
    r = anon().get("/healthz")
    check(GENERATED_ID_RE.match(r.h("X-Request-Id") or ""), "/healthz X-Request-Id %r" % r.h("X-Request-Id"))


@test
def insane_request_id_is_replaced():
    for rid in ("x" * 129, "has space", "semi;colon", "slash/es", "quote\"d", "ünïcode".encode("utf-8").decode("latin-1")):
        r = ctx.admin.get(API + "/departments?limit=1", headers={"X-Request-Id": rid})
        expect_status(r, 200)
        got = r.h("X-Request-Id") or ""
        check(got != rid and GENERATED_ID_RE.match(got), "X-Request-Id %r sent, got %r" % (rid, got))


# ------------------------------------------------------------------ 404 / 405

@test
def unknown_path_is_404_problem():
    for path in (API + "/nope", API + "/departments/1/nope", API + "/", "/nope", API + "/departmentsx",
                 "/api/v2/departments"):
        r = ctx.admin.get(path, validate="problem")
        expect_problem(r, 404, "not-found")


@test
def wrong_method_is_405_with_allow():
    cases = [("DELETE", API + "/departments", {"GET", "POST"}),
             ("PUT", API + "/departments/1", {"GET", "PATCH", "DELETE"}),
             ("GET", API + "/inspections/1/start", {"POST"}),
             ("POST", API + "/inspections/1/form", {"GET"}),
             ("POST", API + "/items/1", {"GET", "PATCH"}),
             ("POST", "/healthz", {"GET"})]
    for method, path, must in cases:
        r = ctx.admin.req(method, path, body=b"{}" if method in ("POST", "PUT") else None, validate="problem")
        expect_problem(r, 405, "method-not-allowed")
        allow = {m.strip().upper() for m in (r.h("Allow") or "").split(",") if m.strip()}
        check(must <= allow, "%s %s: Allow %r lacks %s" % (method, path, r.h("Allow"), sorted(must - allow)))
        check(method not in allow, "%s %s: Allow %r contains the refused method" % (method, path, r.h("Allow")))


# ------------------------------------------------------------------ CORS

def cors_headers(r):
    return {k: r.h(k) for k in ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
                                "Access-Control-Allow-Headers", "Access-Control-Max-Age",
                                "Access-Control-Expose-Headers", "Access-Control-Allow-Credentials")
            if r.h(k) is not None}


def csv_set(v):
    return {x.strip().lower() for x in (v or "").split(",") if x.strip()}


@test
def cors_preflight_for_configured_origin():
    r = anon().req("OPTIONS", API + "/departments", validate=False, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    expect_status(r, 204)
    eq(r.h("Access-Control-Allow-Origin"), ORIGIN)
    # every method of the route table (PUT: /calendar/{year})
    eq(csv_set(r.h("Access-Control-Allow-Methods")), {"get", "post", "put", "patch", "delete", "options"},
       "Access-Control-Allow-Methods")
    eq(csv_set(r.h("Access-Control-Allow-Headers")),
       {"authorization", "content-type", "if-match", "idempotency-key", "x-request-id"},
       "Access-Control-Allow-Headers")
    eq(r.h("Access-Control-Max-Age"), "600")
    check("origin" in csv_set(r.h("Vary")), "Vary %r lacks Origin" % r.h("Vary"))
    eq(r.body, b"", "preflight body")
    # a preflight for a single resource path and for PATCH
    r = anon().req("OPTIONS", API + "/items/1", validate=False, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "PATCH"})
    expect_status(r, 204)
    eq(r.h("Access-Control-Allow-Origin"), ORIGIN)


@test
def cors_simple_request_for_configured_origin():
    r = ctx.admin.get(API + "/departments?limit=1", headers={"Origin": ORIGIN})
    expect_status(r, 200)
    eq(r.h("Access-Control-Allow-Origin"), ORIGIN)
    check("origin" in csv_set(r.h("Vary")), "Vary %r lacks Origin" % r.h("Vary"))
    eq(csv_set(r.h("Access-Control-Expose-Headers")), {x.lower() for x in EXPOSE}, "Access-Control-Expose-Headers")
    # error responses carry CORS headers too, so the front end can read the problem
    r = anon().get(API + "/departments", headers={"Origin": ORIGIN})
    expect_problem(r, 401, "unauthorized")
    eq(r.h("Access-Control-Allow-Origin"), ORIGIN, "CORS on a 401")
    r = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("cors")}, headers={"Origin": ORIGIN})
    expect_status(r, 201)
    eq(r.h("Access-Control-Allow-Origin"), ORIGIN, "CORS on a 201")


@test
def cors_nothing_for_other_origins():
    for origin in ("https://evil.example", "https://app.example.evil", "http://app.example", "null",
                   ORIGIN + "/"):
        r = ctx.admin.get(API + "/departments?limit=1", headers={"Origin": origin})
        expect_status(r, 200)
        eq(cors_headers(r), {}, "CORS headers for origin %s" % origin)
        r = anon().req("OPTIONS", API + "/departments", validate=False, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        eq(cors_headers(r), {}, "preflight CORS headers for origin %s (status %d)" % (origin, r.status))
    r = ctx.admin.get(API + "/departments?limit=1")
    eq(cors_headers(r), {}, "CORS headers without Origin")


# ------------------------------------------------------------------ outside /api/v1

@test
def healthz():
    r = anon().get("/healthz")
    expect_status(r, 200)
    eq(r.json, {"status": "ok"})


@test
def readyz():
    r = anon().get("/readyz")
    expect_status(r, 200)
    eq(r.json, {"status": "ready"})


@test
def openapi_yaml_is_served():
    r = anon().get("/openapi.yaml")
    expect_status(r, 200)
    eq(r.ctype, "application/yaml", "Content-Type")
    doc = yaml.safe_load(r.body)
    check(isinstance(doc, dict) and str(doc.get("openapi", "")).startswith("3."), "not an OpenAPI 3 document")
    check(isinstance(doc.get("paths"), dict) and doc["paths"], "no paths")
    with open(os.path.join(DUCHA_SRC, "openapi.yaml"), "rb") as f:
        eq(r.body == f.read(), True, "served /openapi.yaml equals the repository's openapi.yaml")


# ------------------------------------------------------------------ lists

@test
def limit_bounds():
    for bad in ("0", "201", "abc", "-1", "1.5", "", "1e2", "99999999999999999999"):
        r = ctx.admin.get(API + "/departments?limit=" + bad)
        expect_problem(r, 400, "invalid-query", pointers=["/query/limit"])
    for good in ("1", "200", "50"):
        r = ctx.admin.get(API + "/departments?limit=" + good)
        expect_status(r, 200)
        check(len(r.json["data"]) <= int(good), "limit %s returned %d" % (good, len(r.json["data"])))
    r = ctx.admin.get(API + "/departments?limit=1")
    eq(len(r.json["data"]), 1, "limit=1")


@test
def default_limit_is_50():
    total = ctx.admin.get(API + "/departments?include_total=true&limit=1").json.get("total")
    check(isinstance(total, int), "total %r" % total)
    for _ in range(max(0, 55 - total)):
        mk_dept()
    r = ctx.admin.get(API + "/departments")
    expect_status(r, 200)
    eq(len(r.json["data"]), 50, "default page size")
    check(r.json.get("next_cursor"), "no next_cursor with more than 50 departments")


@test
def very_long_query_value_is_400():
    r = ctx.admin.get(API + "/departments?" + qs(q="督" * 300))
    expect_problem(r, 400, "invalid-query", pointers=["/query/q"])
    r = ctx.admin.get(API + "/departments?cursor=" + "A" * 4000)
    expect_problem(r, 400, "invalid-query", pointers=["/query/cursor"])


@test
def unknown_query_parameter_is_400():
    for path, name in ((API + "/departments?bogus=1", "bogus"), (API + "/inspections?colour=red", "colour"),
                       (API + "/checklists?Limit=5", "Limit"), (API + "/batches?q=a&extra=", "extra")):
        r = ctx.admin.get(path)
        expect_problem(r, 400, "invalid-query", pointers=["/query/" + name])


@test
def repeated_query_parameter_is_400():
    for path, name in ((API + "/departments?limit=1&limit=2", "limit"), (API + "/departments?q=a&q=b", "q"),
                       (API + "/inspections?status=draft&status=sleeping", "status")):
        r = ctx.admin.get(path)
        expect_problem(r, 400, "invalid-query", pointers=["/query/" + name])


@test
def a_list_filter_takes_both_forms():
    """status=a,b (explode: false, as declared) and status=a&status=b (what common clients send)."""
    target = mk_dept()
    drafts = sorted(mk_inspection(target["id"])["id"] for _ in range(2))
    for query in ("status=draft,closed", "status=draft&status=closed", "status=closed&status=draft"):
        r = ctx.admin.get(API + "/inspections?target_department_id=%d&%s" % (target["id"], query))
        expect_status(r, 200)
        eq(sorted(i["id"] for i in r.json["data"]), drafts, query)
    r = ctx.admin.get(API + "/inspections?target_department_id=%d&status=closed&status=in_progress" % target["id"])
    eq(r.json["data"], [], "neither status: none")


@test
def bad_query_values_are_400():
    for path, name in ((API + "/departments?include_total=yes", "include_total"),
                       (API + "/departments?cursor=not-a-cursor", "cursor"),
                       (API + "/departments?kind=planet", "kind"),
                       (API + "/departments?parent_id=abc", "parent_id"),
                       (API + "/inspections?status=sleeping", "status"),
                       (API + "/inspections?inspected_from=2026-02-30", "inspected_from")):
        r = ctx.admin.get(path)
        expect_problem(r, 400, "invalid-query", pointers=["/query/" + name])


def _walk(path, limit, follow_link=False):
    pages = []
    url = "%s&limit=%d" % (path, limit)
    while True:
        r = ctx.admin.get(url)
        expect_status(r, 200)
        pages.append(r)
        nc = r.json.get("next_cursor")
        link = r.h("Link")
        if nc is None:
            check(link is None or 'rel="next"' not in link, "last page has a next Link: %r" % link)
            return pages
        check(isinstance(nc, str) and nc, "next_cursor %r" % nc)
        check(link is not None, "page with next_cursor has no Link header")
        m = re.match(r'^\s*<([^>]+)>\s*;\s*rel="?next"?\s*$', link)
        check(m, "Link header %r is not <...>; rel=\"next\"" % link)
        target = m.group(1)
        u = urllib.parse.urlsplit(target)
        check(u.path == path.split("?")[0], "Link path %r" % u.path)
        q = urllib.parse.parse_qs(u.query)
        eq(q.get("cursor"), [nc], "Link cursor equals next_cursor")
        check(len(pages) < 1000, "too many pages")
        url = (u.path + "?" + u.query) if follow_link else "%s&limit=%d&cursor=%s" % (
            path, limit, urllib.parse.quote(nc, safe=""))


@test
def cursor_paging_walks_every_department_once():
    mark = ctx.uniq("翻页")
    mine = [mk_dept(name="%s-%02d" % (mark, i))["id"] for i in range(7)]
    path = API + "/departments?" + qs(q=mark)
    for follow in (False, True):
        pages = _walk(path, 3, follow_link=follow)
        ids = [d["id"] for p in pages for d in p.json["data"]]
        eq(ids, mine, "ids seen walking q=%s by 3 (follow Link=%s)" % (mark, follow))
        eq([len(p.json["data"]) for p in pages], [3, 3, 1], "page sizes")
    # the whole collection: ascending ids, no duplicates, the seed and our departments inside
    pages = _walk(API + "/departments?include_total=false", 200 if db_int("select count(*) from departments") > 1400 else 7)
    ids = [d["id"] for p in pages for d in p.json["data"]]
    eq(len(ids), len(set(ids)), "duplicates while walking all departments")
    eq(ids, sorted(ids), "departments are ordered by id ascending")
    check(set(mine) <= set(ids), "walk missed some of our departments")
    names = {d["name"] for p in pages for d in p.json["data"]}
    check({"市法制办", "市政务公开办", "市直有关部门"} <= names, "walk missed seed departments")


@test
def include_total():
    mark = ctx.uniq("总数")
    for i in range(4):
        mk_dept(name="%s-%d" % (mark, i))
    r = ctx.admin.get(API + "/departments?" + qs(q=mark, limit=2, include_total="true"))
    expect_status(r, 200)
    eq(r.json.get("total"), 4, "total")
    eq(len(r.json["data"]), 2)
    for extra in ({}, {"include_total": "false"}):
        r = ctx.admin.get(API + "/departments?" + qs(q=mark, limit=2, **extra))
        expect_status(r, 200)
        check("total" not in r.json, "total present without include_total=true (%s)" % extra)
    # total stays the same on the next page
    nc = ctx.admin.get(API + "/departments?" + qs(q=mark, limit=2, include_total="true")).json["next_cursor"]
    r = ctx.admin.get(API + "/departments?" + qs(q=mark, limit=2, include_total="true", cursor=nc))
    eq(r.json.get("total"), 4, "total on page 2")
    eq(r.json.get("next_cursor"), None, "next_cursor on the last page")


@test
def list_body_shape():
    r = ctx.admin.get(API + "/departments?limit=2")
    expect_status(r, 200)
    eq(sorted(r.json), ["data", "next_cursor"], "list keys")


# ------------------------------------------------------------------ ETag / If-Match

@test
def etag_and_if_match():
    d = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("etag")})
    expect_status(d, 201)
    eq(d.etag, '"1"', "ETag on create")
    did = d.json["id"]
    path = API + "/departments/%d" % did
    r = ctx.admin.get(path)
    eq(r.etag, '"1"', "ETag on GET")
    new = ctx.uniq("etag-renamed")
    r = ctx.admin.patch(path, json={"name": new}, ctype="application/merge-patch+json")
    expect_problem(r, 428, "precondition-required")
    r = ctx.admin.patch(path, json={"name": new}, if_match='"7"', ctype="application/merge-patch+json")
    expect_problem(r, 412, "precondition-failed")
    eq(ctx.admin.get(path).json["name"], d.json["name"], "name after 412")
    r = ctx.admin.patch(path, json={"name": new}, if_match='"1"', ctype="application/merge-patch+json")
    expect_status(r, 200)
    eq(r.etag, '"2"', "ETag after PATCH")
    eq(r.json["name"], new)
    r = ctx.admin.patch(path, json={"kind": "group"}, if_match='"1"')
    expect_problem(r, 412, "precondition-failed")
    r = ctx.admin.patch(path, json={"kind": "group"}, if_match="*")
    expect_status(r, 200)
    eq(r.etag, '"3"', "ETag after PATCH with If-Match: *")
    eq(r.json["kind"], "group")
    r = ctx.admin.delete(path)
    expect_problem(r, 428, "precondition-required")
    r = ctx.admin.delete(path, if_match='"2"')
    expect_problem(r, 412, "precondition-failed")
    r = ctx.admin.delete(path, if_match='"3"')
    expect_status(r, 204)
    eq(r.body, b"", "204 body")
    expect_problem(ctx.admin.get(path), 404, "not-found")


@test
def weak_etag_never_matches_if_match():
    d = mk_dept()
    r = ctx.admin.patch(API + "/departments/%d" % d["id"], json={"kind": "group"}, if_match='W/"1"')
    expect_problem(r, 412, "precondition-failed")
    for bad in ('1', '"1', 'abc'):
        r = ctx.admin.patch(API + "/departments/%d" % d["id"], json={"kind": "group"}, if_match=bad)
        check(r.status in (400, 412), "If-Match %r: %d" % (bad, r.status))
    eq(ctx.admin.get(API + "/departments/%d" % d["id"]).json["kind"], "department", "unchanged")


@test
def if_match_star_delete_and_list_of_etags():
    d = mk_dept()
    path = API + "/departments/%d" % d["id"]
    r = ctx.admin.patch(path, json={"name": ctx.uniq("multi")}, if_match='"5", "1"')
    expect_status(r, 200, "If-Match with a list containing the current ETag")
    r = ctx.admin.delete(path, if_match="*")
    expect_status(r, 204)
    r = ctx.admin.delete(path, if_match="*")
    expect_problem(r, 404, "not-found")


def _parallel(n, fn):
    import threading
    out = [None] * n

    def one(i):
        try:
            out[i] = fn(i)
        except Exception as exc:
            out[i] = exc
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


@test
def concurrent_patches_with_the_same_etag():
    d = mk_dept()
    path = API + "/departments/%d" % d["id"]
    rs = _parallel(6, lambda i: ctx.admin.patch(path, json={"name": d["name"] + "-%d" % i}, if_match='"1"'))
    for r in rs:
        check(not isinstance(r, Exception), "request failed: %r" % r)
    statuses = sorted(r.status for r in rs)
    eq(statuses, [200] + [412] * 5, "one PATCH wins, the others get 412")
    g = ctx.admin.get(path)
    eq(g.etag, '"2"')


# ------------------------------------------------------------------ Idempotency-Key

@test
def idempotency_key_replays():
    key = "idem-" + ctx.uniq("k")
    body = {"name": ctx.uniq("幂等")}
    r1 = ctx.admin.post(API + "/departments", json=body, headers={"Idempotency-Key": key})
    expect_status(r1, 201)
    check((r1.h("Idempotent-Replayed") or "false").lower() != "true", "first response marked as replayed")
    r2 = ctx.admin.post(API + "/departments", json=body, headers={"Idempotency-Key": key})
    expect_status(r2, 201, "replay")
    eq(r2.h("Idempotent-Replayed"), "true", "Idempotent-Replayed")
    eq(r2.h("Location"), r1.h("Location"), "Location of the replay")
    eq(r2.json, r1.json, "body of the replay")
    eq(r2.etag, r1.etag, "ETag of the replay")
    eq(db_int("select count(*) from departments where name = %s" % sql_str(body["name"])), 1, "rows created")
    # the same key with another body
    r3 = ctx.admin.post(API + "/departments", json={"name": body["name"] + "-other"}, headers={"Idempotency-Key": key})
    expect_problem(r3, 422, "idempotency-key-reused")
    eq(db_int("select count(*) from departments where name = %s" % sql_str(body["name"] + "-other")), 0,
       "rows created by the 422")


@test
def concurrent_requests_with_one_key_create_one_resource():
    key = "race-" + ctx.uniq("k")
    body = {"name": ctx.uniq("并发幂等")}
    rs = _parallel(6, lambda i: ctx.admin.post(API + "/departments", json=body, headers={"Idempotency-Key": key}))
    for r in rs:
        check(not isinstance(r, Exception), "request failed: %r" % r)
    for r in rs:
        check(r.status in (201, 409), "status %d: %s" % (r.status, r.body[:200]))
        if r.status == 409:
            expect_problem(r, 409, "idempotency-in-progress")
    created = [r for r in rs if r.status == 201]
    check(created, "no request succeeded")
    eq(len({r.h("Location") for r in created}), 1, "Locations of the 201s")
    eq(sum(1 for r in created if r.h("Idempotent-Replayed") != "true"), 1, "exactly one original response")
    eq(db_int("select count(*) from departments where name = %s" % sql_str(body["name"])), 1, "rows created")


@test
def idempotency_key_is_per_user_and_route():
    key = "shared-" + ctx.uniq("k")
    r1 = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("u1")}, headers={"Idempotency-Key": key})
    expect_status(r1, 201)
    _, tok2 = make_user("admin")
    other = ctx.server.client(tok2)
    r2 = other.post(API + "/departments", json={"name": ctx.uniq("u2")}, headers={"Idempotency-Key": key})
    expect_status(r2, 201, "another user with the same key")
    check(r2.h("Idempotent-Replayed") != "true", "another user's request was replayed")
    check(r2.h("Location") != r1.h("Location"), "another user got the first user's resource")
    # same user, same key, another route: never a replay of the first response (a new
    # resource or 422 idempotency-key-reused are both acceptable readings of the brief)
    r3 = ctx.admin.post(API + "/batches", json={"name": ctx.uniq("批次")}, headers={"Idempotency-Key": key})
    if r3.status == 422:
        expect_problem(r3, 422, "idempotency-key-reused")
    else:
        expect_status(r3, 201, "same key on another route")
        check(r3.h("Idempotent-Replayed") != "true", "another route was replayed")
        check(r3.h("Location", ) != r1.h("Location"), "another route got the first resource")


@test
def idempotency_failed_request_frees_the_key():
    key = "fail-" + ctx.uniq("k")
    r = ctx.admin.post(API + "/departments", json={"name": ""}, headers={"Idempotency-Key": key})
    expect_problem(r, 400, "validation-failed", pointers=["/name"])
    name = ctx.uniq("after-fail")
    r = ctx.admin.post(API + "/departments", json={"name": name}, headers={"Idempotency-Key": key})
    expect_status(r, 201, "valid request after a failed one with the same key")
    check(r.h("Idempotent-Replayed") != "true", "replayed after a failure")
    r2 = ctx.admin.post(API + "/departments", json={"name": name}, headers={"Idempotency-Key": key})
    expect_status(r2, 201)
    eq(r2.h("Idempotent-Replayed"), "true")


def _idem_row(key):
    return db("select user_id || '|' || method || '|' || path || '|' || state from idempotency_keys "
              "where key = %s" % sql_str(key)).split("|")


@test
def idempotency_first_request_still_running_is_409():
    # a request with the key is recorded as running (as if another worker were still on it)
    k1 = "probe-" + ctx.uniq("k")
    expect_status(ctx.admin.post(API + "/departments", json={"name": ctx.uniq("probe")}, headers={"Idempotency-Key": k1}), 201)
    uid, method, path, state = _idem_row(k1)
    eq(state, "done")
    key = "running-" + ctx.uniq("k")
    body = {"name": ctx.uniq("进行中")}
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    db("insert into idempotency_keys (user_id, key, method, path, body_hash) values (%s, %s, %s, %s, "
       "sha256('\\x%s'::bytea))" % (uid, sql_str(key), sql_str(method), sql_str(path), raw.hex()))
    r = ctx.admin.post(API + "/departments", body=raw, headers={"Idempotency-Key": key})
    expect_problem(r, 409, "idempotency-in-progress")
    eq(db_int("select count(*) from departments where name = %s" % sql_str(body["name"])), 0, "rows written")
    # a running entry abandoned long ago is taken over
    db("update idempotency_keys set created_at = now() - interval '1 hour' where key = %s" % sql_str(key))
    r = ctx.admin.post(API + "/departments", body=raw, headers={"Idempotency-Key": key})
    expect_status(r, 201, "after the running entry was abandoned for an hour")


@test
def idempotency_keys_are_kept_24_hours():
    key = "old-" + ctx.uniq("k")
    r1 = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("旧")}, headers={"Idempotency-Key": key})
    expect_status(r1, 201)
    db("update idempotency_keys set created_at = now() - interval '23 hours' where key = %s" % sql_str(key))
    r = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("新")}, headers={"Idempotency-Key": key})
    expect_problem(r, 422, "idempotency-key-reused")
    db("update idempotency_keys set created_at = now() - interval '25 hours' where key = %s" % sql_str(key))
    r = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("新")}, headers={"Idempotency-Key": key})
    expect_status(r, 201, "the same key after 25 hours is a new request")
    check(r.h("Idempotent-Replayed") != "true", "replayed after 25 hours")


@test
def idempotency_key_bad_values():
    for key in ("k" * 201, "tab\there", "é"):
        name = ctx.uniq("badkey")
        r = ctx.admin.post(API + "/departments", json={"name": name},
                           headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")})
        expect_status(r, 400, "Idempotency-Key %r" % key[:20])
        eq(db_int("select count(*) from departments where name = %s" % sql_str(name)), 0, "rows written")
    r = ctx.admin.post(API + "/departments", json={"name": ctx.uniq("k200")}, headers={"Idempotency-Key": "k" * 199 + "!"})
    expect_status(r, 201, "200-char key")


@test
def if_none_match_with_the_current_etag_is_304():
    d = mk_dept()
    r = ctx.admin.get(API + "/departments/%d" % d["id"])
    expect_status(r, 200)
    tag = r.h("ETag")
    r = ctx.admin.get(API + "/departments/%d" % d["id"], headers={"If-None-Match": tag})
    eq(r.status, 304, "unchanged: 304")
    eq(r.body, b"", "a 304 has no body")
    eq(r.h("ETag"), tag, "and says which version is current")
    r = ctx.admin.patch(API + "/departments/%d" % d["id"], json={"name": d["name"] + "新"}, headers={"If-Match": tag})
    expect_status(r, 200)
    r = ctx.admin.get(API + "/departments/%d" % d["id"], headers={"If-None-Match": tag})
    eq(r.status, 200, "changed since: the new version")
    check(r.h("ETag") != tag, "with a new ETag")
    eq(ctx.admin.get(API + "/departments/%d" % d["id"], headers={"If-None-Match": "*"}).status, 304, "* matches")


if __name__ == "__main__":
    main(server_env={"DUCHA_CORS_ORIGINS": ORIGIN + ",https://other.example"})
