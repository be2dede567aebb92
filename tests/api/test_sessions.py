#!/usr/bin/python3
"""Sessions: logging in for a token, failed logins and their throttling (per user, per client
address, X-Forwarded-For only from a trusted proxy), logging out, admins' view of tokens,
GET/PATCH /me, changing one's own password, an admin's reset.

Failed logins are counted per client address in the database that every test file shares, so
every test here that fails logins does it from an address of its own: a random 127.x.y.z
source address (Linux answers the whole of 127/8 on loopback), or a forwarded address through
a server that trusts 127.0.0.1 as its proxy. 127.0.0.1 itself never collects failures."""

import datetime as _dt
import os
import random
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, PsqlSession, Server, TestFailure, check, ctx, db_owner, eq,  # noqa: E402
                     expect_problem, expect_status, main, make_user, mk_dept, qs, spec, test)

PW = "correct-horse-1"
TOKEN_RE = re.compile(r"^dch_[A-Za-z0-9_-]{43}$")
USER_KEYS = sorted(["id", "username", "display_name", "role", "department_id", "department", "disabled",
                    "must_change_password", "created_at", "updated_at"])
ROLES = ("admin", "inspector", "department", "viewer")
psql = PsqlSession()


def q1(sql):
    return psql.q(sql)


def fresh_address():
    while True:
        a = "127.%d.%d.%d" % (random.randint(2, 254), random.randint(0, 255), random.randint(2, 254))
        if a != "127.0.0.1":
            return a


def fresh_forwarded():
    return "10.%d.%d.%d" % (random.randint(0, 255), random.randint(0, 255), random.randint(2, 254))


def uname(label="s"):
    return "ss_%s_%s" % (ctx.prefix, ctx.uniq(label).rsplit("-", 1)[1]) + label


def mkuser(role="viewer", department_id=None, password=PW, **extra):
    body = {"username": uname(), "role": role, "password": password}
    if role == "department":
        body["department_id"] = department_id or mk_dept()["id"]
    body.update(extra)
    r = ctx.admin.post(API + "/users", json=body)
    expect_status(r, 201, "create user")
    return r.json


def anon(source=None, server=None):
    c = (server or ctx.server).client(None)
    return c.from_address(source) if source else c


def login(username, password=PW, source=None, server=None, headers=None):
    return anon(source, server).post(API + "/auth/token", json={"username": username, "password": password},
                                     headers=headers)


def login_ok(username, password=PW, **kw):
    r = login(username, password, **kw)
    expect_status(r, 201, "login of %s" % username)
    return r.json["token"]


def as_token(token, server=None):
    return (server or ctx.server).client(token)


def token_count(user_id, active_only=False):
    return int(q1("SELECT count(*) FROM tokens WHERE user_id = %d%s" % (
        user_id, " AND revoked_at IS NULL" if active_only else "")))


def parse_time(s):
    return _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def problem_essence(r):
    b = dict(r.json or {})
    b.pop("request_id", None)
    return (r.status, r.headers.get("Content-Type"), r.headers.get("WWW-Authenticate"), b)


def retry_after(r):
    v = r.headers.get("Retry-After")
    check(v is not None and re.match(r"^[0-9]+$", v) and int(v) >= 1, "Retry-After %r is not a positive integer" % v)
    return int(v)


def blocked_scenario(attempts, fn):
    """fn() runs one throttling scenario and returns None when it was conclusive, or a reason when
    the block (1 s after the threshold) may have expired before the check; retried then."""
    reason = None
    for _ in range(attempts):
        reason = fn()
        if reason is None:
            return
    raise TestFailure("inconclusive %d times: %s" % (attempts, reason))


# ------------------------------------------------------------------------------ login

