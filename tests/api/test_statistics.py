#!/usr/bin/python3
"""The statistics of the 通报 (GET /api/v1/statistics/...): every figure is computed a second way
through the ledger (GET /api/v1/rectifications with its own filters, include_total=true, and the
rows themselves) and compared, for an admin and for department users; the counts kept ahead by
triggers (migrations/0016) agree with the ledger when the cells lag behind the date (as_of) or
the calendar, and after the job `statistics` catches up.

The data are this file's own units and inspections (other files share the database): the
figures of units of other files are ignored, and selections name this file's batch or units."""

import datetime as dt
import os
import statistics as pystats
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, PsqlSession, check, ctx, day, db, eq, expect_problem, expect_status,  # noqa: E402
                     extra_server, items_of, main, mk_dept, mk_inspection, mk_problem, mk_rect, test)
from lifecycle_helpers import act_ok, add_evidence, dept_user, inspector, owner_db, set_deadline_sql, viewer  # noqa: E402

STATS = API + "/statistics"
TZ = dt.timezone(dt.timedelta(hours=8))  # DUCHA_TIMEZONE Asia/Shanghai (no daylight saving)
OPEN = "pending,in_progress,submitted"


class Data:
    """Units: D with sub-unit D1 (inspected), R with sub-units R1, R2 (responsible), X (responsible
    and inspected), Z (nothing to rectify). Batch B: I1 (D, 40 days ago), I2 (D1, 20 days ago),
    I3 (D, 10 days ago); I4 (X, 100 days ago, no batch). Rectifications of every status, overdue a
    little (yellow), a lot or urged (red), due soon (blue), closed on time and late, one reassigned
    from X to R (X keeps reading it)."""

    def __init__(self):
        a = ctx.admin
        u = {}
        u["D"] = mk_dept(name=ctx.uniq("统计区政府"))
        u["D1"] = mk_dept(name=ctx.uniq("统计街道"), parent_id=u["D"]["id"])
        u["R"] = mk_dept(name=ctx.uniq("统计责任单位"))
        u["R1"] = mk_dept(name=ctx.uniq("统计科室甲"), parent_id=u["R"]["id"])
        u["R2"] = mk_dept(name=ctx.uniq("统计科室乙"), parent_id=u["R"]["id"])
        u["X"] = mk_dept(name=ctx.uniq("统计无关单位"))
        u["Z"] = mk_dept(name=ctx.uniq("统计无整改单位"))
        self.u = u
        self.ids = {v["id"]: k for k, v in u.items()}
        r = a.post(API + "/batches", json={"name": ctx.uniq("2026年统计批次")})
        expect_status(r, 201)
        self.B = r.json
        self.I = {}
        for name, target, ago, batch in (("I1", "D", 40, True), ("I2", "D1", 20, True), ("I3", "D", 10, True),
                                         ("I4", "X", 100, False)):
            fields = {"inspected_on": day(-ago)}
            if batch:
                fields["batch_id"] = self.B["id"]
            self.I[name] = mk_inspection(u[target]["id"], **fields)
            expect_status(a.post(API + "/inspections/%d/start" % self.I[name]["id"], json={}), 200)
        self.items = {k: items_of(v["id"]) for k, v in self.I.items()}
        # completions found (the matrix)
        for ins, seqs in (("I1", {1: "completed", 2: "not_completed", 3: "not_completed"}),
                          ("I2", {1: "not_completed", 2: "completed"}),
                          ("I3", {1: "not_completed", 4: "completed"})):
            for seq, completion in seqs.items():
                it = self.items[ins][seq - 1]
                r = a.get(API + "/items/%d" % it["id"])
                r = a.req("PATCH", API + "/items/%d" % it["id"], json={"completion": completion}, if_match=r.etag)
                expect_status(r, 200, "set a completion")

        def problem(ins, seq):
            return mk_problem(self.items[ins][seq - 1]["id"])["id"]

        p = {("I1", 2): problem("I1", 2), ("I1", 3): problem("I1", 3), ("I2", 1): problem("I2", 1),
             ("I3", 1): problem("I3", 1), ("I4", 1): problem("I4", 1)}
        plan = [  # name, problem, unit, deadline offset
            ("r1", ("I1", 2), "R", 10), ("r2", ("I1", 2), "R1", 30), ("r3", ("I1", 3), "X", 30),
            ("r4", ("I1", 3), "R2", 5), ("r5", ("I1", 2), "R", 20), ("r6", ("I1", 3), "R1", 20),
            ("r7", ("I2", 1), "R", 30), ("r8", ("I2", 1), "X", 2), ("r9", ("I2", 1), "D1", 20),
            ("r10", ("I3", 1), "R", 30), ("r11", ("I3", 1), "D", 20), ("r14", ("I2", 1), "X", 25),
            ("r12", ("I4", 1), "R", 20), ("r13", ("I4", 1), "R2", 30), ("r15", ("I1", 2), "D", 40)]
        self.r = {}
        for name, prob, unit, offset in plan:
            self.r[name] = mk_rect(p[prob], u[unit]["id"], deadline=day(offset))["id"]
        for ins in self.I.values():
            expect_status(a.post(API + "/inspections/%d/submit" % ins["id"], json={}), 200)
        ins1 = inspector(1).client
        du = {k: dept_user(u[k]["id"]).client for k in ("R", "X", "D")}
        # r2 in progress, late by 2 calendar days (yellow); r3 pending and long overdue (red)
        act_ok(du["R"], self.r["r2"], "start")
        set_deadline_sql(self.r["r2"], day(-2))
        set_deadline_sql(self.r["r3"], day(-30))
        # r4 submitted; r5 closed on time; r6 closed late (submitted after its deadline)
        for k in ("r4", "r5", "r6", "r12"):
            act_ok(du["R"], self.r[k], "start")
            add_evidence(du["R"], self.r[k])
        set_deadline_sql(self.r["r6"], day(-3))
        for k in ("r4", "r5", "r6", "r12"):
            act_ok(du["R"], self.r[k], "submit")
        for k in ("r5", "r6", "r12"):
            act_ok(ins1, self.r[k], "close", {"opinion": "同意销号"})
        # r7 overdue by a day but urged twice (red); r8 due in 2 days (blue)
        set_deadline_sql(self.r["r7"], day(-1))
        for _ in range(2):
            act_ok(ins1, self.r["r7"], "urge")
        # r9 (D1) and r11 (D) closed, r11 late
        set_deadline_sql(self.r["r11"], day(-5))
        for k, unit in (("r9", "D"), ("r11", "D")):
            act_ok(du[unit], self.r[k], "start")
            add_evidence(du[unit], self.r[k])
            act_ok(du[unit], self.r[k], "submit")
            act_ok(ins1, self.r[k], "close", {"opinion": "同意销号"})
        # r14: X's, handed over to R (X still reads it); r13 overdue long ago
        act_ok(ins1, self.r["r14"], "reassign", {"responsible_department_id": u["R"]["id"], "reason": "职责调整"})
        set_deadline_sql(self.r["r13"], day(-60))
        # working days to close: the inspections were submitted days ago, one closure came later
        for ins, ago in (("I1", 25), ("I2", 12), ("I3", 6), ("I4", 90)):
            owner_db("UPDATE inspections SET submitted_at = now() - interval '%d days' WHERE id = %d"
                     % (ago, self.I[ins]["id"]))
        owner_db("UPDATE rectifications SET closed_at = now() - interval '4 days' WHERE id = %d" % self.r["r5"])
        owner_db("UPDATE rectifications SET created_at = now() - interval '35 days' WHERE id IN (%d, %d)"
                 % (self.r["r1"], self.r["r13"]))
        self.name = {v: k for k, v in self.r.items()}
        self.ins_of = {}


