#!/usr/bin/python3
"""rectification_readers (issue 8): the table that says which units may read each rectification
agrees with the rules after every change that can alter them — create, reassign, close and
revoke, merge, a unit moved in the tree, a user moved to another unit, and (in SQL, rolled back)
the changes the API does not make — and a department user sees exactly what the rules say, in
the ledger (in every order, page by page, and its total) and on each rectification.

The rules are written here again from PRODUCT.md, as plain SQL over the source tables, without
the schema's functions or views: a unit reads a rectification it is responsible for now, one it
was responsible for before a reassignment, and those of inspections that target it; a user reads
what the units of its subtree read (sub-units, and units merged into any of them, recursively).

    P ── A ── A1        B ── B1        S        T1        T2
"""

import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, OWNER_DATABASE_URL, PsqlSession, TestSkip, ctx, day, eq, expect_status,  # noqa: E402
                     items_of, main, mk_dept, mk_inspection, mk_problem, mk_rect, test)
from lifecycle_helpers import act_ok, drive, inspector, new_actor  # noqa: E402

# The (rectification, unit) pairs the rules give, over the whole database.
RULE_PAIRS = """
  SELECT r.id AS rectification_id, r.responsible_department_id AS department_id FROM rectifications r
  UNION SELECT a.rectification_id, a.department_id FROM rectification_assignments a
  UNION SELECT r.id, i.target_department_id FROM rectifications r JOIN problems p ON p.id = r.problem_id
        JOIN items it ON it.id = p.item_id JOIN inspections i ON i.id = it.inspection_id"""
TABLE_PAIRS = "SELECT rectification_id, department_id FROM rectification_readers"

# What the table holds and the rules do not, what the rules give and the table lacks, and rows
# whose sort keys differ from their rectification's.
DIFF = """
  SELECT concat_ws(' | ',
    'extra: ' || coalesce((SELECT string_agg(format('(%%s,%%s)', t.rectification_id, t.department_id), ' ')
                           FROM ((%(table)s) EXCEPT (%(rules)s)) t), ''),
    'missing: ' || coalesce((SELECT string_agg(format('(%%s,%%s)', t.rectification_id, t.department_id), ' ')
                             FROM ((%(rules)s) EXCEPT (%(table)s)) t), ''),
    'keys: ' || coalesce((SELECT string_agg(x.rectification_id::text, ' ') FROM rectification_readers x
                          JOIN rectifications r ON r.id = x.rectification_id
                          WHERE (x.deadline, x.updated_at) IS DISTINCT FROM (r.deadline, r.updated_at)), ''))
""" % {"table": TABLE_PAIRS, "rules": RULE_PAIRS}
AGREE = "extra:  | missing:  | keys:"  # (psql strips the trailing blank)


def visible_sql(user_id):
    """The rectification ids the rules let the user read, and the user's units."""
    return """
      WITH RECURSIVE units(id) AS (
        SELECT department_id FROM users WHERE id = %d AND department_id IS NOT NULL
        UNION SELECT d.id FROM departments d JOIN units u ON d.parent_id = u.id OR d.merged_into_id = u.id)
      SELECT DISTINCT w.rectification_id FROM (%s) w WHERE w.department_id IN (SELECT id FROM units)""" % (
        user_id, RULE_PAIRS)


W = {}
_owner = []


def db_owner(sql):
    """SQL as the schema owner, through one psql session (the rules read tables the service's role
    may not be meant to compare, and a psql start per query would double the test's time)."""
    if not OWNER_DATABASE_URL:
        raise TestSkip("DUCHA_MIGRATION_DATABASE_URL is not set")
    if not _owner:
        _owner.append(PsqlSession(OWNER_DATABASE_URL))
    return _owner[0].q(sql)


def world():
    """Units, two submitted inspections with rectifications of several deadlines (some equal, so
    that the id decides the order), and a department user of each unit."""
    if W:
        return W
    d = {}
    d["P"] = mk_dept(name=ctx.uniq("市政府"))
    d["A"] = mk_dept(name=ctx.uniq("甲局"), parent_id=d["P"]["id"])
    d["A1"] = mk_dept(name=ctx.uniq("甲局科室"), parent_id=d["A"]["id"])
    d["B"] = mk_dept(name=ctx.uniq("乙局"))
    d["B1"] = mk_dept(name=ctx.uniq("乙局科室"), parent_id=d["B"]["id"])
    for k in ("S", "T1", "T2"):
        d[k] = mk_dept(name=ctx.uniq(k + "单位"))
    W["d"] = {k: v["id"] for k, v in d.items()}
    r = {}
    # inspection 1 of T1: units A, A1, B1, T1 responsible
    for insp, target, rects in (
            ("I1", "T1", [("a1", "A1", 10), ("a2", "A1", 20), ("b1", "B1", 20), ("aa", "A", 5),
                          ("ab", "A", 15), ("t1", "T1", 25)]),
            ("I2", "A", [("x1", "B", 30), ("x2", "S", 12), ("x3", "B1", 12)])):
        i = mk_inspection(W["d"][target])
        W[insp] = i["id"]
        expect_status(ctx.admin.post(API + "/inspections/%d/start" % i["id"], json={}), 200)
        prob = mk_problem(items_of(i["id"])[0]["id"])
        for name, unit, due in rects:
            r[name] = mk_rect(prob["id"], W["d"][unit], deadline=day(due))["id"]
        expect_status(ctx.admin.post(API + "/inspections/%d/submit" % i["id"], json={}), 200)
    W["r"] = r
    W["u"] = {k: new_actor("department", W["d"][k]) for k in ("P", "A", "A1", "B", "S", "T1")}
    return W