@test
def login_returns_a_working_token():
    u = mkuser("inspector", display_name="王五")
    t0 = _dt.datetime.now(_dt.timezone.utc)
    r = login(u["username"])
    expect_status(r, 201)
    b = r.json
    eq(sorted(b), ["expires_at", "token", "token_type", "user"], "keys")
    check(TOKEN_RE.match(b["token"]), "token %r" % b["token"])
    eq(b["token_type"], "Bearer")
    eq(sorted(b["user"]), USER_KEYS, "user keys")
    eq((b["user"]["id"], b["user"]["username"], b["user"]["role"]), (u["id"], u["username"], "inspector"))
    exp = parse_time(b["expires_at"])
    check(t0 + _dt.timedelta(minutes=30) < exp < t0 + _dt.timedelta(days=366),
          "expires_at %s is not a sensible time in the future" % b["expires_at"])
    loc = r.h("Location") or ""
    m = re.match(r"^/api/v1/tokens/(\d+)$", loc)
    check(m, "Location %r" % loc)
    check(PW not in r.body.decode("utf-8"), "the password is in the response")
    me = as_token(b["token"]).get(API + "/me")
    expect_status(me, 200)
    eq(me.json["user"]["id"], u["id"], "GET /me with the new token")
    toks = ctx.admin.list_all(API + "/tokens?" + qs(user_id=u["id"]))
    eq([t["id"] for t in toks], [int(m.group(1))], "GET /tokens lists the new token under Location's id")
    eq(toks[0]["active"], True)
    eq(toks[0]["revoked_at"], None)
    eq(parse_time(toks[0]["expires_at"]), exp, "expires_at in GET /tokens")
    eq(toks[0]["created_address"], "127.0.0.1", "created_address")
    check(b["token"] not in ctx.admin.get(API + "/tokens?" + qs(user_id=u["id"])).body.decode(),
          "GET /tokens shows the token itself")
    stored = q1("SELECT encode(token_hash, 'hex') FROM tokens WHERE id = %s" % m.group(1))
    check(b["token"] not in stored and stored, "the token is stored in the clear")


@test
def login_is_never_replayed_for_an_idempotency_key():
    u = mkuser()
    key = "login-" + ctx.prefix
    body = {"username": u["username"], "password": PW}
    r1 = anon().post(API + "/auth/token", json=body, headers={"Idempotency-Key": key})
    r2 = anon().post(API + "/auth/token", json=body, headers={"Idempotency-Key": key})
    expect_status(r1, 201)
    expect_status(r2, 201)
    check(r1.json["token"] != r2.json["token"], "the same token was handed out twice")
    check(r2.h("Idempotent-Replayed") is None, "login replayed")
    eq(token_count(u["id"]), 2, "tokens issued")


@test
def wrong_password_and_unknown_user_get_the_same_401():
    u = mkuser()
    src = fresh_address()
    before = token_count(u["id"])
    wrong = login(u["username"], "not-the-password", source=src)
    unknown = login(uname("nobody"), "not-the-password", source=src)
    expect_problem(wrong, 401, "unauthorized")
    expect_problem(unknown, 401, "unauthorized")
    eq(problem_essence(unknown), problem_essence(wrong), "unknown user vs wrong password")
    eq(token_count(u["id"]), before, "no token issued")
    r = login(u["username"], PW.upper(), source=src)
    expect_problem(r, 401, "unauthorized")


@test
def login_validation():
    for body, ptr in (({"username": "x"}, "/password"), ({"password": "x"}, "/username"),
                      ({"username": "", "password": "x"}, "/username"),
                      ({"username": "x", "password": "p", "role": "admin"}, "/role")):
        r = anon().post(API + "/auth/token", json=body)
        expect_problem(r, 400, pointers=[ptr])


@test
def disabled_user_gets_401():
    u = mkuser()
    src = fresh_address()
    tok = login_ok(u["username"], source=src)
    r = ctx.admin.patch(API + "/users/%d" % u["id"], json={"disabled": True}, if_match="*")
    expect_status(r, 200)
    expect_problem(as_token(tok).get(API + "/me"), 401, "unauthorized")
    r = login(u["username"], source=src)
    wrong = login(u["username"], "not-the-password", source=src)
    expect_problem(r, 401, "unauthorized")
    eq(problem_essence(r), problem_essence(wrong), "a disabled user's answer tells nothing more")
    eq(token_count(u["id"], active_only=True), 0, "active tokens of the disabled user")


@test
def expired_token_is_401():
    u = mkuser()
    tok = login_ok(u["username"])
    expect_status(as_token(tok).get(API + "/me"), 200)
    db_owner("UPDATE tokens SET expires_at = now() - interval '1 second' WHERE user_id = %d" % u["id"])
    # changed behind the server's back (as another replica would): seen within the token cache's
    # lifetime, DUCHA_TOKEN_CACHE_SECONDS (1 s here)
    time.sleep(1.2)
    expect_problem(as_token(tok).get(API + "/me"), 401, "unauthorized")
    r = ctx.admin.get(API + "/tokens?" + qs(user_id=u["id"]))
    eq([t["active"] for t in r.json["data"]], [False], "an expired token is not active")
    eq(ctx.admin.get(API + "/tokens?" + qs(user_id=u["id"], active="true")).json["data"], [], "active=true")


