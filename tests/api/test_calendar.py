#!/usr/bin/python3
"""Working days (issue 10): the calendar per year (节假日 / 调休), deadlines given in working days,
working days left and late, escalation (督办) and its edges, the ETag that follows the date and
the calendar, and the job that records each turn to yellow or red once.

Expected dates are computed here a second way, day by day, from the calendar this file keeps.
The file keeps the calendar of next year (a holiday week and a make-up Saturday in January,
where deadlines counted from today land) and of 2031; every other year counts Monday to Friday.
The other files never write a calendar."""

import datetime as dt
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, check, ctx, db, eq, expect_problem, expect_status, extra_server, main,  # noqa: E402
                     test, today)
from lifecycle_helpers import Case, add_evidence, dept_user, inspector, set_deadline_sql  # noqa: E402

NEXT = today().year + 1
# next year: the week of its second Monday off, the Saturday after it worked
_MON = dt.date(NEXT, 1, 1) + dt.timedelta(days=(7 - dt.date(NEXT, 1, 1).weekday()) % 7 + 7)
HOLIDAYS = {_MON + dt.timedelta(days=i) for i in range(5)}
MAKEUP = {_MON + dt.timedelta(days=5)}
NEXT_DAYS = [{"date": d.isoformat(), "working": False, "name": "测试假期"} for d in sorted(HOLIDAYS)] + \
            [{"date": d.isoformat(), "working": True, "name": "调休上班"} for d in sorted(MAKEUP)]
BLUE, RED_DAYS, RED_URGES = 3, 5, 2  # the defaults of DUCHA_ESCALATION_*


def working(d):
    if d.year == NEXT and d in HOLIDAYS:
        return False
    if d.year == NEXT and d in MAKEUP:
        return True
    return d.weekday() < 5


def add_working(start, n):
    d = start
    while n > 0:
        d += dt.timedelta(days=1)
        n -= working(d)
    return d


def between(a, b):
    """Working days after a up to and including b (a <= b)."""
    n, d = 0, a
    while d < b:
        d += dt.timedelta(days=1)
        n += working(d)
    return n


_kept = []


def keep_next_year():
    if not _kept:
        r = ctx.admin.get(API + "/calendar/%d" % NEXT)
        expect_status(r, 200)
        r = ctx.admin.req("PUT", API + "/calendar/%d" % NEXT, json={"days": NEXT_DAYS}, if_match=r.etag)
        expect_status(r, 200, "keep next year's calendar")
        _kept.append(r.json)
    return _kept[0]


def rect(case_id):
    r = ctx.admin.get(API + "/rectifications/%d" % case_id)
    expect_status(r, 200)
    return r.json


@test
def a_year_without_a_calendar_counts_monday_to_friday():
    r = ctx.admin.get(API + "/calendar/2040")
    expect_status(r, 200)
    eq((r.json["complete"], r.json["days"], r.etag), (False, [], '"0"'))
    weekdays = sum(1 for i in range(366) if dt.date(2040, 1, 1) + dt.timedelta(days=i) <= dt.date(2040, 12, 31)
                   and (dt.date(2040, 1, 1) + dt.timedelta(days=i)).weekday() < 5)
    eq(r.json["working_days"], weekdays, "working days of 2040")
    for year in (1999, 2100):
        expect_problem(ctx.admin.get(API + "/calendar/%d" % year), 404)
    dept = dept_user(Case(submit=False).resp["id"])
    expect_status(dept.client.get(API + "/calendar/2040"), 200, "every role reads calendars")


