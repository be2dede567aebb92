#!/usr/bin/python3
"""Users: create, read, patch, validation (department_id exactly for the department role,
username shape, taken usernames, password length), no password or hash in any response,
disabling revokes tokens, list filters. Users are never deleted."""

import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, UTC_DATETIME_RE, PsqlSession, check, ctx, eq, expect_problem,  # noqa: E402
                     expect_status, main, mk_dept, qs, run_cli, test)

PW = "user-secret-pw-1"
KEYS = sorted(["id", "username", "display_name", "role", "department_id", "department", "disabled",
               "must_change_password", "created_at", "updated_at"])
psql = PsqlSession()
SRC = "127.%d.%d.%d" % (random.randint(2, 254), random.randint(0, 255), random.randint(2, 254))


def q1(sql):
    return psql.q(sql)


def uname(label="u"):
    return "us_%s_%s%s" % (ctx.prefix, label, ctx.uniq("n").rsplit("-", 1)[1])


def upath(uid, rest=""):
    return API + "/users/%d%s" % (uid, rest)


def create(**body):
    b = {"username": uname(), "role": "viewer", "password": PW}
    b.update(body)
    return ctx.admin.post(API + "/users", json=b)


def created(**body):
    r = create(**body)
    expect_status(r, 201, "create user")
    return r.json


def no_secret(r, *secrets):
    text = r.body.decode("utf-8", "replace")
    for s in secrets + ("$argon2",):
        check(s not in text, "%s %s: the response contains %r" % (r.method, r.path, s))
    check("password_hash" not in text, "%s %s: the response names password_hash" % (r.method, r.path))


def login(username, password=PW):
    # from an address of this file's own: failed logins count against the client address
    return ctx.server.client(None).from_address(SRC).post(API + "/auth/token",
                                                          json={"username": username, "password": password})


def user_row(uid):
    return q1("SELECT u::text FROM users u WHERE id = %d" % uid)


@test
def create_and_get():
    d = mk_dept()
    name = uname("dept")
    r = ctx.admin.post(API + "/users", json={"username": name, "display_name": "张三", "role": "department",
                                              "department_id": d["id"], "password": PW})
    expect_status(r, 201)
    b = r.json
    eq(sorted(b), KEYS, "user keys")
    eq((b["username"], b["display_name"], b["role"], b["department_id"], b["department"], b["disabled"],
        b["must_change_password"]), (name, "张三", "department", d["id"], {"id": d["id"], "name": d["name"]}, False, False))
    eq(r.h("Location"), upath(b["id"]), "Location")
    eq(r.etag, '"1"', "ETag")
    check(UTC_DATETIME_RE.match(b["created_at"]) and UTC_DATETIME_RE.match(b["updated_at"]), "timestamps")
    no_secret(r, PW)
    g = ctx.admin.get(upath(b["id"]))
    expect_status(g, 200)
    eq(g.json, b, "GET equals the create response")
    no_secret(g, PW)
    lst = ctx.admin.get(API + "/users?" + qs(q=name))
    eq(lst.json["data"], [b], "list item equals the resource")
    no_secret(lst, PW)
    # the stored hash is Argon2id, never the password itself
    stored = q1("SELECT password_hash FROM users WHERE id = %d" % b["id"])
    check(stored.startswith("$argon2id$"), "stored password is not an Argon2id hash: %r" % stored[:20])
    check(PW not in stored, "password stored in the clear")
    expect_status(login(name), 201, "the new user logs in")


@test
def display_name_defaults_to_empty_and_chinese_round_trips():
    b = created()
    eq(b["display_name"], "")
    b = created(display_name="欧阳·娜娜" * 10)
    eq(b["display_name"], "欧阳·娜娜" * 10)
    r = create(display_name="名" * 101)
    expect_problem(r, 400, "validation-failed", pointers=["/display_name"])
    r = create(display_name="a\nb")
    expect_problem(r, 400, pointers=["/display_name"])