# ------------------------------------------------------------------------------ throttling

@test
def five_failures_for_one_user_throttle_that_user():
    def scenario():
        u = mkuser()
        # five failures, each from another address: the count is the user's
        last = None
        for i in range(5):
            r = login(u["username"], "wrong-%d" % i, source=fresh_address())
            expect_problem(r, 401, "unauthorized")
            last = time.monotonic()
        r = login(u["username"], PW, source=fresh_address())
        if r.status == 201 and time.monotonic() - last > 0.9:
            return "the right password got in %.2f s after the fifth failure" % (time.monotonic() - last)
        expect_problem(r, 429, "too-many-requests")
        ra = retry_after(r)
        check(ra <= 30, "Retry-After %d after the fifth failure: slowed down, not locked out" % ra)
        eq(token_count(u["id"]), 0, "no token while blocked")
        # not locked out for good: after Retry-After the right password works
        time.sleep(ra + 0.2)
        r = login(u["username"], PW, source=fresh_address())
        for _ in range(3):
            if r.status != 429:
                break
            time.sleep(min(retry_after(r), 20) + 0.2)
            r = login(u["username"], PW, source=fresh_address())
        expect_status(r, 201, "after the wait the right password works")
        return None
    blocked_scenario(3, scenario)


@test
def four_failures_do_not_throttle():
    u = mkuser()
    src = fresh_address()
    for i in range(4):
        expect_problem(login(u["username"], "wrong-%d" % i, source=src), 401)
    expect_status(login(u["username"], source=src), 201, "the fifth attempt, with the right password")
    # and a success forgets the user's failures
    for i in range(4):
        expect_problem(login(u["username"], "wrong-%d" % i, source=src), 401)
    expect_status(login(u["username"], source=src), 201, "four more failures after a success")


@test
def twenty_failures_from_one_address_throttle_that_address():
    v = mkuser()

    def scenario():
        src, other = fresh_address(), fresh_address()
        last = None
        for i in range(20):
            r = login(uname("g%d" % i), "wrong", source=src)
            expect_problem(r, 401, "unauthorized")
            last = time.monotonic()
        r = login(v["username"], PW, source=src)
        if r.status == 201 and time.monotonic() - last > 0.9:
            return "the right password got in %.2f s after the 20th failure" % (time.monotonic() - last)
        expect_problem(r, 429, "too-many-requests")
        retry_after(r)
        expect_status(login(v["username"], PW, source=other), 201, "the same user from another address")
        return None
    blocked_scenario(3, scenario)


@test
def forwarded_for_is_ignored_without_a_trusted_proxy():
    u = mkuser()
    src = fresh_address()
    spoofed = fresh_forwarded()
    r = login(u["username"], source=src, headers={"X-Forwarded-For": spoofed})
    expect_status(r, 201)
    tid = int(r.h("Location").rsplit("/", 1)[1])
    tok = [t for t in ctx.admin.list_all(API + "/tokens?" + qs(user_id=u["id"])) if t["id"] == tid]
    eq(tok[0]["created_address"], src, "created_address is the socket's address, not X-Forwarded-For")
    ev = ctx.admin.get(API + "/audit-events?" + qs(entity_type="user", entity_id=u["id"], action="login")).json["data"]
    eq([e["client_address"] for e in ev], [src], "the login event's client_address")

    def scenario():
        a = fresh_address()
        last = None
        for i in range(20):
            r = login(uname("x%d" % i), "wrong", source=a, headers={"X-Forwarded-For": fresh_forwarded()})
            expect_problem(r, 401)
            last = time.monotonic()
        r = login(u["username"], PW, source=a, headers={"X-Forwarded-For": fresh_forwarded()})
        if r.status == 201 and time.monotonic() - last > 0.9:
            return "got in %.2f s after the 20th failure" % (time.monotonic() - last)
        expect_problem(r, 429, "too-many-requests")
        return None
    blocked_scenario(3, scenario)