_data = None
_lock = threading.Lock()


def data():
    global _data
    with _lock:
        if _data is None:
            _data = Data()
    return _data


# ---------------------------------------------------------------------------------------------
# the second way: the ledger

_inspections = {}
_ordinals = {}


def inspection(client, iid):
    if iid not in _inspections:
        r = ctx.admin.get(API + "/inspections/%d" % iid)
        expect_status(r, 200)
        _inspections[iid] = r.json
    return _inspections[iid]


def local_date(ts):
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(TZ).date()


def ordinal(d):
    key = d.isoformat()
    if key not in _ordinals:
        _ordinals[key] = int(db("SELECT ordinal FROM working_days WHERE day = '%s'" % key))
    return _ordinals[key]


def forget_ordinals():
    _ordinals.clear()


def days_to_close(client, row):
    """Working days from the inspection's submission to the closure, as the ledger shows them."""
    ins = inspection(client, row["inspection_id"])
    if row["status"] != "closed" or not ins["submitted_at"]:
        return None
    return ordinal(local_date(row["closed_at"])) - ordinal(local_date(ins["submitted_at"]))


def ledger(client, query):
    return client.list_all(API + "/rectifications?" + query)


def total(client, query):
    r = client.get(API + "/rectifications?%s&include_total=true&limit=1" % query)
    expect_status(r, 200)
    return r.json["total"]


def median(values):
    return float(pystats.median(values)) if values else None


def mean(values):
    return round(sum(values) / len(values) + 1e-9, 1) if values else None


def figures_of(client, rows):
    """A unit's figures from ledger rows."""
    closed = [x for x in rows if x["status"] == "closed"]
    days = [d for d in (days_to_close(client, x) for x in closed) if d is not None]
    return {"rectifications": len(rows), "open": sum(x["status"] != "closed" for x in rows),
            "overdue": sum(bool(x["overdue"]) for x in rows), "red": sum(x["escalation"] == "red" for x in rows),
            "closed": len(closed), "closed_on_time": sum(bool(x["closed_on_time"]) for x in closed),
            "closed_late": sum(x["closed_on_time"] is False for x in closed),
            "working_days_to_close": {"median": median(days), "mean": mean(days)}}


def unit_query(unit_id, sub_units, batch=None):
    q = "responsible_department_id=%d&include_sub_units=%s" % (unit_id, "true" if sub_units else "false")
    return q + ("&batch_id=%d" % batch if batch else "")