def agree(when):
    eq(db_owner(DIFF), AGREE, "rectification_readers against the rules %s" % when)


def expected(user):
    out = db_owner(visible_sql(user.id))
    return {int(x) for x in out.split()} if out else set()


def sees(when, users=None, nested=False):
    """Every user sees in the ledger, and on each rectification of the world (and, nested, on its
    nested list of deadlines), exactly what the rules say."""
    w = world()
    for key in users or sorted(w["u"]):
        u = w["u"][key]
        want = expected(u)
        got = [x["id"] for x in u.client.list_all(API + "/rectifications")]
        eq(len(got), len(set(got)), "%s (user of %s): the ledger shows no row twice" % (when, key))
        eq(set(got), want, "%s: the ledger of the user of %s" % (when, key))
        r = u.client.get(API + "/rectifications?include_total=true&limit=1")
        expect_status(r, 200)
        eq(r.json["total"], len(want), "%s: the ledger's total for the user of %s" % (when, key))
        for name, rid in sorted(w["r"].items()):
            code = 200 if rid in want else 404
            eq(u.client.get(API + "/rectifications/%d" % rid).status, code,
               "%s: GET rectification %s as the user of %s" % (when, name, key))
            if nested:
                eq(u.client.get(API + "/rectifications/%d/deadlines" % rid).status, code,
                   "%s: the deadlines of %s as the user of %s" % (when, name, key))


ORDERS = {"deadline": "coalesce(deadline, 'infinity'::date), id", "-deadline":
          "coalesce(deadline, 'infinity'::date) DESC, id DESC", "updated_at": "updated_at, id",
          "-updated_at": "updated_at DESC, id DESC"}


def pages_in_order(when, key):
    """The user's ledger two rows at a time, in every order, is the rules' set in that order; so
    with a filter the ledger answers from rectification_readers alone (status) and with one it
    answers through the filter's own index (inspection_id), and their totals."""
    w = world()
    u = w["u"][key]
    want = ",".join(str(i) for i in expected(u)) or "NULL"
    for filters, where in (({}, "true"), ({"status": "pending,in_progress"}, "status IN ('pending', 'in_progress')"),
                           ({"inspection_id": w["I1"]}, "problem_id IN (SELECT p.id FROM problems p JOIN items it"
                                                         " ON it.id = p.item_id WHERE it.inspection_id = %d)" % w["I1"])):
        for sort, order in sorted(ORDERS.items()):
            ids = db_owner("SELECT string_agg(id::text, ' ' ORDER BY %s) FROM rectifications WHERE id IN (%s)"
                           " AND %s" % (order, want, where))
            ids = [int(x) for x in ids.split()]
            path = API + "/rectifications?" + urllib.parse.urlencode(dict(filters, sort=sort))
            got = [x["id"] for x in u.client.list_all(path, limit=2)]
            eq(got, ids, "%s: the ledger of the user of %s, %s, 2 a page" % (when, key, path))
        r = u.client.get(path + "&include_total=true&limit=1")
        expect_status(r, 200)
        eq(r.json["total"], len(ids), "%s: the total of %s for the user of %s" % (when, path, key))