@test
def forwarded_for_from_a_trusted_proxy_is_the_client_address():
    srv = Server({"DUCHA_TRUSTED_PROXIES": "127.0.0.1"}).start()
    try:
        u = mkuser()
        fwd = fresh_forwarded()
        r = login(u["username"], server=srv, headers={"X-Forwarded-For": fwd})
        expect_status(r, 201)
        tid = int(r.h("Location").rsplit("/", 1)[1])
        eq([t["created_address"] for t in ctx.admin.list_all(API + "/tokens?" + qs(user_id=u["id"])) if t["id"] == tid],
           [fwd], "created_address through the trusted proxy")
        # a client's own X-Forwarded-For, passed on by the proxy, is not believed: the address the
        # proxy saw (the rightmost untrusted hop) is the client's
        spoofed, seen = fresh_forwarded(), fresh_forwarded()
        r = login(u["username"], server=srv, headers={"X-Forwarded-For": "%s, %s" % (spoofed, seen)})
        expect_status(r, 201)
        tid = int(r.h("Location").rsplit("/", 1)[1])
        eq([t["created_address"] for t in ctx.admin.list_all(API + "/tokens?" + qs(user_id=u["id"])) if t["id"] == tid],
           [seen], "created_address with a spoofed hop before the proxy's")
        # a peer that is not the trusted proxy is not believed
        src = fresh_address()
        r = login(u["username"], source=src, server=srv, headers={"X-Forwarded-For": fresh_forwarded()})
        expect_status(r, 201)
        tid = int(r.h("Location").rsplit("/", 1)[1])
        eq([t["created_address"] for t in ctx.admin.list_all(API + "/tokens?" + qs(user_id=u["id"])) if t["id"] == tid],
           [src], "created_address from an untrusted peer")

        def scenario():
            bad, good = fresh_forwarded(), fresh_forwarded()
            last = None
            for i in range(20):
                r = login(uname("p%d" % i), "wrong", server=srv, headers={"X-Forwarded-For": bad})
                expect_problem(r, 401)
                last = time.monotonic()
            r = login(u["username"], PW, server=srv, headers={"X-Forwarded-For": bad})
            if r.status == 201 and time.monotonic() - last > 0.9:
                return "got in %.2f s after the 20th failure" % (time.monotonic() - last)
            expect_problem(r, 429, "too-many-requests")
            retry_after(r)
            expect_status(login(u["username"], PW, server=srv, headers={"X-Forwarded-For": good}), 201,
                          "another forwarded address is throttled separately")
            expect_status(login(u["username"], PW, server=srv), 201, "the proxy's own address is not blocked")
            return None
        blocked_scenario(3, scenario)
    finally:
        rc = srv.stop()
        check(rc == 0, "the trusted-proxy server exited %s" % rc)


# ------------------------------------------------------------------------------ logout and tokens

@test
def logout_revokes_only_that_token():
    u = mkuser()
    t1, t2 = login_ok(u["username"]), login_ok(u["username"])
    r = as_token(t1).delete(API + "/auth/token")
    expect_status(r, 204)
    eq(r.body, b"")
    expect_problem(as_token(t1).get(API + "/me"), 401, "unauthorized")
    expect_status(as_token(t2).get(API + "/me"), 200, "the other token")
    expect_problem(as_token(t1).delete(API + "/auth/token"), 401, "unauthorized")
    toks = {t["id"]: t for t in ctx.admin.list_all(API + "/tokens?" + qs(user_id=u["id"]))}
    eq(sorted(t["active"] for t in toks.values()), [False, True], "one active token left")
    check(all((t["revoked_at"] is None) == t["active"] for t in toks.values()), "revoked_at vs active")


@test
def admin_lists_and_revokes_tokens():
    u = mkuser()
    t1, t2 = login_ok(u["username"]), login_ok(u["username"])
    r = ctx.admin.get(API + "/tokens?" + qs(user_id=u["id"]))
    expect_status(r, 200)
    rows = r.json["data"]
    eq(len(rows), 2)
    check(rows[0]["id"] > rows[1]["id"], "order: id descending")
    for t in rows:
        eq((t["user_id"], t["user"]), (u["id"], {"id": u["id"], "name": u["username"]}), "token's user")
    body = r.body.decode()
    check(t1 not in body and t2 not in body, "a token in GET /tokens")
    newest = rows[0]["id"]
    r = ctx.admin.delete(API + "/tokens/%d" % newest)
    expect_status(r, 204)
    expect_problem(as_token(t2).get(API + "/me"), 401, "unauthorized")
    expect_status(as_token(t1).get(API + "/me"), 200, "the other token")
    eq(ctx.admin.delete(API + "/tokens/%d" % newest).status, 204, "revoking again")
    eq([t["id"] for t in ctx.admin.list_all(API + "/tokens?" + qs(user_id=u["id"], active="false"))], [newest])
    eq([t["id"] for t in ctx.admin.list_all(API + "/tokens?" + qs(user_id=u["id"], active="true"))], [rows[1]["id"]])
    expect_problem(ctx.admin.delete(API + "/tokens/987654321"), 404, "not-found")
    expect_problem(ctx.admin.get(API + "/tokens?" + qs(active="maybe")), 400, "invalid-query")
    expect_problem(as_token(t1).get(API + "/tokens"), 403, "forbidden")
    expect_problem(as_token(t1).delete(API + "/tokens/%d" % rows[1]["id"]), 403, "forbidden")
    expect_status(as_token(t1).get(API + "/me"), 200, "a refused revoke revoked nothing")