def expected_departments(client, sub_units, batch=None, inspected=None):
    """{unit name: figures} of this file's units, from the ledger; inspected: (from, to) dates."""
    d = data()
    out = {}
    for name, unit in d.u.items():
        q = unit_query(unit["id"], sub_units, batch)
        rows = ledger(client, q)
        if inspected:
            rows = [x for x in rows if inspected[0] <= inspection(client, x["inspection_id"])["inspected_on"]
                    <= inspected[1]]
        if not rows:
            continue
        out[name] = figures_of(client, rows)
        if not inspected:  # the ledger's own filters count the same
            for fig, extra in (("rectifications", ""), ("open", "&status=" + OPEN), ("overdue", "&overdue=true"),
                               ("red", "&escalation=red"), ("closed", "&status=closed")):
                eq(total(client, q + extra), out[name][fig], "ledger total of %s for %s (?%s%s)" % (fig, name, q, extra))
    return out


def mine(body):
    """The entries of this file's units, by name, without the department reference."""
    d = data()
    out = {}
    for e in body["data"]:
        name = d.ids.get(e["department"]["id"])
        if name:
            out[name] = {k: v for k, v in e.items() if k != "department"}
    return out


def departments(client, query=""):
    r = client.get(STATS + "/departments" + ("?" + query if query else ""))
    expect_status(r, 200)
    return r.json


def agree(client, sub_units=False, batch=None, inspected=None, label=""):
    q = ["include_sub_units=%s" % ("true" if sub_units else "false")]
    if batch:
        q.append("batch_id=%d" % batch)
    if inspected:
        q.append("inspected_from=%s&inspected_to=%s" % inspected)
    body = departments(client, "&".join(q))
    eq(body["include_sub_units"], sub_units)
    want = expected_departments(client, sub_units, batch, inspected)
    eq(mine(body), want, "departments %s?%s = the ledger" % (label, "&".join(q)))
    return want


# ---------------------------------------------------------------------------------------------
# per responsible unit


@test
def departments_agree_with_the_ledger_for_an_admin():
    d = data()
    for sub in (False, True):
        got = agree(ctx.admin, sub_units=sub, label="admin")
        check(set(got) >= {"R", "R1", "R2", "X", "D", "D1"}, "the units responsible for something: %s" % sorted(got))
        check("Z" not in got, "a unit with nothing to rectify is not listed")
    got = agree(ctx.admin, sub_units=False)
    eq(got["R"]["rectifications"], 6, "R: r1 r5 r7 r10 r12 and r14 (handed over)")
    eq((got["X"]["red"], got["R1"]["overdue"], got["R1"]["red"]), (1, 1, 0), "red long overdue, yellow")
    eq(got["R"]["red"], 1, "r7: urged twice")
    eq((got["R1"]["closed_late"], got["R"]["closed_on_time"]), (1, 2))
    check(got["R"]["working_days_to_close"]["median"] is not None, "R has working days to close")
    agree(ctx.admin, batch=d.B["id"])
    agree(ctx.admin, sub_units=True, batch=d.B["id"])


@test
def departments_agree_over_a_range_of_inspection_dates():
    # ranges whose ends fall inside months (the cells' days), and spanning whole months
    for ago_from, ago_to in ((45, 15), (30, 0), (200, 0), (100, 100), (41, 39)):
        agree(ctx.admin, inspected=(day(-ago_from), day(-ago_to)), label="range")
    agree(ctx.admin, sub_units=True, inspected=(day(-45), day(-15)), label="range")


@test
def departments_agree_for_department_users():
    d = data()
    for unit in ("D", "X", "R"):
        client = dept_user(d.u[unit]["id"]).client
        for sub in (False, True):
            got = agree(client, sub_units=sub, label="department user of %s" % unit)
        if unit == "D":
            check({"R", "X", "D", "D1"} <= set(got), "D reads what its inspections gave other units: %s" % sorted(got))
        if unit == "X":
            eq(got["R"]["rectifications"], 3, "X reads r12 r13 (its inspection, R's and R2's) and r14 (once its own)")
        agree(client, batch=d.B["id"], label="department user of %s" % unit)
        agree(client, inspected=(day(-45), day(-15)), label="department user of %s" % unit)


@test
def only_what_a_department_user_reads():
    d = data()
    got = mine(departments(dept_user(d.u["R"]["id"]).client))
    eq(sorted(got), ["R", "R1", "R2"], "R's user reads its units' rectifications only")
    body = departments(dept_user(d.u["Z"]["id"]).client)
    eq(body["data"], [], "a unit with nothing sees nothing")


# ---------------------------------------------------------------------------------------------
# one inspection