@test
def replacing_a_year_needs_admin_if_match_and_valid_days():
    url = API + "/calendar/2031"
    r = ctx.admin.get(url)
    tag = r.etag
    days = [{"date": "2031-01-01", "working": False, "name": "元旦"},
            {"date": "2031-01-04", "working": True}]  # a Saturday worked
    expect_problem(ctx.admin.req("PUT", url, json={"days": days}), 428)
    expect_problem(ctx.admin.req("PUT", url, json={"days": days}, if_match='"999"'), 412)
    expect_problem(inspector().client.req("PUT", url, json={"days": days}, if_match=tag), 403)
    bad = [
        ({"days": [{"date": "2030-12-31", "working": False}]}, "/days/0/date"),
        ({"days": [days[0], days[0]]}, "/days/1/date"),
        ({"days": [{"date": "2031-02-30", "working": False}]}, "/days/0/date"),
        ({"days": [{"date": "2031-02-03", "working": "no"}]}, "/days/0/working"),
        ({"days": [{"date": "2031-02-03"}]}, "/days/0/working"),
        ({"days": [{"date": "2031-02-03", "working": False, "colour": "red"}]}, "/days/0/colour"),
        ({"days": days, "year": 2031}, "/year"),
        ({"days": "2031-01-01"}, "/days"),
        ({}, "/days"),
    ]
    for body, pointer in bad:
        expect_problem(ctx.admin.req("PUT", url, json=body, if_match="*"), 400, pointers=[pointer])
    eq(ctx.admin.get(url).etag, tag, "nothing written by refused replacements")
    r = ctx.admin.req("PUT", url, json={"days": days}, if_match=tag)
    expect_status(r, 200)
    eq((r.json["complete"], [d["date"] for d in r.json["days"]]), (True, ["2031-01-01", "2031-01-04"]))
    check(r.etag != tag, "a new ETag")
    weekdays = sum(1 for i in range(365) if (dt.date(2031, 1, 1) + dt.timedelta(days=i)).weekday() < 5)
    eq(r.json["working_days"], weekdays - 1 + 1, "a holiday off, a Saturday on")
    eq(r.json["updated_by"]["name"] is not None, True)
    expect_status(ctx.admin.get(url, headers={"If-None-Match": r.etag}), 304)
    events = db("SELECT action || ':' || entity_id FROM audit_events WHERE entity_type = 'calendar'"
                " AND entity_id = 2031 ORDER BY id DESC LIMIT 1")
    eq(events, "replace:2031", "the replacement is audited")


@test
def deadline_in_working_days_across_a_holiday_week_and_a_make_up_saturday():
    keep_next_year()
    c = Case(submit=False)
    start = today()
    # from today to past the holiday week of January next year
    n_past = between(start, _MON + dt.timedelta(days=7))
    for n in (1, 2, 5, n_past - 1, n_past):
        r = ctx.admin.req("PATCH", API + "/rectifications/%d" % c.id, json={"deadline_in_working_days": n},
                          if_match="*", ctype="application/merge-patch+json")
        expect_status(r, 200, "patch with %d working days" % n)
        eq(r.json["deadline"], add_working(start, n).isoformat(), "%d working days from %s" % (n, start))
        check(working(dt.date.fromisoformat(r.json["deadline"])), "a deadline falls on a working day")
    made = ctx.admin.post(API + "/problems/%d/rectifications" % c.problem["id"],
                          json={"measure": ctx.uniq("措施"), "responsible_department_id": c.resp["id"],
                                "deadline_in_working_days": 10})
    expect_status(made, 201)
    eq(made.json["deadline"], add_working(start, 10).isoformat())
    for body, pointer in [({"deadline_in_working_days": 3, "deadline": "2030-01-01"}, "/deadline_in_working_days"),
                          ({"deadline_in_working_days": 0}, "/deadline_in_working_days"),
                          ({"deadline_in_working_days": "5"}, "/deadline_in_working_days"),
                          ({"deadline_in_working_days": 1.5}, "/deadline_in_working_days")]:
        expect_problem(ctx.admin.req("PATCH", API + "/rectifications/%d" % c.id, json=body, if_match="*",
                                     ctype="application/merge-patch+json"), 400, pointers=[pointer])


@test
def extend_and_request_extension_take_working_days():
    keep_next_year()
    c = Case(deadline=(today() + dt.timedelta(days=3)).isoformat())
    d = dept_user(c.resp["id"])
    r = d.client.post(API + "/rectifications/%d/request-extension" % c.id,
                      json={"deadline_in_working_days": 15, "reason": "材料多"})
    expect_status(r, 200)
    asked = db("SELECT deadline::text FROM extension_requests WHERE rectification_id = %d" % c.id)
    eq(asked, add_working(today(), 15).isoformat(), "the request stores the resolved date")
    r = ctx.admin.post(API + "/rectifications/%d/extend" % c.id, json={"deadline_in_working_days": 20})
    expect_status(r, 200)
    eq(r.json["deadline"], add_working(today(), 20).isoformat())
    expect_problem(ctx.admin.post(API + "/rectifications/%d/extend" % c.id,
                                  json={"deadline_in_working_days": 21, "deadline": "2030-01-02"}), 400,
                   pointers=["/deadline_in_working_days"])