# ------------------------------------------------------------------------------ me

@test
def me_shows_the_user_and_exactly_the_role_permissions():
    d = mk_dept()
    ops = [(m, p, it.get("x-roles") or []) for m, p in spec().operations()
           for it in [spec().doc["paths"][p][m.lower()]]]
    for role in ROLES:
        _, tok = make_user(role, department_id=d["id"] if role == "department" else None)
        r = as_token(tok).get(API + "/me")
        expect_status(r, 200)
        eq(sorted(r.json), ["permissions", "user"])
        user = r.json["user"]
        eq(user["role"], role)
        if role == "department":
            eq((user["department_id"], user["department"]), (d["id"], {"id": d["id"], "name": d["name"]}))
        else:
            eq((user["department_id"], user["department"]), (None, None))
        perms = r.json["permissions"]
        eq(len(perms), len(set(perms)), "%s: duplicate permissions" % role)
        want = sorted("%s %s" % (m, p) for m, p, x in ops if role in x)
        got = sorted(perms)
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        check(not missing and not extra, "%s permissions vs x-roles: missing %s, extra %s" % (role, missing, extra))
        check(r.etag, "GET /me has an ETag")


@test
def patch_me_changes_only_the_display_name():
    u = mkuser("viewer")
    tok = login_ok(u["username"])
    me = as_token(tok)
    r = me.get(API + "/me")
    etag = r.etag
    r = me.patch(API + "/me", json={"display_name": "李四"})
    expect_problem(r, 428, "precondition-required")
    r = me.patch(API + "/me", json={"display_name": "李四"}, if_match='"999"')
    expect_problem(r, 412, "precondition-failed")
    r = me.patch(API + "/me", json={"display_name": "李四"}, if_match=etag, ctype="application/merge-patch+json")
    expect_status(r, 200)
    eq(r.json["user"]["display_name"], "李四")
    eq(me.get(API + "/me").json["user"]["display_name"], "李四")
    other = mk_dept()
    snap = q1("SELECT u::text FROM users u WHERE id = %d" % u["id"])
    for field, value in (("role", "admin"), ("department_id", other["id"]), ("disabled", True),
                         ("username", "renamed_" + ctx.prefix), ("must_change_password", True), ("id", 1),
                         ("password", "new-password-9")):
        r = me.patch(API + "/me", json={"display_name": "王五", field: value}, if_match="*")
        expect_problem(r, 400, pointers=["/" + field])
    eq(q1("SELECT u::text FROM users u WHERE id = %d" % u["id"]), snap, "a refused PATCH /me changed the user")
    eq(me.get(API + "/me").json["user"]["role"], "viewer")


@test
def changing_ones_password_revokes_the_other_tokens():
    u = mkuser("inspector")
    t1, t2, t3 = login_ok(u["username"]), login_ok(u["username"]), login_ok(u["username"])
    new = "new-correct-horse-2"
    snap = q1("SELECT u::text FROM users u WHERE id = %d" % u["id"])
    tokens = q1("SELECT json_agg(t ORDER BY id) FROM tokens t WHERE user_id = %d" % u["id"])
    r = as_token(t1).post(API + "/me/password", json={"current_password": "wrong-one", "new_password": new})
    expect_problem(r, 400, "validation-failed", pointers=["/current_password"])
    r = as_token(t1).post(API + "/me/password", json={"current_password": PW, "new_password": "short"})
    expect_problem(r, 400, pointers=["/new_password"])
    eq(q1("SELECT u::text FROM users u WHERE id = %d" % u["id"]), snap, "a refused change changed the user")
    eq(q1("SELECT json_agg(t ORDER BY id) FROM tokens t WHERE user_id = %d" % u["id"]), tokens,
       "a refused change touched tokens")
    r = as_token(t1).post(API + "/me/password", json={"current_password": PW, "new_password": new})
    expect_status(r, 204)
    eq(r.body, b"")
    expect_status(as_token(t1).get(API + "/me"), 200, "the token used for the change")
    expect_problem(as_token(t2).get(API + "/me"), 401, "unauthorized")
    expect_problem(as_token(t3).get(API + "/me"), 401, "unauthorized")
    src = fresh_address()
    expect_problem(login(u["username"], PW, source=src), 401, "unauthorized")
    expect_status(login(u["username"], new, source=src), 201, "login with the new password")