@test
def department_id_is_required_exactly_for_the_department_role():
    d = mk_dept()
    r = create(role="department")
    expect_problem(r, 400, "validation-failed", pointers=["/department_id"])
    r = create(role="department", department_id=None)
    expect_problem(r, 400, pointers=["/department_id"])
    for role in ("admin", "inspector", "viewer"):
        r = create(role=role, department_id=d["id"])
        expect_problem(r, 400, "validation-failed", pointers=["/department_id"])
        b = created(role=role, department_id=None)
        eq((b["department_id"], b["department"]), (None, None))
    r = create(role="department", department_id=987654321)
    expect_problem(r, 400, pointers=["/department_id"])
    r = create(role="department", department_id="1")
    expect_problem(r, 400, pointers=["/department_id"])
    r = create(role="superuser")
    expect_problem(r, 400, pointers=["/role"])
    name = uname("n")
    r = create(username=name, role="department")
    eq(q1("SELECT count(*) FROM users WHERE username = '%s'" % name), "0", "a refused create left a user")


@test
def username_shape():
    for bad in ("", "has space", "名字", "a/b", "a@b", "x" * 65, "tab\tname", "semi;colon"):
        r = create(username=bad)
        expect_problem(r, 400, "validation-failed", pointers=["/username"])
    for good in ("A.b_c-9" + ctx.prefix, ("z" + ctx.prefix + "y" * 64)[:64]):
        r = create(username=good)
        expect_status(r, 201, "username %r" % good)
        eq(r.json["username"], good)


@test
def taken_username_is_409():
    name = uname("dup")
    created(username=name)
    r = create(username=name, role="inspector")
    expect_problem(r, 409, "conflict")
    eq(q1("SELECT count(*) FROM users WHERE username = '%s'" % name), "1")


@test
def password_length_counts_characters():
    for bad in ("", "1234567", "密码密码密码密", "x" * 201):
        r = create(password=bad)
        expect_problem(r, 400, "validation-failed", pointers=["/password"])
    r = create(password=12345678)
    expect_problem(r, 400, pointers=["/password"])
    for good in ("12345678", "密码密码密码密码", "x" * 200):
        name = uname("pw")
        expect_status(create(username=name, password=good), 201, "password of %d characters" % len(good))
        expect_status(login(name, good), 201, "login with that password")
    r = ctx.admin.post(API + "/users", json={"username": uname(), "role": "viewer"})
    expect_problem(r, 400, pointers=["/password"])


@test
def unknown_or_server_side_fields_are_refused():
    for field, value in (("password_hash", "$argon2id$x"), ("must_change_password", True), ("id", 5),
                         ("created_at", "2020-01-01T00:00:00Z"), ("disabled", True)):
        name = uname("f")
        r = create(username=name, **{field: value})
        expect_problem(r, 400, "validation-failed", pointers=["/" + field])
        eq(q1("SELECT count(*) FROM users WHERE username = '%s'" % name), "0")