def inspection_figures(client, iid):
    rows = ledger(client, "inspection_id=%d" % iid)
    closed = [x for x in rows if x["status"] == "closed"]
    esc = {k: sum(x["escalation"] == k for x in rows) for k in ("none", "blue", "yellow", "red")}
    by = {s: sum(x["status"] == s for x in rows) for s in ("pending", "in_progress", "submitted", "closed")}
    on_time = sum(bool(x["closed_on_time"]) for x in closed)
    for k in esc:
        eq(total(client, "inspection_id=%d&escalation=%s" % (iid, k)), esc[k], "ledger escalation=%s" % k)
    for s in by:
        eq(total(client, "inspection_id=%d&status=%s" % (iid, s)), by[s], "ledger status=%s" % s)
    items = items_of(iid, client)
    problems = sum(len(client.list_all(API + "/items/%d/problems" % it["id"])) for it in items)
    return {"rows": {"total": len(items), "completed": sum(it["completion"] == "completed" for it in items),
                     "not_completed": sum(it["completion"] == "not_completed" for it in items),
                     "not_assessed": sum(it["completion"] == "not_assessed" for it in items)},
            "problems": problems,
            "rectifications": dict(by, total=len(rows), open=len(rows) - by["closed"],
                                   overdue=total(client, "inspection_id=%d&overdue=true" % iid), escalation=esc,
                                   closed_on_time=on_time, closed_late=sum(x["closed_on_time"] is False for x in closed),
                                   closure_rate=round(len(closed) / len(rows), 4) if rows else None,
                                   on_time_rate=round(on_time / len(closed), 4) if closed else None)}


@test
def an_inspection_agrees_with_the_ledger():
    d = data()
    for client, names in ((ctx.admin, ("I1", "I2", "I3", "I4")), (dept_user(d.u["D"]["id"]).client, ("I1", "I2")),
                          (viewer().client, ("I1",))):
        for name in names:
            iid = d.I[name]["id"]
            r = client.get(STATS + "/inspections/%d" % iid)
            expect_status(r, 200)
            eq(r.json["inspection"]["id"], iid)
            got = {k: r.json[k] for k in ("rows", "problems", "rectifications")}
            eq(got, inspection_figures(client, iid), "inspection %s" % name)
    r = ctx.admin.get(STATS + "/inspections/%d" % d.I["I1"]["id"]).json
    eq((r["rectifications"]["total"], r["rectifications"]["escalation"]["red"], r["rows"]["completed"]), (7, 1, 1))
    expect_problem(dept_user(d.u["X"]["id"]).client.get(STATS + "/inspections/%d" % d.I["I1"]["id"]), 404,
                   "not-found")
    expect_problem(ctx.admin.get(STATS + "/inspections/999999999"), 404, "not-found")


# ---------------------------------------------------------------------------------------------
# the matrix


def check_matrix(client, body, columns):
    """Every cell, total and unit of the columns {unit name: inspection name} against the items and
    the ledger."""
    d = data()
    units = [x for x in body["units"] if x["department"]["id"] in d.ids]
    eq({d.ids[x["department"]["id"]]: x["inspection"]["id"] for x in units},
       {k: d.I[v]["id"] for k, v in columns.items()}, "the latest inspection of each unit")
    index = {x["department"]["id"]: i for i, x in enumerate(body["units"])}
    eq([x["department"]["id"] for x in body["units"]], sorted(index), "units by id")
    tasks = body["tasks"]
    eq([t["task"]["seq"] for t in tasks], list(range(1, len(tasks) + 1)), "tasks by seq")
    for x in units:
        ins = x["inspection"]["id"]
        items = {it["task_id"]: it for it in items_of(ins, client)}
        counts = {"completed": 0, "not_completed": 0, "not_assessed": 0, "open_rectifications": 0}
        for t in tasks:
            cell = t["cells"][index[x["department"]["id"]]]
            it = items.get(t["task"]["id"])
            if it is None:
                eq(cell, None, "no row, no cell")
                continue
            n = total(client, "inspection_id=%d&task_id=%d&status=%s" % (ins, t["task"]["id"], OPEN))
            eq(cell, {"completion": it["completion"], "open_rectifications": n},
               "cell of task %d, unit %s" % (t["task"]["seq"], d.ids[x["department"]["id"]]))
            counts[it["completion"]] += 1
            counts["open_rectifications"] += n
        eq({k: x[k] for k in counts}, counts, "the unit's totals")
    for t in tasks:
        cells = [c for c in t["cells"] if c]
        eq({k: t[k] for k in ("completed", "not_completed", "not_assessed", "open_rectifications")},
           {"completed": sum(c["completion"] == "completed" for c in cells),
            "not_completed": sum(c["completion"] == "not_completed" for c in cells),
            "not_assessed": sum(c["completion"] == "not_assessed" for c in cells),
            "open_rectifications": sum(c["open_rectifications"] for c in cells)}, "the task's totals")
    eq(body["totals"]["open_rectifications"], sum(t["open_rectifications"] for t in tasks))
    eq(body["totals"]["completed"], sum(x["completed"] for x in body["units"]))


