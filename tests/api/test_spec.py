#!/usr/bin/python3
"""openapi.yaml and the server's route table agree, and the spec is sound."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DUCHA_SRC, SLUG_STATUS, Draft202012Validator, check, eq, main, run_cli, spec, tail,
                     test)  # noqa: E402

METHODS = {"GET", "POST", "PATCH", "DELETE", "PUT"}

# every route of the issue-2 brief
BRIEF = """
GET /api/v1/departments
POST /api/v1/departments
GET /api/v1/departments/{}
PATCH /api/v1/departments/{}
DELETE /api/v1/departments/{}
GET /api/v1/checklists
POST /api/v1/checklists
GET /api/v1/checklists/{}
PATCH /api/v1/checklists/{}
DELETE /api/v1/checklists/{}
GET /api/v1/checklists/{}/tasks
GET /api/v1/batches
POST /api/v1/batches
GET /api/v1/batches/{}
PATCH /api/v1/batches/{}
DELETE /api/v1/batches/{}
GET /api/v1/inspections
POST /api/v1/inspections
GET /api/v1/inspections/{}
PATCH /api/v1/inspections/{}
DELETE /api/v1/inspections/{}
POST /api/v1/inspections/{}/start
POST /api/v1/inspections/{}/submit
GET /api/v1/inspections/{}/form
GET /api/v1/inspections/{}/items
GET /api/v1/items/{}
PATCH /api/v1/items/{}
GET /api/v1/items/{}/problems
POST /api/v1/items/{}/problems
GET /api/v1/problems/{}
PATCH /api/v1/problems/{}
DELETE /api/v1/problems/{}
GET /api/v1/problems/{}/rectifications
POST /api/v1/problems/{}/rectifications
GET /api/v1/rectifications/{}
PATCH /api/v1/rectifications/{}
DELETE /api/v1/rectifications/{}
GET /healthz
GET /readyz
GET /openapi.yaml
"""


def norm(path):
    segs = []
    for s in path.strip().split("/"):
        if re.match(r"^(\{[^}]*\}|:[A-Za-z_][A-Za-z0-9_]*|@[A-Za-z_][A-Za-z0-9_]*)$", s):
            s = "{}"
        segs.append(s)
    p = "/".join(segs)
    return p if p.startswith("/") else "/" + p


def full_path(tpath):
    """The path with the servers' prefix applied when it does not already carry it."""
    prefixes = [p for p in spec().prefixes if p]
    if prefixes and not any(tpath.startswith(p + "/") or tpath == p for p in prefixes) and \
            not tpath.startswith(("/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs")):
        return prefixes[0] + tpath
    return tpath


def spec_ops():
    """{(METHOD, normalised full path): (METHOD, template)} of openapi.yaml."""
    return {(method, norm(full_path(tpath))): (method, tpath) for method, tpath in spec().operations()}


def server_routes():
    p = run_cli(["routes"], timeout=20)
    eq(p.returncode, 0, "`ducha routes` exit status (stderr: %s)" % tail(p.stderr, 5))
    routes = set()
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        method, path = parts[0].upper(), parts[1]
        if method in ("OPTIONS", "HEAD") or not path.startswith("/"):
            continue
        routes.add((method, norm(path)))
    check(routes, "`ducha routes` printed no routes: %r" % p.stdout[:300])
    return routes


@test
def every_spec_operation_has_a_route():
    routes = server_routes()
    missing = sorted("%s %s" % k for k in spec_ops() if k not in routes)
    check(not missing, "operations in openapi.yaml without a server route:\n" + "\n".join(missing))


@test
def every_route_is_in_the_spec():
    ops = spec_ops()
    extra = sorted("%s %s" % k for k in server_routes() if k not in ops)
    check(not extra, "server routes missing from openapi.yaml:\n" + "\n".join(extra))


@test
def every_route_of_the_brief_exists():
    ops = spec_ops()
    routes = server_routes()
    want = [tuple(line.split(" ", 1)) for line in BRIEF.strip().splitlines()]
    missing_spec = ["%s %s" % w for w in want if w not in ops]
    missing_srv = ["%s %s" % w for w in want if w not in routes]
    check(not missing_spec and not missing_srv, "missing from openapi.yaml: %s; missing from the server: %s" % (
        missing_spec, missing_srv))