@test
def patch_user():
    d1, d2 = mk_dept(), mk_dept()
    u = created(role="viewer", display_name="甲")
    p = upath(u["id"])
    expect_problem(ctx.admin.patch(p, json={"display_name": "乙"}), 428, "precondition-required")
    expect_problem(ctx.admin.patch(p, json={"display_name": "乙"}, if_match='"7"'), 412, "precondition-failed")
    r = ctx.admin.patch(p, json={"display_name": "乙"}, if_match='"1"', ctype="application/merge-patch+json")
    expect_status(r, 200)
    eq(r.json["display_name"], "乙")
    eq(r.etag, '"2"')
    no_secret(r, PW)
    # role department needs a department, other roles none
    snap = user_row(u["id"])
    r = ctx.admin.patch(p, json={"role": "department"}, if_match="*")
    expect_problem(r, 400, "validation-failed", pointers=["/department_id"])
    r = ctx.admin.patch(p, json={"department_id": d1["id"]}, if_match="*")
    expect_problem(r, 400, pointers=["/department_id"])
    eq(user_row(u["id"]), snap, "refused patches changed the user")
    r = ctx.admin.patch(p, json={"role": "department", "department_id": d1["id"]}, if_match="*")
    expect_status(r, 200)
    eq((r.json["role"], r.json["department"]), ("department", {"id": d1["id"], "name": d1["name"]}))
    r = ctx.admin.patch(p, json={"department_id": d2["id"]}, if_match="*")
    expect_status(r, 200)
    eq(r.json["department_id"], d2["id"])
    snap = user_row(u["id"])
    for body, pointer in (({"department_id": None}, "/department_id"), ({"role": "inspector"}, "/department_id"),
                          ({"username": "other" + ctx.prefix}, "/username"), ({"password": "new-password-x"}, "/password"),
                          ({"must_change_password": True}, "/must_change_password"),
                          ({"department_id": 987654321}, "/department_id"), ({"disabled": "yes"}, "/disabled")):
        r = ctx.admin.patch(p, json=body, if_match="*")
        expect_problem(r, 400, "validation-failed", pointers=[pointer])
    eq(user_row(u["id"]), snap, "refused patches changed the user")
    r = ctx.admin.patch(p, json={"role": "inspector", "department_id": None}, if_match="*")
    expect_status(r, 200)
    eq((r.json["role"], r.json["department_id"], r.json["department"]), ("inspector", None, None))
    expect_problem(ctx.admin.patch(upath(987654321), json={"display_name": "x"}, if_match="*"), 404, "not-found")


@test
def users_are_never_deleted():
    u = created()
    r = ctx.admin.delete(upath(u["id"]), if_match="*", validate="problem")
    expect_problem(r, 405, "method-not-allowed")
    expect_status(ctx.admin.get(upath(u["id"])), 200)


@test
def disabling_revokes_tokens_and_enabling_does_not_bring_them_back():
    u = created(role="inspector")
    t1 = login(u["username"]).json["token"]
    t2 = login(u["username"]).json["token"]
    client = ctx.server.client
    expect_status(client(t1).get(API + "/me"), 200)
    r = ctx.admin.patch(upath(u["id"]), json={"disabled": True}, if_match="*")
    expect_status(r, 200)
    eq(r.json["disabled"], True)
    for t in (t1, t2):
        expect_problem(client(t).get(API + "/me"), 401, "unauthorized")
    eq(q1("SELECT count(*) FROM tokens WHERE user_id = %d AND revoked_at IS NULL" % u["id"]), "0", "active tokens")
    expect_problem(login(u["username"]), 401, "unauthorized")
    r = ctx.admin.patch(upath(u["id"]), json={"disabled": False}, if_match="*")
    expect_status(r, 200)
    expect_problem(client(t1).get(API + "/me"), 401, "unauthorized")
    r = login(u["username"])
    expect_status(r, 201, "login after enabling again")
    expect_status(client(r.json["token"]).get(API + "/me"), 200)


@test
def admin_reset_never_shows_the_password():
    u = created()
    r = ctx.admin.post(upath(u["id"], "/password"), json={"new_password": "reset-pw-secret-9"})
    expect_status(r, 200)
    no_secret(r, "reset-pw-secret-9", PW)
    eq(r.json["must_change_password"], True)
    r = ctx.admin.post(upath(u["id"], "/password"), json={"new_password": "short"})
    expect_problem(r, 400, pointers=["/new_password"])
    expect_problem(ctx.admin.post(upath(987654321, "/password"), json={"new_password": "long-enough-1"}), 404)