@test
def the_matrix_of_a_batch():
    d = data()
    r = ctx.admin.get(STATS + "/matrix?batch_id=%d" % d.B["id"])
    expect_status(r, 200)
    eq(r.json["checklist"]["id"], d.I["I1"]["checklist_id"])
    eq(len(r.json["units"]), 2, "D and D1")
    eq(len(r.json["tasks"]), len(d.items["I1"]), "every task of the checklist")
    check_matrix(ctx.admin, r.json, {"D": "I3", "D1": "I2"})
    # I3 is D's latest: I1's rectifications are not in D's column
    col = [x["department"]["id"] for x in r.json["units"]].index(d.u["D"]["id"])
    eq(r.json["tasks"][0]["cells"][col], {"completion": "not_completed", "open_rectifications": 1})
    du = dept_user(d.u["D1"]["id"]).client
    r = du.get(STATS + "/matrix?batch_id=%d" % d.B["id"])
    expect_status(r, 200)
    eq([x["department"]["id"] for x in r.json["units"]], [d.u["D1"]["id"]], "a department user's own units only")
    check_matrix(du, r.json, {"D1": "I2"})
    r = dept_user(d.u["X"]["id"]).client.get(STATS + "/matrix?batch_id=%d" % d.B["id"])
    expect_status(r, 200)
    eq(r.json["units"], [], "X is not inspected in the batch")


@test
def the_matrix_of_a_checklist_and_dates():
    d = data()
    checklist = d.I["I1"]["checklist_id"]
    r = ctx.admin.get(STATS + "/matrix?checklist_id=%d&inspected_from=%s&inspected_to=%s" % (checklist, day(-45), day(-15)))
    expect_status(r, 200)
    check_matrix(ctx.admin, r.json, {"D": "I1", "D1": "I2"})
    r = ctx.admin.get(STATS + "/matrix?checklist_id=%d&inspected_from=%s&inspected_to=%s" % (checklist, day(-200), day(0)))
    expect_status(r, 200)
    check_matrix(ctx.admin, r.json, {"D": "I3", "D1": "I2", "X": "I4"})
    expect_problem(ctx.admin.get(STATS + "/matrix?batch_id=999999999"), 404, "not-found")
    expect_problem(ctx.admin.get(STATS + "/matrix?checklist_id=999999999"), 404, "not-found")


# ---------------------------------------------------------------------------------------------
# the ranking


def ranking_order_holds(data_):
    key = [(-(x["closure_rate"] or 0), -(x["on_time_rate"] if x["on_time_rate"] is not None else -1),
            x["mean_working_days_to_close"] if x["mean_working_days_to_close"] is not None else 1e9) for x in data_]
    eq(key, sorted(key), "ordered by closure rate, on-time rate, mean working days")
    for i, x in enumerate(data_):
        want = 1 + sum(1 for k in key if k < key[i])
        eq(x["rank"], want, "rank of %s (equal values share a rank)" % x["department"]["name"])


@test
def the_ranking_agrees_with_the_ledger():
    d = data()
    for sub in (False, True):
        r = ctx.admin.get(STATS + "/ranking?batch_id=%d&include_sub_units=%s" % (d.B["id"], "true" if sub else "false"))
        expect_status(r, 200)
        ranked = r.json["data"]
        ranking_order_holds(ranked)
        want = expected_departments(ctx.admin, sub, d.B["id"])
        got = {d.ids[x["department"]["id"]]: x for x in ranked if x["department"]["id"] in d.ids}
        eq(sorted(got), sorted(want), "the units ranked")
        for name, x in got.items():
            w = want[name]
            eq({k: x[k] for k in ("rectifications", "closed", "closed_on_time", "closure_rate", "on_time_rate",
                                  "mean_working_days_to_close")},
               {"rectifications": w["rectifications"], "closed": w["closed"], "closed_on_time": w["closed_on_time"],
                "closure_rate": round(w["closed"] / w["rectifications"], 4),
                "on_time_rate": round(w["closed_on_time"] / w["closed"], 4) if w["closed"] else None,
                "mean_working_days_to_close": w["working_days_to_close"]["mean"]}, "ranking of %s" % name)
        apart = {x["id"] for x in r.json["without_rectifications"]}
        check(d.u["Z"]["id"] in apart, "Z has nothing to rectify")
        check(not (apart & {d.u[k]["id"] for k in got}), "a ranked unit is not listed apart")
    # R2 and X tie: nothing closed of either in the batch
    r = ctx.admin.get(STATS + "/ranking?batch_id=%d" % d.B["id"]).json
    rank = {d.ids[x["department"]["id"]]: x["rank"] for x in r["data"] if x["department"]["id"] in d.ids}
    eq(rank["R2"], rank["X"], "equal values, equal ranks")


