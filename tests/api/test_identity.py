#!/usr/bin/python3
"""The caller's identity is set per request and per transaction, and an unset scope sees nothing.

The server runs with one worker thread, so consecutive requests share its database connection:
a department user's request, then one without a token, then a staff request must each see
exactly their own, and the audit actor is always the caller. In SQL, a session on which nobody
set a scope sees nothing, and a scope set for one transaction is gone after it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, PsqlSession, check, ctx, day, eq, expect_problem, expect_status,  # noqa: E402
                     main, make_user, mk_dept, mk_inspection, mk_problem, mk_rect, items_of, test)

W = {}
psql = PsqlSession()


def world():
    if W:
        return W
    a = mk_dept(name=ctx.uniq("身份甲"))
    b = mk_dept(name=ctx.uniq("身份乙"))
    W.update(A=a["id"], B=b["id"])
    for k in ("A", "B"):
        insp = mk_inspection(W[k])
        item = items_of(insp["id"])[0]["id"]
        prob = mk_problem(item)
        W["rect" + k] = mk_rect(prob["id"], W[k], deadline=day(30))["id"]
        W["insp" + k] = insp["id"]
    uname = "id_a_%s" % ctx.prefix
    _, tok = make_user("department", department_id=W["A"], username=uname, password="pw-identity-1")
    W["ua"] = ctx.server.client(tok)
    W["ua_id"] = int(psql.q("SELECT id FROM users WHERE username = '%s'" % uname))
    sname = "id_s_%s" % ctx.prefix
    make_user("inspector", username=sname, password="pw-identity-2")
    W["staff_name"] = sname
    W["staff_id"] = int(psql.q("SELECT id FROM users WHERE username = '%s'" % sname))
    return W


def rect_ids(client, dept):
    r = client.get(API + "/rectifications?responsible_department_id=%d&limit=200" % dept)
    expect_status(r, 200)
    return {x["id"] for x in r.json["data"]}


@test("a department request, then one without a token, then a staff request each see exactly their own")
def sequence_on_one_connection():
    w = world()
    anon = ctx.server.client(None)
    for _ in range(3):
        # the department user: its own unit's rectification, not the other's
        check(w["rectA"] in rect_ids(w["ua"], w["A"]), "the department user sees its own rectification")
        eq(rect_ids(w["ua"], w["B"]), set(), "the department user sees nothing of another unit")
        expect_problem(w["ua"].get(API + "/rectifications/%d" % w["rectB"]), 404, "not-found")
        # without a token: refused, and a login acts for the one who logs in
        expect_problem(anon.get(API + "/rectifications"), 401, "unauthorized")
        r = anon.post(API + "/auth/token", json={"username": w["staff_name"], "password": "pw-identity-2"})
        expect_status(r, 201)
        staff = ctx.server.client(r.json["token"])
        # the staff user right after: everything
        check(w["rectB"] in rect_ids(staff, w["B"]), "staff sees the other unit's rectification")
        check(w["rectA"] in rect_ids(staff, w["A"]), "staff sees the department's rectification")
        r = staff.get(API + "/rectifications/%d" % w["rectA"])
        expect_status(r, 200)


@test("the audit actor of each change is its caller, whatever ran on the connection before")
def audit_actor_is_the_caller():
    w = world()
    anon = ctx.server.client(None)
    # a department user acts (its rectification's progress needs a submitted inspection: use urge
    # by staff and a patch of the user's own display name instead: both are audited changes)
    r = w["ua"].patch(API + "/me", json={"display_name": ctx.uniq("部门用户")}, headers={"If-Match": "*"})
    expect_status(r, 200)
    r = anon.post(API + "/auth/token", json={"username": w["staff_name"], "password": "pw-identity-2"})
    expect_status(r, 201)
    staff = ctx.server.client(r.json["token"])
    r = staff.patch(API + "/rectifications/%d" % w["rectB"], json={"measure": ctx.uniq("措施")},
                    headers={"If-Match": "*"})
    expect_status(r, 200)
    rows = psql.q("SELECT action || ':' || coalesce(actor_id::text, '-') FROM audit_events"
                  " WHERE (entity_type = 'user' AND entity_id IN (%d, %d)) OR (entity_type = 'rectification'"
                  " AND entity_id = %d) ORDER BY id" % (w["ua_id"], w["staff_id"], w["rectB"])).split("\n")
    check("update:%d" % w["ua_id"] in rows, "the department user's change is its own: %s" % rows)
    check("login:%d" % w["staff_id"] in rows, "the login is the staff user's: %s" % rows)
    check("update:%d" % w["staff_id"] in rows, "the staff user's change is its own: %s" % rows)
    bad = [x for x in rows if x.startswith("update:") and x not in ("update:%d" % w["ua_id"], "update:%d" % w["staff_id"])]
    eq(bad, [], "no change is put on someone else")


@test("a user moved to another unit, or disabled, is taken at its new word at once (token cache emptied)")
def cached_tokens_follow_changes():
    w = world()
    uname = "id_m_%s" % ctx.prefix
    _, tok = make_user("department", department_id=w["A"], username=uname, password="pw-identity-3")
    uid = int(psql.q("SELECT id FROM users WHERE username = '%s'" % uname))
    u = ctx.server.client(tok)
    check(w["rectA"] in rect_ids(u, w["A"]), "sees unit A's rectification")
    r = ctx.admin.patch(API + "/users/%d" % uid, json={"department_id": w["B"]}, headers={"If-Match": "*"})
    expect_status(r, 200)
    eq(rect_ids(u, w["A"]), set(), "moved to B: nothing of A, at once")
    check(w["rectB"] in rect_ids(u, w["B"]), "moved to B: B's rectification, at once")
    r = ctx.admin.patch(API + "/users/%d" % uid, json={"disabled": True}, headers={"If-Match": "*"})
    expect_status(r, 200)
    expect_problem(u.get(API + "/rectifications"), 401, "unauthorized")


@test("in SQL, a session nobody set a scope for sees nothing; staff scope is an explicit 'all'")
def unset_scope_sees_nothing():
    w = world()
    s = PsqlSession()
    try:
        eq(s.q("SELECT ducha_scope()::text"), "{}", "an unset scope is the empty set")
        eq(s.q("SELECT ducha_in_scope(%d)" % w["A"]), "f", "an unset scope contains no unit")
        eq(s.q("SELECT count(*) FROM rectifications r WHERE r.id IN (%d, %d)"
               " AND ducha_rectification_visible(r.id, r.responsible_department_id, %d)"
               % (w["rectA"], w["rectB"], w["B"])), "0", "nothing is visible without a scope")
        eq(s.q("SELECT set_config('ducha.scope', 'all', false) IS NOT NULL, ducha_scope() IS NULL"), "t|t",
           "'all' means no restriction")
        eq(s.q("SELECT set_config('ducha.scope', '{%d}', false) IS NOT NULL, ducha_in_scope(%d), ducha_in_scope(%d)"
               % (w["A"], w["A"], w["B"])), "t|t|f", "a department scope")
    finally:
        s.close()


@test("a scope set for one transaction is gone after it (nothing lingers on a pooled connection)")
def scope_is_transaction_local():
    s = PsqlSession()
    try:
        s.q("BEGIN")
        s.q("SELECT set_config('ducha.scope', '{1,2}', true), set_config('ducha.actor', '7', true),"
            " set_config('ducha.role', 'department', true)")
        eq(s.q("SELECT ducha_scope()::text"), "{1,2}", "inside the transaction")
        s.q("COMMIT")
        eq(s.q("SELECT ducha_scope()::text || '|' || coalesce(current_setting('ducha.actor', true), '')"
               " || '|' || coalesce(current_setting('ducha.role', true), '')"), "{}||",
           "after the transaction: no scope, actor or role")
    finally:
        s.close()


if __name__ == "__main__":
    main(server_env={"DUCHA_THREADS": "1"})