@test
def audit_events_of_users_carry_no_secret():
    name = uname("aud")
    u = created(username=name, password="audit-secret-pw-7")
    ctx.admin.patch(upath(u["id"]), json={"display_name": "丙"}, if_match="*")
    ctx.admin.post(upath(u["id"], "/password"), json={"new_password": "audit-secret-pw-8"})
    r = ctx.admin.get(API + "/audit-events?" + qs(entity_type="user", entity_id=u["id"]))
    expect_status(r, 200)
    eq(sorted(e["action"] for e in r.json["data"]), ["create", "password_reset", "update"], "the user's events")
    no_secret(r, "audit-secret-pw-7", "audit-secret-pw-8")
    raw = q1("SELECT coalesce(string_agg(coalesce(before::text, '') || coalesce(after::text, ''), ' '), '')"
             " FROM audit_events WHERE entity_type = 'user' AND entity_id = %d" % u["id"])
    check("audit-secret" not in raw and "$argon2" not in raw, "a password or hash in the stored events")


@test
def list_filters():
    d1, d2 = mk_dept(), mk_dept()
    mark = "lf%s" % ctx.prefix
    a = created(username=mark + "a", role="department", department_id=d1["id"], display_name="市教育局联络员")
    b = created(username=mark + "b", role="department", department_id=d2["id"])
    c = created(username=mark + "c", role="inspector", display_name="督察员" + mark)
    v = created(username=mark + "v", role="viewer")
    ctx.admin.patch(upath(v["id"]), json={"disabled": True}, if_match="*")

    def ids(**f):
        return [x["id"] for x in ctx.admin.list_all(API + "/users?" + qs(q=mark, **f))]
    eq(ids(), [a["id"], b["id"], c["id"], v["id"]], "q on username, id ascending")
    eq(ids(role="department"), [a["id"], b["id"]])
    eq(ids(role="inspector,viewer"), [c["id"], v["id"]], "role comma list")
    eq(ids(disabled="true"), [v["id"]])
    eq(ids(disabled="false"), [a["id"], b["id"], c["id"]])
    eq([x["id"] for x in ctx.admin.list_all(API + "/users?" + qs(department_id=d1["id"]))], [a["id"]])
    eq([x["id"] for x in ctx.admin.list_all(API + "/users?" + qs(q="市教育局联络"))][-1:], [a["id"]],
       "q on display_name")
    eq([x["id"] for x in ctx.admin.list_all(API + "/users?" + qs(q="督察员" + mark))], [c["id"]])
    r = ctx.admin.get(API + "/users?" + qs(q=mark, limit=2, include_total="true"))
    eq((len(r.json["data"]), r.json["total"]), (2, 4), "page of 2, total 4")
    rest = ctx.admin.get(API + "/users?" + qs(q=mark, limit=2, cursor=r.json["next_cursor"]))
    eq([x["id"] for x in r.json["data"] + rest.json["data"]], [a["id"], b["id"], c["id"], v["id"]], "pages")
    for bad in (qs(role="root"), qs(disabled="yes"), qs(department_id="x"), qs(colour="red")):
        expect_problem(ctx.admin.get(API + "/users?" + bad), 400, "invalid-query")
    no_secret(ctx.admin.get(API + "/users?" + qs(q=mark)), PW)


@test
def cli_user_create_still_works():
    name = uname("cli")
    p = run_cli(["user", "create", "--username", name, "--role", "inspector", "--display-name", "命令行",
                 "--password-stdin"], stdin="cli-password-1")
    eq(p.returncode, 0, "ducha user create: %s" % p.stderr[-300:])
    found = ctx.admin.list_all(API + "/users?" + qs(q=name))
    eq([(x["username"], x["role"], x["display_name"]) for x in found], [(name, "inspector", "命令行")])
    expect_status(login(name, "cli-password-1"), 201, "login of the CLI-made user")
    check(not re.search(r"cli-password-1", p.stdout + p.stderr), "the CLI printed the password")


if __name__ == "__main__":
    try:
        main()
    finally:
        psql.close()