@test
def admin_reset_forces_a_password_change():
    u = mkuser("inspector")
    old_tok = login_ok(u["username"])
    reset = "reset-by-admin-3"
    r = ctx.admin.post(API + "/users/%d/password" % u["id"], json={"new_password": reset})
    expect_status(r, 200)
    eq(r.json["must_change_password"], True)
    eq(r.json["id"], u["id"])
    expect_problem(as_token(old_tok).get(API + "/me"), 401, "unauthorized")
    src = fresh_address()
    expect_problem(login(u["username"], PW, source=src), 401, "unauthorized")
    r = login(u["username"], reset, source=src)
    expect_status(r, 201)
    eq(r.json["user"]["must_change_password"], True, "login shows must_change_password")
    tok = r.json["token"]
    me = as_token(tok)
    r = me.get(API + "/me")
    expect_status(r, 200, "GET /me before the change")
    eq(r.json["user"]["must_change_password"], True)
    exempt = {("GET", "/api/v1/me"), ("POST", "/api/v1/me/password"), ("DELETE", "/api/v1/auth/token")}
    wrong = []
    for method, path in spec().operations():
        x = spec().doc["paths"][path][method.lower()].get("x-roles") or []
        if "inspector" not in x or (method, path) in exempt:
            continue
        kw = {"json": {}} if method in ("POST", "PATCH") else {}
        r = me.req(method, path.replace("{id}", "1"), if_match="*" if method in ("PATCH", "DELETE") else None, **kw)
        if r.status != 403 or (r.json or {}).get("type") != "urn:ducha:problem:password-change-required":
            wrong.append("%s %s -> %d %s" % (method, path, r.status, (r.json or {}).get("type")))
    check(not wrong, "routes that do not demand the password change:\n" + "\n".join(wrong))
    r = me.post(API + "/me/password", json={"current_password": reset, "new_password": "chosen-by-me-4"})
    expect_status(r, 204)
    expect_status(me.get(API + "/departments?limit=1"), 200, "after the change")
    eq(me.get(API + "/me").json["user"]["must_change_password"], False)


@test
def logout_works_before_the_password_change():
    u = mkuser("viewer")
    expect_status(ctx.admin.post(API + "/users/%d/password" % u["id"], json={"new_password": "reset-by-admin-5"}), 200)
    tok = login_ok(u["username"], "reset-by-admin-5")
    expect_status(as_token(tok).delete(API + "/auth/token"), 204)
    expect_problem(as_token(tok).get(API + "/me"), 401, "unauthorized")


@test
def a_login_burst_is_answered():
    """Password hashing runs a bounded number at a time: a burst of logins waits its turn (or is
    told to retry), it never fails the server."""
    import threading
    u = mkuser()
    results = []

    def one():
        r = login(u["username"])
        results.append((r.status, r.headers.get("Retry-After")))
    threads = [threading.Thread(target=one) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    eq(len(results), 24, "answers")
    bad = [x for x in results if x[0] != 201 and not (x[0] == 429 and x[1])]
    check(not bad, "answers to a burst of logins: %s" % bad)
    check(sum(1 for x in results if x[0] == 201) >= 1, "no login of the burst succeeded")
    expect_status(ctx.admin.get(API + "/me"), 200, "the server after the burst")


# ------------------------------------------------------------------------------ latency

@test
def login_latency():
    u = mkuser()
    times = []
    for _ in range(20):
        r = login(u["username"])
        expect_status(r, 201)
        times.append(r.elapsed * 1000.0)
    sys.stdout.write("# login latency median %.0f ms (min %.0f, max %.0f, 20 sequential logins)\n" % (
        statistics.median(times), min(times), max(times)))
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main(server_env={"DUCHA_TOKEN_CACHE_SECONDS": "1"})
    finally:
        psql.close()
