#!/usr/bin/python3
"""Bad input on POST /departments, POST /inspections and PATCH /items/{id}: every case answers a
problem with the right status, type and pointer, and nothing is written."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, TestFailure, check, ctx, db, eq, expect_problem, expect_status, items_of,  # noqa: E402
                     main, mk_dept, mk_inspection, pointers_of, sql_str, test, Server, tail)

MB = 1048576
ZH = "督"      # one character, three bytes in UTF-8
ZH4 = "\U00020000"  # one character outside the BMP, four bytes in UTF-8 (two UTF-16 units)

_state = {}


def mark():
    """Prefix of every name/title these tests send, so stray writes can be counted."""
    return "bad" + ctx.prefix


def fixtures():
    if not _state:
        _state["parent"] = mk_dept(name=mark() + "-parent")["id"]
        _state["target"] = mk_dept(name=mark() + "-target")["id"]
        other = mk_dept(name=mark() + "-items")["id"]
        insp = mk_inspection(target_id=other, title=mark() + "-items")
        _state["inspection"] = insp["id"]
        _state["item"] = items_of(insp["id"])[0]["id"]
    return _state


def snapshot():
    f = fixtures()
    m = sql_str(mark() + "%")
    sql = ("select concat_ws(' | ', "
           "(select count(*) from departments where parent_id = %(p)d or (name like %(m)s and id not in (%(p)d, %(t)d))),"
           "(select count(*) from inspections where target_department_id = %(t)d or (title like %(m)s and id <> %(i)d)),"
           "(select count(*) from items where inspection_id in (select id from inspections where target_department_id = %(t)d)),"
           "(select row_to_json(x)::text from items x where id = %(item)d),"
           "(select row_to_json(x)::text from inspections x where id = %(i)d))") % {
        "p": f["parent"], "t": f["target"], "m": m, "i": f["inspection"], "item": f["item"]}
    r = ctx.admin.get(API + "/items/%d" % f["item"])
    expect_status(r, 200)
    return db(sql), r.json, r.etag


class unchanged:
    """Asserts that the database holds the same rows after the block."""

    def __enter__(self):
        self.before = snapshot()
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            after = snapshot()
            if after != self.before:
                raise TestFailure("something was written by a refused request:\nbefore: %s\nafter:  %s" % (
                    self.before, after))
        return False


def case(label, r, status, slug=None, slugs=None, pointers=None):
    """expect_problem with a label; pointers may hold tuples of acceptable alternatives or
    strings ending in '*' (prefix)."""
    try:
        expect_problem(r, status, slug, slugs=slugs)
        if pointers is not None:
            got = pointers_of(r)
            check(got, "no errors[] in the problem")
            for e in (r.json.get("errors") or []):
                check(isinstance(e.get("message"), str) and e["message"], "errors[] entry without message: %r" % e)
            for p in pointers:
                alts = p if isinstance(p, tuple) else (p,)
                ok = any(g == a or (a.endswith("*") and g.startswith(a[:-1])) for a in alts for g in got)
                check(ok, "errors[] lacks pointer %s (has %s)" % (" or ".join(alts), got))
    except TestFailure as exc:
        raise TestFailure("case %s: %s" % (label, exc))


# endpoints -------------------------------------------------------------------------------

def post_dept(body=None, raw=None, **kw):
    if raw is not None:
        return ctx.admin.post(API + "/departments", body=raw, **kw)
    return ctx.admin.post(API + "/departments", json=body, **kw)


def post_insp(body=None, raw=None, **kw):
    if raw is not None:
        return ctx.admin.post(API + "/inspections", body=raw, **kw)
    return ctx.admin.post(API + "/inspections", json=body, **kw)


def patch_item(body=None, raw=None, **kw):
    kw.setdefault("if_match", "*")
    kw.setdefault("ctype", "application/merge-patch+json")
    path = API + "/items/%d" % fixtures()["item"]
    if raw is not None:
        return ctx.admin.patch(path, body=raw, **kw)
    return ctx.admin.patch(path, json=body, **kw)


def dept_body(**kw):
    b = {"name": mark() + "-" + ctx.uniq("d"), "parent_id": fixtures()["parent"]}
    b.update(kw)
    return {k: v for k, v in b.items() if v is not DROP}


def insp_body(**kw):
    b = {"target_department_id": fixtures()["target"], "inspected_on": "2026-03-15",
         "title": mark() + "-" + ctx.uniq("i")}
    b.update(kw)
    return {k: v for k, v in b.items() if v is not DROP}


DROP = object()

ENDPOINTS = {"POST /departments": post_dept, "POST /inspections": post_insp, "PATCH /items/{id}": patch_item}

MALFORMED = [b'{"name": "x",', b"{name: 1}", b"{'name': 'x'}", b'{"a": 1} trailing', b'{"a": 1}{}',
             b'{"a": 1,}', b"nul", b'{"a": tru}', b'{"a": "unterminated}', b'{"a": 01}', b'{"a": NaN}',
             b'{"a": "\\x41"}']
NOT_OBJECT = [b"[]", b'[{"name": "x"}]', b'"a string"', b"42", b"-1.5", b"null", b"true", b"false"]
INVALID_UTF8 = [b'{"x": "\xff"}', b'{"x": "\xc3"}', b'{"x": "\xc0\xaf"}', b'{"x": "\xed\xa0\x80"}',
                b'{"x": "\xf4\x90\x80\x80"}', b'{"x": "\xe7\x9d"}', b'{"\xfe": 1}']


def _field_for(name):
    return {"POST /departments": "name", "POST /inspections": "title", "PATCH /items/{id}": "note"}[name]


# generic cases on all three endpoints -----------------------------------------------------

@test
def malformed_json_is_400():
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            for raw in MALFORMED:
                case("%s %r" % (ep, raw), fn(raw=raw), 400, "malformed-json")
            for raw in (b"", b"   "):
                case("%s empty body %r" % (ep, raw), fn(raw=raw), 400, slugs=["malformed-json", "validation-failed"])


@test
def body_not_an_object_is_400():
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            for raw in NOT_OBJECT:
                case("%s %r" % (ep, raw), fn(raw=raw), 400, slugs=["validation-failed", "malformed-json"])


@test
def unparsable_bodies_carry_errors():
    # the brief: "Malformed JSON / body not an object / ... -> 400 with `errors`"
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            for raw in MALFORMED[:3] + NOT_OBJECT[:4]:
                case("%s %r" % (ep, raw), fn(raw=raw), 400, slugs=["validation-failed", "malformed-json"], pointers=[])


@test
def invalid_utf8_is_400():
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            field = _field_for(ep)
            for raw in INVALID_UTF8:
                raw = raw.replace(b'"x"', b'"' + field.encode() + b'"')
                case("%s %r" % (ep, raw), fn(raw=raw), 400, slugs=["malformed-json", "validation-failed"])


@test
def lone_surrogate_escape_is_400():
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            field = _field_for(ep)
            for esc in (b"\\ud800", b"\\udfff", b"a\\ud83dz"):
                raw = b'{"' + field.encode() + b'": "' + esc + b'"}'
                case("%s %r" % (ep, raw), fn(raw=raw), 400, slugs=["malformed-json", "validation-failed"])


@test
def nul_character_is_400():
    # NUL cannot be stored in PostgreSQL text: refused as a control character / bad JSON
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            field = _field_for(ep)
            r = fn(raw=b'{"' + field.encode() + b'": "a\\u0000b"}')
            case("%s NUL in /%s" % (ep, field), r, 400, slugs=["validation-failed", "malformed-json"])
            if r.json and r.json.get("type") == "urn:ducha:problem:validation-failed":
                case("%s NUL pointer" % ep, r, 400, pointers=["/" + field])


@test
def duplicate_keys_are_400():
    with unchanged():
        r = post_dept(raw=json.dumps({"name": mark() + "a"})[:-1].encode() + b', "name": "%sb"}' % mark().encode())
        case("POST /departments duplicate name", r, 400, slugs=["malformed-json", "validation-failed"])
        body = json.dumps(insp_body())[:-1] + ', "title": "%s-dup"}' % mark()
        case("POST /inspections duplicate title", post_insp(raw=body.encode()), 400,
             slugs=["malformed-json", "validation-failed"])
        case("PATCH /items duplicate completion", patch_item(raw=b'{"completion": "completed", "completion": "not_completed"}'),
             400, slugs=["malformed-json", "validation-failed"])
        r = patch_item(raw=b'{"note": "a", "completion": "completed", "note": "b"}')
        case("PATCH /items duplicate note", r, 400, slugs=["malformed-json", "validation-failed"])


@test
def wrong_content_type_is_415():
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            body = {"POST /departments": dept_body(), "POST /inspections": insp_body(),
                    "PATCH /items/{id}": {"note": "x"}}[ep]
            raw = json.dumps(body).encode()
            for ct in ("text/plain", "application/x-www-form-urlencoded", "application/xml", "text/json",
                       "application/jsonx", "application/octet-stream", None):
                case("%s Content-Type %r" % (ep, ct), fn(raw=raw, ctype=ct), 415, "unsupported-media-type")


@test
def multipart_content_type_is_415():
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            body = {"POST /departments": dept_body(), "POST /inspections": insp_body(),
                    "PATCH /items/{id}": {"note": "x"}}[ep]
            raw = json.dumps(body).encode()
            # A multipart type without a usable boundary ("boundary=x", or none) makes
            # libmicrohttpd's post processor refuse the request before ducha sees it: the
            # connection is closed (a known limitation, noted in README). Real clients send
            # long boundaries, and those get their 415.
            for ct in ("multipart/form-data; boundary=------------------------d74496d66958873e",
                       "application/x-www-form-urlencoded"):
                case("%s Content-Type %r" % (ep, ct), fn(raw=raw, ctype=ct), 415, "unsupported-media-type")


@test
def accepted_content_types():
    f = fixtures()
    r = post_dept(raw=json.dumps(dept_body()).encode(), ctype="application/json; charset=utf-8")
    expect_status(r, 201, "application/json; charset=utf-8")
    r = post_dept(raw=json.dumps(dept_body()).encode(), ctype="Application/JSON")
    expect_status(r, 201, "Application/JSON (media types are case-insensitive)")
    for ct in ("application/json", "application/merge-patch+json", "application/merge-patch+json; charset=utf-8"):
        r = patch_item({"note": "ct " + ct}, ctype=ct)
        expect_status(r, 200, "PATCH with %s" % ct)
    eq(f["item"] > 0, True)


@test
def body_over_limit_is_413():
    with unchanged():
        for ep, fn in ENDPOINTS.items():
            field = _field_for(ep)
            head = b'{"' + field.encode() + b'": "'
            raw = head + b"a" * (MB + 1 - len(head) - 2) + b'"}'
            eq(len(raw), MB + 1)
            case("%s %d bytes" % (ep, len(raw)), fn(raw=raw), 413, "body-too-large")
            raw = head + b"a" * (3 * MB) + b'"}'
            case("%s %d bytes" % (ep, len(raw)), fn(raw=raw), 413, "body-too-large")
            # exactly at the limit: read, parsed, refused as too long a string (not 413)
            raw = head + b"a" * (MB - len(head) - 2) + b'"}'
            eq(len(raw), MB)
            case("%s exactly %d bytes" % (ep, MB), fn(raw=raw), 400, "validation-failed", pointers=["/" + field])


@test
def configured_body_limit():
    srv = Server({"DUCHA_BODY_LIMIT": "4096"}).start()
    try:
        c = srv.client(ctx.admin.token)
        with unchanged():
            head = b'{"name": "'
            raw = head + b"a" * (4097 - len(head) - 2) + b'"}'
            r = c.post(API + "/departments", body=raw)
            case("4097 bytes with DUCHA_BODY_LIMIT=4096", r, 413, "body-too-large")
            raw = head + b"a" * (4096 - len(head) - 2) + b'"}'
            r = c.post(API + "/departments", body=raw)
            case("4096 bytes with DUCHA_BODY_LIMIT=4096", r, 400, "validation-failed", pointers=["/name"])
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status of the second server; output:\n%s" % tail(srv.output(), 20))


# POST /departments -----------------------------------------------------------------------

@test
def departments_wrong_types():
    p = fixtures()["parent"]
    cases = [({"name": 5}, "/name"), ({"name": None}, "/name"), ({"name": ["a"]}, "/name"), ({"name": {}}, "/name"),
             ({"name": True}, "/name"),
             ({"kind": 1}, "/kind"), ({"kind": "planet"}, "/kind"), ({"kind": None}, "/kind"),
             ({"kind": "Department"}, "/kind"),
             ({"parent_id": str(p)}, "/parent_id"), ({"parent_id": p + 0.5}, "/parent_id"),
             ({"parent_id": True}, "/parent_id"), ({"parent_id": -1}, "/parent_id"), ({"parent_id": 0}, "/parent_id"),
             ({"parent_id": [p]}, "/parent_id"),
             ({"parent_id": 2 ** 53 - 1}, "/parent_id")]
    with unchanged():
        for extra, ptr in cases:
            case("POST /departments %r" % extra, post_dept(dept_body(**extra)), 400, "validation-failed", pointers=[ptr])


@test
def huge_numbers_are_400():
    # valid JSON, but out of range for an id: refused as a bad value (or as unparsable), never a 500
    with unchanged():
        for raw in (b'{"name": "%s-h1", "parent_id": 99999999999999999999}' % mark().encode(),
                    b'{"name": "%s-h2", "parent_id": 1e400}' % mark().encode(),
                    b'{"name": "%s-h3", "parent_id": 9007199254740993}' % mark().encode()):
            r = post_dept(raw=raw)
            case("POST /departments %r" % raw, r, 400, slugs=["validation-failed", "malformed-json"])
            if r.json and r.json.get("type") == "urn:ducha:problem:validation-failed":
                case("pointer for %r" % raw, r, 400, pointers=["/parent_id"])
        r = patch_item(raw=b'{"material_department_ids": [99999999999999999999]}')
        case("PATCH /items huge id", r, 400, slugs=["validation-failed", "malformed-json"])


@test
def departments_unknown_fields():
    with unchanged():
        for extra in ({"bogus": 1}, {"id": 1}, {"created_at": "2026-01-01T00:00:00Z"}, {"parent": None},
                      {"Name": "x"}, {"": 1}):
            k = list(extra)[0]
            case("POST /departments unknown %r" % k, post_dept(dept_body(**extra)), 400, "validation-failed",
                 pointers=["/" + k])


@test
def departments_missing_and_gathered_errors():
    p = fixtures()["parent"]
    with unchanged():
        case("{}", post_dept({}), 400, "validation-failed", pointers=["/name"])
        case("no name", post_dept({"kind": "group", "parent_id": p}), 400, "validation-failed", pointers=["/name"])
        r = post_dept({"name": "", "kind": "planet", "bogus": 1, "parent_id": "x"})
        case("every error at once", r, 400, "validation-failed", pointers=["/name", "/kind", "/bogus", "/parent_id"])


@test
def departments_name_length_counts_characters():
    p = fixtures()["parent"]
    with unchanged():
        for name in ("", ZH * 101, ZH4 * 101, "a" * 101, ZH * 300):
            case("name of %d chars" % len(name), post_dept({"name": name, "parent_id": p}), 400,
                 "validation-failed", pointers=["/name"])
    for name in (ZH * 100, ZH4 * 100, ("a" + ZH) * 50):
        name = name[:-len(ctx.prefix)] + ctx.prefix  # unique, still 100 characters
        eq(len(name), 100)
        r = post_dept({"name": name, "parent_id": p})
        expect_status(r, 201, "a %d-character name (%d bytes)" % (len(name), len(name.encode())))
        eq(r.json["name"], name, "name round trip")


@test
def departments_control_characters_in_name():
    with unchanged():
        for ch in ("\u0001", "\n", "\r", "\t", "\u001f", "\u007f", "\u001b"):
            case("control %r" % ch, post_dept(dept_body(name=mark() + "a" + ch + "b")), 400, "validation-failed",
                 pointers=["/name"])


@test
def departments_c1_control_characters_in_name():
    with unchanged():
        for ch in ("\u0085", "\u009f"):
            case("control %r" % ch, post_dept(dept_body(name=mark() + "a" + ch + "b")), 400, "validation-failed",
                 pointers=["/name"])


@test
def departments_unknown_parent():
    with unchanged():
        case("unknown parent", post_dept(dept_body(parent_id=987654321)), 400, "validation-failed",
             pointers=["/parent_id"])
        case("unknown parent, no name", post_dept({"name": mark() + "-x", "parent_id": 2 ** 53 - 1}), 400,
             "validation-failed", pointers=["/parent_id"])


# POST /inspections -----------------------------------------------------------------------

@test
def inspections_missing_required():
    with unchanged():
        case("{}", post_insp({}), 400, "validation-failed",
             pointers=["/target_department_id", "/inspected_on", "/title"])
        for field in ("target_department_id", "inspected_on", "title"):
            case("without " + field, post_insp(insp_body(**{field: DROP})), 400, "validation-failed",
                 pointers=["/" + field])


@test
def inspections_wrong_types():
    t = fixtures()["target"]
    cases = [({"target_department_id": str(t)}, "/target_department_id"),
             ({"target_department_id": None}, "/target_department_id"),
             ({"target_department_id": t + 0.5}, "/target_department_id"),
             ({"target_department_id": 987654321}, "/target_department_id"),
             ({"inspected_on": 20260315}, "/inspected_on"), ({"inspected_on": "2026-02-30"}, "/inspected_on"),
             ({"inspected_on": "2026/03/15"}, "/inspected_on"), ({"inspected_on": "2026-3-15"}, "/inspected_on"),
             ({"inspected_on": "2026-03-15T00:00:00Z"}, "/inspected_on"), ({"inspected_on": ""}, "/inspected_on"),
             ({"inspected_on": None}, "/inspected_on"), ({"inspected_on": "2026-13-01"}, "/inspected_on"),
             ({"inspected_on": " 2026-03-15"}, "/inspected_on"),
             ({"title": 5}, "/title"), ({"title": ""}, "/title"), ({"title": None}, "/title"),
             ({"title": mark() + "a\nb"}, "/title"), ({"title": mark() + "\u0007"}, "/title"),
             ({"inspectors": "张三"}, "/inspectors"), ({"inspectors": None}, "/inspectors"),
             ({"inspectors": [1]}, ("/inspectors/0", "/inspectors")),
             ({"inspectors": [""]}, ("/inspectors/0", "/inspectors")),
             ({"inspectors": ["张三", "x" * 51]}, ("/inspectors/1", "/inspectors")),
             ({"inspectors": ["a\tb"]}, ("/inspectors/0", "/inspectors")),
             ({"inspectors": ["人%d" % i for i in range(21)]}, "/inspectors"),
             ({"inspectors": {"a": "b"}}, "/inspectors"),
             ({"batch_id": "x"}, "/batch_id"), ({"batch_id": 0}, "/batch_id"), ({"batch_id": 987654321}, "/batch_id"),
             ({"checklist_id": "1"}, "/checklist_id"), ({"checklist_id": 987654321}, "/checklist_id")]
    with unchanged():
        for extra, ptr in cases:
            case("POST /inspections %r" % extra, post_insp(insp_body(**extra)), 400, "validation-failed",
                 pointers=[ptr])


@test
def inspections_unknown_fields():
    with unchanged():
        for extra in ({"bogus": 1}, {"status": "closed"}, {"id": 5}, {"counts": {}}, {"items": []},
                      {"target_department": {"id": fixtures()["target"]}}):
            k = list(extra)[0]
            case("unknown %r" % k, post_insp(insp_body(**extra)), 400, "validation-failed", pointers=["/" + k])


@test
def inspections_lengths_count_characters():
    with unchanged():
        case("title 201 chars", post_insp(insp_body(title=ZH * 201)), 400, "validation-failed", pointers=["/title"])
        case("title 201 astral chars", post_insp(insp_body(title=ZH4 * 201)), 400, "validation-failed",
             pointers=["/title"])
        case("inspector 51 chars", post_insp(insp_body(inspectors=[ZH * 51])), 400, "validation-failed",
             pointers=[("/inspectors/0", "/inspectors")])
    title = (mark() + ZH * 200)[:200]
    r = post_insp(insp_body(title=title, inspectors=[ZH * 50, ZH4 * 50] + ["人%d" % i for i in range(18)]))
    expect_status(r, 201, "title of 200 characters, 20 inspectors of up to 50 characters")
    eq(r.json["title"], title)
    eq(len(r.json["inspectors"]), 20)
    ctx.admin.delete(r.h("Location"), if_match="*")


@test
def inspections_multiple_errors_gathered():
    with unchanged():
        r = post_insp({"target_department_id": "x", "inspected_on": "nope", "title": "", "bogus": True})
        case("all errors at once", r, 400, "validation-failed",
             pointers=["/target_department_id", "/inspected_on", "/title", "/bogus"])


# PATCH /items/{id} -----------------------------------------------------------------------

@test
def items_wrong_types():
    cases = [({"completion": "done"}, "/completion"), ({"completion": None}, "/completion"),
             ({"completion": 1}, "/completion"), ({"completion": "Completed"}, "/completion"),
             ({"completion": "已完成"}, "/completion"),
             ({"note": 5}, "/note"), ({"note": ["x"]}, "/note"), ({"note": ZH * 2001}, "/note"),
             ({"note": ZH4 * 2001}, "/note"),
             ({"material_department_ids": "1"}, "/material_department_ids"),
             ({"material_department_ids": None}, "/material_department_ids"),
             ({"material_department_ids": ["1"]}, "/material_department_ids*"),
             ({"material_department_ids": [0]}, "/material_department_ids*"),
             ({"material_department_ids": [987654321]}, "/material_department_ids*"),
             ({"material_department_ids": [fixtures()["target"], fixtures()["target"]]}, "/material_department_ids*"),
             ({"material_department_ids": list(range(1, 52))}, "/material_department_ids*")]
    with unchanged():
        for extra, ptr in cases:
            label = "PATCH /items %r" % ({k: (v if len(repr(v)) < 60 else repr(v)[:60]) for k, v in extra.items()})
            case(label, patch_item(extra), 400, "validation-failed", pointers=[ptr])


@test
def items_unknown_and_read_only_fields():
    with unchanged():
        for extra in ({"bogus": 1}, {"seq": 5}, {"task_id": 1}, {"problem_count": 3}, {"inspection_id": 1},
                      {"id": 1}, {"material_departments": []}):
            k = list(extra)[0]
            case("unknown %r" % k, patch_item(extra), 400, "validation-failed", pointers=["/" + k])
        r = patch_item({"completion": "completed", "bogus": 1})
        case("valid + unknown field", r, 400, "validation-failed", pointers=["/bogus"])


@test
def items_gathered_errors():
    with unchanged():
        r = patch_item({"completion": "x", "note": 1, "material_department_ids": "y"})
        case("three errors", r, 400, "validation-failed", pointers=["/completion", "/note", "/material_department_ids*"])


@test
def items_note_limits_and_lines():
    note = ZH * 2000
    r = patch_item({"note": note})
    expect_status(r, 200, "a 2000-character note")
    eq(r.json["note"], note)
    r = patch_item({"note": ZH4 * 2000})
    expect_status(r, 200, "a 2000-character note outside the BMP")
    r = patch_item({"note": "第一行\n第二行\r\n\t缩进"})
    expect_status(r, 200, "a multi-line note")
    eq(r.json["note"], "第一行\n第二行\r\n\t缩进")
    r = patch_item({"note": None})
    expect_status(r, 200, "note: null clears it")
    eq(r.json["note"], None)


# path ids ----------------------------------------------------------------------------------

BAD_IDS = ["abc", "0", "-1", "1e3", "99999999999999999999", "9007199254740992", "9007199254740991", "+1",
           "0x10", "1.0", "%201", "1%20", "%EF%BC%91", "1abc", "00000000000000000000001x"]


@test
def bad_path_ids_are_404():
    body_item = json.dumps({"note": "x"}).encode()
    with unchanged():
        for bad in BAD_IDS:
            for method, tmpl, body in (("GET", "/items/%s", None), ("PATCH", "/items/%s", body_item),
                                       ("GET", "/departments/%s", None), ("DELETE", "/departments/%s", None),
                                       ("PATCH", "/departments/%s", b'{"name": "x"}'),
                                       ("GET", "/inspections/%s", None), ("GET", "/inspections/%s/items", None),
                                       ("GET", "/inspections/%s/form", None), ("POST", "/inspections/%s/start", b"{}"),
                                       ("GET", "/checklists/%s/tasks", None), ("GET", "/items/%s/problems", None),
                                       ("POST", "/items/%s/problems", b'{"description": "x"}'),
                                       ("GET", "/problems/%s", None), ("GET", "/rectifications/%s", None),
                                       ("GET", "/batches/%s", None)):
                path = API + tmpl % bad
                r = ctx.admin.req(method, path, body=body, if_match="*" if method in ("PATCH", "DELETE") else None,
                                  ctype="application/merge-patch+json" if method == "PATCH" else ("application/json" if body else None))
                case("%s %s" % (method, path), r, 404, "not-found")


if __name__ == "__main__":
    main()