@test
def the_matrix_and_the_ranking_as_files_for_the_circular():
    """format=xlsx: the same figures as the JSON, read back with openpyxl; csv: the same cells."""
    import io
    import openpyxl
    d = data()
    q = "batch_id=%d" % d.B["id"]
    m = ctx.admin.get(STATS + "/matrix?" + q).json
    r = ctx.admin.get(STATS + "/matrix?%s&format=xlsx" % q)
    expect_status(r, 200)
    check("attachment" in (r.h("Content-Disposition") or ""), "a download")
    ws = openpyxl.load_workbook(io.BytesIO(r.body)).active
    eq([ws.cell(2, c).value for c in range(1, 3 + len(m["units"]) + 1)],
       ["序号", "工作任务"] + [u["department"]["name"] for u in m["units"]] + ["合计"], "the header row")
    check(any(str(x) == "A1:%s1" % openpyxl.utils.get_column_letter(3 + len(m["units"])) for x in ws.merged_cells.ranges),
          "the title spans the table: %s" % ws.merged_cells.ranges)
    labels = {"completed": "已完成", "not_completed": "未完成", "not_assessed": "未督察"}
    for i, t in enumerate(m["tasks"]):
        eq(ws.cell(3 + i, 1).value, t["task"]["seq"])
        for j, cell in enumerate(t["cells"]):
            want = None if cell is None else labels[cell["completion"]] + (
                "（整改中 %d）" % cell["open_rectifications"] if cell["open_rectifications"] else "")
            eq(ws.cell(3 + i, 3 + j).value, want, "task %d, unit %d" % (t["task"]["seq"], j))
    eq(ws.page_setup.orientation, "landscape")
    eq(ws.print_title_rows.replace("$", ""), "2:2", "the header row on every printed page")
    c = ctx.admin.get(STATS + "/matrix?%s&format=csv" % q)
    expect_status(c, 200)
    check(c.body.startswith(b"\xef\xbb\xbf"), "a BOM")
    check("工作任务" in c.body.decode("utf-8-sig"), "the header in the CSV")
    ranking = ctx.admin.get(STATS + "/ranking?" + q).json
    r = ctx.admin.get(STATS + "/ranking?%s&format=xlsx" % q)
    expect_status(r, 200)
    ws = openpyxl.load_workbook(io.BytesIO(r.body)).active
    eq(ws.cell(2, 1).value, "排名")
    for i, x in enumerate(ranking["data"]):
        eq([ws.cell(3 + i, k).value for k in (1, 2, 3, 4)],
           [x["rank"], x["department"]["name"], x["rectifications"], x["closed"]], "rank %d" % (i + 1))
    names = [ws.cell(k, 2).value for k in range(1, ws.max_row + 1)]
    for x in ranking["without_rectifications"]:
        check(x["name"] in names, "%s listed apart" % x["name"])
    expect_problem(ctx.admin.get(STATS + "/ranking?%s&format=pdf" % q), 400)


@test
def the_ranking_is_for_staff_and_viewers():
    d = data()
    expect_status(viewer().client.get(STATS + "/ranking"), 200)
    expect_status(inspector(1).client.get(STATS + "/ranking"), 200)
    expect_problem(dept_user(d.u["R"]["id"]).client.get(STATS + "/ranking"), 403, "forbidden")


# ---------------------------------------------------------------------------------------------
# the trend


def period_of(d, interval):
    return (d - dt.timedelta(days=d.weekday())) if interval == "week" else d.replace(day=1)


def expected_trend(client, rows, interval, d_from, d_to):
    out = {}
    for x in rows:
        c = local_date(x["created_at"])
        if d_from <= c <= d_to:
            out.setdefault(period_of(c, interval), [0, 0, 0])[0] += 1
        if x["status"] == "closed":
            c = local_date(x["closed_at"])
            if d_from <= c <= d_to:
                out.setdefault(period_of(c, interval), [0, 0, 0])[1] += 1
                out[period_of(c, interval)][2] += x["closed_on_time"] is False
    return {k.isoformat(): v for k, v in out.items()}


def trend(client, query):
    r = client.get(STATS + "/trend?" + query)
    expect_status(r, 200)
    return r.json


@test
def the_trend_agrees_with_the_ledger():
    d = data()
    today = dt.date.fromisoformat(day(0))
    cases = [(ctx.admin, "responsible_department_id=%d&include_sub_units=true" % d.u["R"]["id"]),
             (ctx.admin, "responsible_department_id=%d" % d.u["X"]["id"]),
             (dept_user(d.u["D"]["id"]).client, ""),
             (dept_user(d.u["X"]["id"]).client, ""),
             (dept_user(d.u["D"]["id"]).client, "responsible_department_id=%d&include_sub_units=true" % d.u["R"]["id"])]
    for client, unit in cases:
        rows = ledger(client, unit)
        for interval, d_from in (("week", today - dt.timedelta(days=50)), ("month", today - dt.timedelta(days=80))):
            body = trend(client, "interval=%s&from=%s&to=%s%s" % (interval, d_from, today, "&" + unit if unit else ""))
            eq((body["from"], body["to"], body["interval"]), (d_from.isoformat(), today.isoformat(), interval))
            got = {p["period"]: [p["created"], p["closed"], p["closed_late"]] for p in body["data"]
                   if p["created"] or p["closed"]}
            eq(got, expected_trend(client, rows, interval, d_from, today), "trend ?%s %s" % (unit, interval))
            periods = [dt.date.fromisoformat(p["period"]) for p in body["data"]]
            eq(periods[0], period_of(d_from, interval), "the first period holds from")
            eq(periods[-1], period_of(today, interval), "the last period holds to")
            eq(body["data"][0]["from"], d_from.isoformat(), "clipped to the range")
    body = trend(ctx.admin, "responsible_department_id=%d&include_sub_units=true" % d.u["R"]["id"])
    eq(len(body["data"]), 12, "12 months by default")
    eq(body["data"][-1]["to"], today.isoformat())
    created = sum(p["created"] for p in body["data"])
    eq(created, len(ledger(ctx.admin, "responsible_department_id=%d&include_sub_units=true" % d.u["R"]["id"])),
       "all of R's were created in the last 12 months")