@test
def spec_is_openapi_3_with_unique_operation_ids():
    sp = spec()
    check(str(sp.raw.get("openapi", "")).startswith("3."), "openapi version %r" % sp.raw.get("openapi"))
    ids = []
    for method, tpath in sp.operations():
        op = sp.doc["paths"][tpath][method.lower()]
        check(op.get("responses"), "%s %s has no responses" % (method, tpath))
        if op.get("operationId"):
            ids.append(op["operationId"])
    dups = sorted({i for i in ids if ids.count(i) > 1})
    check(not dups, "duplicate operationIds: %s" % dups)


@test
def every_ref_resolves():
    sp = spec()
    bad = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str):
                    try:
                        sp.resolver.resolve(v)
                    except Exception as exc:
                        bad.append("%s: %s (%s)" % (where, v, str(exc)[:80]))
                else:
                    walk(v, where + "/" + str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, "%s/%d" % (where, i))
    walk(sp.doc, "")
    check(not bad, "unresolvable $refs:\n" + "\n".join(bad[:20]))


@test
def every_schema_is_valid_json_schema():
    sp = spec()
    bad = []
    for name, schema in ((sp.doc.get("components") or {}).get("schemas") or {}).items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:
            bad.append("%s: %s" % (name, str(exc).splitlines()[0][:200]))
    check(not bad, "invalid schemas:\n" + "\n".join(bad))


def _responses(op):
    return {str(k) for k in (op.get("responses") or {})}


@test
def documented_statuses_cover_the_conventions():
    sp = spec()
    problems = []
    for method, tpath in sp.operations():
        full = full_path(tpath)
        op = sp.doc["paths"][tpath][method.lower()]
        codes = _responses(op)
        if full.startswith("/api/v1/") and not full.startswith(("/api/v1/public", "/api/v1/auth/token")):
            if "401" not in codes and "4XX" not in codes and "default" not in codes:
                problems.append("%s %s lacks 401" % (method, tpath))
        if full.startswith("/api/v1/") and "503" not in codes and "5XX" not in codes and "default" not in codes:
            problems.append("%s %s lacks 503" % (method, tpath))
        if "{" in tpath and "404" not in codes and "4XX" not in codes and "default" not in codes:
            problems.append("%s %s lacks 404" % (method, tpath))
        if method in ("PATCH", "DELETE") and full.startswith("/api/v1/"):
            for c in ("412", "428"):
                if c not in codes and "4XX" not in codes and "default" not in codes:
                    problems.append("%s %s lacks %s" % (method, tpath, c))
        if method in ("POST", "PATCH") and full.startswith("/api/v1/") and op.get("requestBody"):
            for c in ("400", "413", "415"):
                if c not in codes and "4XX" not in codes and "default" not in codes:
                    problems.append("%s %s lacks %s" % (method, tpath, c))
        if full.startswith("/api/v1/") and method == "GET" and "{" not in tpath.rsplit("/", 1)[-1] \
                and tpath.rsplit("/", 1)[-1] not in ("form",) and "400" not in codes and "4XX" not in codes:
            problems.append("%s %s (a list) lacks 400 for bad query parameters" % (method, tpath))
    check(not problems, "\n".join(problems))


@test
def the_problem_types_are_those_of_the_one_list():
    """src/problem_types.def is the list; the spec names these types, no others, with these statuses."""
    with open(os.path.join(DUCHA_SRC, "openapi.yaml"), encoding="utf-8") as f:
        text = f.read()
    named = set(re.findall(r"urn:ducha:problem:([a-z-]+)", text))
    eq(sorted(named), sorted(SLUG_STATUS), "the problem types openapi.yaml names")
    rows = re.findall(r"\|\s*`urn:ducha:problem:([a-z-]+)`\s*\|\s*(\d{3})\s*\|", text)
    eq(sorted(s for s, _ in rows), sorted(SLUG_STATUS), "its table has one row per type")
    wrong = ["%s: %s in the spec, %d in the server" % (s, c, SLUG_STATUS[s]) for s, c in rows
             if SLUG_STATUS.get(s) != int(c)]
    check(not wrong, "\n".join(wrong))


if __name__ == "__main__":
    main(start_server=False, setup_db=False)