def escalation_case(deadline, urges=0):
    c = Case()
    set_deadline_sql(c.id, deadline.isoformat())
    for _ in range(urges):
        expect_status(ctx.admin.post(API + "/rectifications/%d/urge" % c.id, json={}), 200)
    return c


def late_by(k):
    """The latest deadline before today that is k working days late today."""
    t = today()
    d = t - dt.timedelta(days=1)
    while between(d, t) < k:
        d -= dt.timedelta(days=1)
    return d


@test
def escalation_edges():
    keep_next_year()
    t = today()
    cases = []
    # blue: due within BLUE working days (today counts as 0 left)
    cases.append((t, "blue", 0, None))
    cases.append((add_working(t, BLUE), "blue", between(t, add_working(t, BLUE)), None))
    cases.append((add_working(t, BLUE + 1), "none", BLUE + 1, None))
    # yellow: overdue by up to RED_DAYS working days; red past that
    y = late_by(1)
    cases.append((y, "yellow", None, 1))
    cases.append((late_by(RED_DAYS), "yellow", None, RED_DAYS))
    late_more = late_by(RED_DAYS + 1)
    cases.append((late_more, "red", None, RED_DAYS + 1))
    made = [(escalation_case(d), want, left, late, d) for d, want, left, late in cases]
    for c, want, left, late, d in made:
        x = rect(c.id)
        eq((x["escalation"], x["working_days_left"], x["working_days_late"]), (want, left, late),
           "deadline %s (today %s)" % (d, t))
        eq(x["calendar_complete"], False, "this year has no calendar: counted Monday to Friday")
    # urged RED_URGES times while overdue: red however little late
    c = escalation_case(y, urges=RED_URGES)
    eq(rect(c.id)["escalation"], "red", "overdue and urged %d times" % RED_URGES)
    c1 = escalation_case(y, urges=RED_URGES - 1)
    eq(rect(c1.id)["escalation"], "yellow", "overdue and urged %d times" % (RED_URGES - 1))
    # not open: none, whatever the deadline
    s = escalation_case(late_more)
    d = dept_user(s.resp["id"])
    expect_status(d.client.post(API + "/rectifications/%d/start" % s.id, json={}), 200)
    eq(rect(s.id)["escalation"], "red", "in progress counts too")
    add_evidence(d.client, s.id)
    expect_status(d.client.post(API + "/rectifications/%d/submit" % s.id, json={}), 200)
    x = rect(s.id)
    eq((x["escalation"], x["working_days_late"], x["working_days_left"]), ("none", None, None), "submitted")
    # the ledger filters by it, and agrees with each row
    ids = {c.id for c, *_ in made}
    for level in ("blue", "yellow", "red", "none"):
        r = ctx.admin.get(API + "/rectifications?escalation=%s&limit=200&target_department_id=%d"
                          % (level, made[0][0].target["id"]))
        expect_status(r, 200)
        eq({x["escalation"] for x in r.json["data"]} <= {level}, True, "escalation=%s" % level)
    both = []
    for c, *_ in made:
        r = ctx.admin.get(API + "/rectifications?escalation=yellow,red&inspection_id=%d" % c.insp["id"])
        expect_status(r, 200)
        both += [x["id"] for x in r.json["data"]]
    eq(set(both), {c.id for c, want, *_ in made if want in ("yellow", "red")} & ids)
    expect_problem(ctx.admin.get(API + "/rectifications?escalation=orange"), 400)