@test
def the_trend_of_all_units_for_staff():
    """The all-units rows: r12 moved into a far year, what it adds there (and nothing else)."""
    d = data()

    def year():
        body = trend(ctx.admin, "interval=month&from=2097-01-01&to=2097-12-31")
        eq(len(body["data"]), 12)
        return {p["period"]: (p["created"], p["closed"], p["closed_late"]) for p in body["data"]}

    owner_db("UPDATE rectifications SET created_at = now(), closed_at = now() WHERE id = %d" % d.r["r12"])
    before = year()
    owner_db("UPDATE rectifications SET created_at = '2097-05-05 03:00Z', closed_at = '2097-06-02 03:00Z' WHERE id = %d"
             % d.r["r12"])
    after = year()
    diff = {k: tuple(a - b for a, b in zip(after[k], before[k])) for k in after if after[k] != before[k]}
    eq(diff, {"2097-05-01": (1, 0, 0), "2097-06-01": (0, 1, 0)}, "r12 created in May, closed on time in June")


# ---------------------------------------------------------------------------------------------
# the counts kept ahead


def state():
    return db("SELECT as_of || ' ' || calendar_version FROM statistics_state")


@test
def the_cells_agree_when_they_lag_behind_the_date():
    """as_of 40 days back: the cells count as overdue only deadlines before it; the reports add
    the rest from the facts. Then the job's catch-up moves as_of to today."""
    d = data()
    db("SELECT statistics_rebuild(ducha_today() - 40)")
    eq(state().split()[0], day(-40))
    agree(ctx.admin, label="as_of 40 days back")
    agree(ctx.admin, sub_units=True, inspected=(day(-45), day(-5)), label="as_of 40 days back")
    agree(dept_user(d.u["D"]["id"]).client, label="as_of 40 days back")
    out = db("SELECT statistics_catch_up()")
    check('"as_of": "%s"' % day(0) in out, "caught up: %s" % out)
    eq(state().split()[0], day(0))
    agree(ctx.admin, label="caught up")
    agree(dept_user(d.u["D"]["id"]).client, label="caught up")


@test
def the_cells_agree_when_the_calendar_changes():
    """A holiday between I4's submission and r12's closure (in 2097, a year no other file keeps):
    until the job counts the working days again the reports count them from the facts."""
    d = data()
    owner_db("UPDATE inspections SET submitted_at = '2097-03-02 02:00Z' WHERE id = %d" % d.I["I4"]["id"])
    owner_db("UPDATE rectifications SET created_at = '2097-05-05 03:00Z', closed_at = '2097-03-20 03:00Z' WHERE id = %d"
             % d.r["r12"])
    _inspections.clear()
    db("SELECT statistics_catch_up()")
    agree(ctx.admin, label="before the calendar")
    before = mine(departments(ctx.admin))["R"]["working_days_to_close"]
    r = ctx.admin.get(API + "/calendar/2097")
    holidays = [{"date": "2097-03-11", "working": False, "name": "统计测试假日"},
                {"date": "2097-03-12", "working": False, "name": "统计测试假日"}]
    had = bool(r.json["days"])  # a run before kept them: now none, else these two
    r = ctx.admin.req("PUT", API + "/calendar/2097", if_match=r.etag, json={"days": [] if had else holidays})
    expect_status(r, 200, "replace the calendar of 2097")
    forget_ordinals()
    check(db("SELECT calendar_version <> (SELECT version FROM name_versions WHERE catalogue = 'calendar')"
             " FROM statistics_state") == "t", "the cells wait for the job")
    got = agree(ctx.admin, label="the calendar replaced")
    check(got["R"]["working_days_to_close"] != before, "two working days more or fewer for r12: %s, %s" % (
        before, got["R"]["working_days_to_close"]))
    agree(dept_user(d.u["X"]["id"]).client, label="the calendar replaced")
    agree(ctx.admin, inspected=(day(-120), day(0)), label="the calendar replaced")
    out = db("SELECT statistics_catch_up()")
    check('"calendar_current": true' in out, "counted again: %s" % out)
    agree(ctx.admin, label="counted again")
    agree(ctx.admin, sub_units=True, label="counted again")
    agree(dept_user(d.u["X"]["id"]).client, label="counted again")


@test
def the_job_catches_up_in_the_background():
    db("SELECT statistics_rebuild(ducha_today() - 3)")
    srv = extra_server({"DUCHA_JOBS": "statistics", "DUCHA_JOB_POLL_MS": "100"})
    try:
        db("UPDATE jobs SET next_run_at = now() WHERE name = 'statistics'")
        deadline = time.time() + 15
        while state().split()[0] != day(0) and time.time() < deadline:
            db("UPDATE jobs SET next_run_at = now() WHERE name = 'statistics' AND next_run_at > now()")
            time.sleep(0.1)
        eq(state().split()[0], day(0), "as_of moved to today by the job")
        check('"as_of"' in db("SELECT last_result::text FROM jobs WHERE name = 'statistics'"), "its result kept")
    finally:
        srv.stop()
    agree(ctx.admin, label="after the job")