@test
def the_table_follows_the_rules_through_the_lifecycle_and_the_tree():
    w = world()
    r, d, u = w["r"], w["d"], w["u"]
    agree("after create")
    sees("after create")

    # 转办: B1 keeps reading b1, A1 (and A, P above it) now read it too
    act_ok(inspector(1).client, r["b1"], "reassign", {"responsible_department_id": d["A1"], "reason": "职责调整"})
    agree("after reassign")
    sees("after reassign", ["A1", "B", "P"])

    # 销号, then the closure revoked: the readers stay, the sort keys follow
    drive(r["a1"], "closed", u["A1"].client)
    agree("after close")
    act_ok(ctx.admin, r["a1"], "revoke", {"reason": "核查发现材料不实"})
    agree("after revoke")
    drive(r["aa"], "closed", u["A"].client)  # stays with A through the merge
    sees("after revoke", ["A", "A1", "T1"])

    # 机构改革: A into S — ab (open) moves to S, aa (closed) stays with A, A1 moves under S,
    # the user of A moves to S; S's users read A's records through A being merged into S
    r2 = ctx.admin.post(API + "/departments/%d/merge" % d["A"], json={"successor_id": d["S"], "reason": "职责整合"})
    expect_status(r2, 200, "merge")
    eq(r2.json["merged_into_id"], d["S"], "merged into S")
    agree("after merge")
    sees("after merge", nested=True)
    pages_in_order("after merge", "S")
    pages_in_order("after merge", "P")

    # B1 moved under P: no row of the table changes, the scopes do
    before = db_owner("SELECT count(*) FROM rectification_readers WHERE department_id = %d" % d["B1"])
    expect_status(ctx.admin.patch(API + "/departments/%d" % d["B1"], json={"parent_id": d["P"]}, if_match="*"), 200)
    eq(db_owner("SELECT count(*) FROM rectification_readers WHERE department_id = %d" % d["B1"]), before,
       "rows of the moved unit")
    agree("after a unit moved")
    sees("after a unit moved", ["B", "P"])

    # the user of B moved to T1: its token stays, its scope is T1's now
    expect_status(ctx.admin.patch(API + "/users/%d" % u["B"].id, json={"department_id": d["T1"]}, if_match="*"),
                  200)
    agree("after a user moved")
    sees("after a user moved", ["B"])
    pages_in_order("after a user moved", "B")


@test
def the_triggers_follow_the_changes_the_api_does_not_make():
    """Each in a transaction of its own, compared with the rules inside it, then rolled back."""
    w = world()
    r, d = w["r"], w["d"]
    changes = {
        "an inspection's target": "UPDATE inspections SET target_department_id = %d WHERE id = %d" % (d["T2"], w["I2"]),
        # (the other inspection's item for the same task goes first: one item per task)
        "an item moved to another inspection":
            "WITH m AS (SELECT p.item_id AS id, it.task_id FROM problems p JOIN items it ON it.id = p.item_id"
            " JOIN rectifications r ON r.problem_id = p.id WHERE r.id = %d)"
            " DELETE FROM items WHERE inspection_id = %d AND task_id = (SELECT task_id FROM m);"
            " UPDATE items SET inspection_id = %d WHERE id = (SELECT p.item_id FROM problems p JOIN rectifications r"
            " ON r.problem_id = p.id WHERE r.id = %d)" % (r["t1"], w["I2"], w["I2"], r["t1"]),
        "a problem moved to another item":
            "UPDATE problems SET item_id = (SELECT id FROM items WHERE inspection_id = %d ORDER BY seq DESC LIMIT 1)"
            " WHERE id = (SELECT problem_id FROM rectifications WHERE id = %d)" % (w["I2"], r["t1"]),
        "a rectification moved to another problem":
            "UPDATE rectifications SET problem_id = (SELECT problem_id FROM rectifications WHERE id = %d)"
            " WHERE id = %d" % (r["x1"], r["t1"]),
        "an assignment removed": "DELETE FROM rectification_assignments WHERE rectification_id = %d"
                                 " AND department_id = %d" % (r["b1"], d["B1"]),
        "an assignment added": "INSERT INTO rectification_assignments (rectification_id, department_id)"
                               " VALUES (%d, %d)" % (r["x2"], d["T2"]),
        "a responsible unit and a deadline set together":
            "UPDATE rectifications SET responsible_department_id = %d, deadline = deadline + 3, updated_at = now()"
            " WHERE id = %d" % (d["T2"], r["t1"]),
        "a rectification deleted": "DELETE FROM rectifications WHERE id = %d" % r["x3"],
        # the unit it leaves has no reason left: neither assigned before (its row gone) nor target
        "a responsible unit left without an assignment":
            "DELETE FROM rectification_assignments WHERE rectification_id = %d; UPDATE rectifications"
            " SET responsible_department_id = %d, updated_at = now() WHERE id = %d" % (r["x1"], d["T2"], r["x1"]),
    }
    for what, sql in sorted(changes.items()):
        out = db_owner("BEGIN; SET CONSTRAINTS ALL DEFERRED; %s; SELECT 'diff', (%s); ROLLBACK" % (sql, DIFF))
        eq([x.rstrip() for x in out.split("\n") if x.startswith("diff|")], ["diff|" + AGREE], "after %s" % what)
    agree("after the rollbacks")


if __name__ == "__main__":
    try:
        main()
    finally:
        for s in _owner:
            s.close()