@test
def the_etag_follows_the_calendar():
    c = Case()
    r = ctx.admin.get(API + "/rectifications/%d" % c.id)
    tag = r.etag
    expect_status(ctx.admin.get(API + "/rectifications/%d" % c.id, headers={"If-None-Match": tag}), 304)
    url = API + "/calendar/2032"
    expect_status(ctx.admin.req("PUT", url, json={"days": []}, if_match=ctx.admin.get(url).etag), 200)
    r2 = ctx.admin.get(API + "/rectifications/%d" % c.id, headers={"If-None-Match": tag})
    expect_status(r2, 200, "a calendar replaced: the representation may differ")
    check(r2.etag != tag, "a new ETag")
    # If-Match still compares the stored version
    r3 = ctx.admin.req("PATCH", API + "/rectifications/%d" % c.id, json={}, if_match=r2.etag,
                       ctype="application/merge-patch+json")
    check(r3.status in (200, 409), "If-Match with the long tag is accepted (got %d)" % r3.status)
    check(r3.status != 412, "If-Match with the long tag matches")
    # what it shows of its inspection: reopened, the inspection's status changes
    expect_status(ctx.admin.post(API + "/inspections/%d/reopen" % c.insp["id"], json={"reason": "更正"}), 200)
    r4 = ctx.admin.get(API + "/rectifications/%d" % c.id, headers={"If-None-Match": r2.etag})
    expect_status(r4, 200, "the inspection reopened")
    eq(r4.json["inspection"]["status"], "in_progress")
    # the units it names: renamed, the representation changes
    r5 = ctx.admin.req("PATCH", API + "/departments/%d" % c.resp["id"], json={"name": ctx.uniq("改名单位")},
                       if_match="*", ctype="application/merge-patch+json")
    expect_status(r5, 200)
    r6 = ctx.admin.get(API + "/rectifications/%d" % c.id, headers={"If-None-Match": r4.etag})
    expect_status(r6, 200, "the responsible unit renamed")
    eq(r6.json["responsible_department"]["name"], r5.json["name"])


@test
def the_job_records_each_turn_once():
    keep_next_year()
    yellow = escalation_case(late_by(1))
    red = escalation_case(late_by(RED_DAYS + 1))
    ids = "%d, %d" % (yellow.id, red.id)

    def events():
        return db("SELECT coalesce(string_agg(entity_id || ':' || action, ',' ORDER BY entity_id, action), '')"
                  " FROM audit_events WHERE entity_type = 'rectification' AND action IN ('overdue', 'escalated')"
                  " AND entity_id IN (%s)" % ids)

    def run_job(srv, rounds=1):
        """rounds runs, and more while a run says it left work for later (a backlog in slices)."""
        for k in range(200):
            before = int(db("SELECT runs FROM jobs WHERE name = 'escalation'"))
            deadline = time.time() + 10
            while int(db("SELECT runs FROM jobs WHERE name = 'escalation'")) == before and time.time() < deadline:
                db("UPDATE jobs SET next_run_at = now() WHERE name = 'escalation' AND next_run_at > now()")
                time.sleep(0.1)
            check(int(db("SELECT runs FROM jobs WHERE name = 'escalation'")) > before, "the job ran")
            if k + 1 >= rounds and db("SELECT last_result->>'more' FROM jobs WHERE name = 'escalation'") != "true":
                return
        check(False, "the escalation job kept saying there was more")

    srv = extra_server({"DUCHA_JOBS": "escalation", "DUCHA_JOB_POLL_MS": "100"})
    try:
        run_job(srv, rounds=2)
        eq(events(), "%d:overdue,%d:escalated,%d:overdue" % (yellow.id, red.id, red.id),
           "one event per turn, however often the job runs")
        actor = db("SELECT coalesce(string_agg(DISTINCT coalesce(actor_id::text, 'none') || ' ' || request_id, ','), '')"
                   " FROM audit_events WHERE action IN ('overdue', 'escalated') AND entity_id IN (%s)" % ids)
        eq(actor, "none job:escalation", "recorded by the system")
        # a deadline extended clears the record; overdue again, it is recorded again
        r = ctx.admin.post(API + "/rectifications/%d/extend" % yellow.id, json={"deadline_in_working_days": 5})
        expect_status(r, 200)
        run_job(srv)
        eq(db("SELECT count(*) FROM rectification_escalations WHERE rectification_id = %d" % yellow.id), "0")
        set_deadline_sql(yellow.id, late_by(1).isoformat())
        run_job(srv)
        eq(events().split(",").count("%d:overdue" % yellow.id), 2, "turned overdue a second time")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