CELL_SUMS = """
  count(*)::int, (count(*) FILTER (WHERE status <> 'closed'))::int,
  (count(*) FILTER (WHERE status = 'closed' AND closed_on_time))::int,
  (count(*) FILTER (WHERE status = 'closed' AND NOT closed_on_time))::int,
  (count(*) FILTER (WHERE status IN ('pending', 'in_progress') AND deadline < (SELECT as_of FROM statistics_state)))::int,
  coalesce(sum(days), 0)::bigint, coalesce(array_agg(days ORDER BY days) FILTER (WHERE days IS NOT NULL), '{}')"""
CELLS = """SELECT unit, checklist_id, period, n, open, on_time, late, overdue, days_sum,
  (SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest(days) x) FROM %s WHERE n <> 0"""


def differences(a, b):
    return int(db("SELECT count(*) FROM ((%s EXCEPT %s) UNION ALL (%s EXCEPT %s)) x" % (a, b, b, a)))


@test
def the_facts_and_cells_follow_every_change():
    """After all the changes above (creations, the lifecycle, a reassignment, deadlines, dates and
    submissions moved by hand, a calendar replaced): each of this file's rectifications' fact is
    what its tables say (statistics_fact_source), and every cell and trend row (of every file) the
    sum of the facts; each unit's working days to close, in order."""
    d = data()
    db("SELECT statistics_catch_up()")  # the working days of a calendar another file replaced
    # this file's (other files run servers in other time zones: local dates differ there)
    mine_now = "rectification_id IN (%s) AND (SELECT calendar_version FROM statistics_state) =" \
               " (SELECT version FROM name_versions WHERE catalogue = 'calendar')" % ", ".join(map(str, d.r.values()))
    eq(differences("SELECT * FROM statistics_fact_source WHERE %s" % mine_now,
                   "SELECT * FROM statistics_facts WHERE %s" % mine_now), 0, "the facts are the tables'")
    eq(int(db("SELECT count(*) FROM statistics_facts WHERE rectification_id IN (%s)"
              % ", ".join(map(str, d.r.values())))), len(d.r), "one fact each")
    eq(differences("SELECT unit, checklist_id, inspected_on, %s FROM statistics_facts GROUP BY 1, 2, 3" % CELL_SUMS,
                   CELLS % "statistics_days"), 0, "the day cells are the facts' sums")
    eq(differences("SELECT unit, checklist_id, date_trunc('month', inspected_on)::date, %s FROM statistics_facts"
                   " GROUP BY 1, 2, 3" % CELL_SUMS, CELLS % "statistics_months"), 0, "the month cells too")
    eq(differences("SELECT unit, checklist_id, array_agg(days ORDER BY days) FROM statistics_facts"
                   " WHERE days IS NOT NULL GROUP BY 1, 2",
                   "SELECT unit, checklist_id, days FROM statistics_units WHERE days <> '{}'"), 0,
       "each unit's working days to close, in order")
    trend_sums = ("SELECT u, d, sum(c)::int, sum(k)::int, sum(l)::int FROM statistics_facts f,"
                  " LATERAL (VALUES (f.created_on, 1, 0, 0), (f.closed_on, 0, 1, (f.closed_on_time IS FALSE)::int)) x(d, c, k, l),"
                  " LATERAL (VALUES (f.unit)) y(u) WHERE x.d IS NOT NULL GROUP BY 1, 2")
    eq(differences(trend_sums, "SELECT unit, day, created, closed, closed_late FROM statistics_trend"
                   " WHERE (created, closed, closed_late) <> (0, 0, 0)"), 0, "the trend rows too")


# ---------------------------------------------------------------------------------------------
# bad input (the reporting budget: test_reports.py, in a database of its own)


@test
def bad_parameters_are_400():
    cases = [("departments?unit=1", "/query/unit"), ("departments?batch_id=x", "/query/batch_id"),
             ("departments?inspected_from=2026-02-30", "/query/inspected_from"),
             ("departments?inspected_from=2026-03-02&inspected_to=2026-03-01", "/query/inspected_to"),
             ("ranking?include_sub_units=yes", "/query/include_sub_units"),
             ("matrix", "/query/batch_id"), ("matrix?batch_id=1&checklist_id=1", "/query/checklist_id"),
             ("matrix?batch_id=1&inspected_from=2026-03-02&inspected_to=2026-03-01", "/query/inspected_to"),
             ("trend?interval=day", "/query/interval"), ("trend?include_sub_units=true", "/query/include_sub_units"),
             ("trend?from=2026-03-02&to=2026-03-01", "/query/to"),
             ("trend?interval=week&from=2000-01-01&to=2099-12-31", "/query/from"),
             ("inspections/1?x=1", "/query/x"), ("trend?limit=5", "/query/limit")]
    for path, pointer in cases:
        expect_problem(ctx.admin.get(STATS + "/" + path), 400, "invalid-query", pointers=[pointer])


if __name__ == "__main__":
    main()
