"""Shared helpers for the issue-4 tests (rectification lifecycle, progress, evidence, ledger).

Users of every role are created through the API (POST /users as admin) and log in through
POST /auth/token, so the tests act as real people would. Files are built in memory: a minimal
valid PDF (with a binary stream), a real baseline JPEG, executables (ELF, PE) to be refused.
"""

import base64
import hashlib
import os
import random
import threading
import urllib.parse

from harness import (API, DATABASE_URL, check, ctx, day, db, expect_status, items_of,
                     mk_dept, mk_inspection, mk_problem, mk_rect)

ACTIONS = ["start", "submit", "close", "reject", "request-extension", "extend", "refuse-extension", "reassign",
           "urge", "revoke"]

# what each state allows (no extension request pending), for each role; the submitter is
# never the caller in these tables
STATE_ACTIONS = {
    "pending": {"start", "request-extension", "extend", "reassign", "urge"},
    "in_progress": {"submit", "request-extension", "extend", "reassign", "urge"},
    "submitted": {"close", "reject", "extend", "reassign"},
    "closed": {"revoke"},
}
ROLE_ACTIONS = {
    "admin": set(ACTIONS),
    "inspector": {"start", "submit", "close", "reject", "extend", "refuse-extension", "reassign", "urge"},
    "department": {"start", "submit", "request-extension"},
    "viewer": set(),
}

RECT_KEYS = sorted(["id", "problem_id", "item_id", "inspection_id", "ordinal", "measure", "public", "public_text",
                    "responsible_department_id", "responsible_department", "deadline", "status", "overdue",
                    "working_days_left", "working_days_late", "calendar_complete", "escalation", "closed_on_time", "submitted_at",
                    "submitted_by", "closed_at", "closed_by", "close_opinion", "urge_count", "last_urged_at",
                    "evidence_count", "problem", "item", "inspection", "target_department", "allowed_transitions",
                    "created_at", "updated_at"])
EVIDENCE_KEYS = sorted(["id", "rectification_id", "progress_id", "item_id", "filename", "content_type", "size",
                        "sha256", "uploaded_by", "uploaded_at"])


def expected_allowed(state, role):
    return sorted(STATE_ACTIONS[state] & ROLE_ACTIONS[role])


# --------------------------------------------------------------------------------------------
# database

OWNER_URL = os.environ.get("DUCHA_MIGRATION_DATABASE_URL") or DATABASE_URL


def owner_db(sql):
    """Run SQL as the schema owner (for setting up situations the API refuses, e.g. a past deadline)."""
    return db(sql, url=OWNER_URL)


def set_deadline_sql(rect_id, deadline):
    owner_db("update rectifications set deadline = date '%s' where id = %d" % (deadline, rect_id))


_file_tables = None


def _evidence_columns():
    """[(table, column)] of text columns that may hold an uploaded file's name."""
    global _file_tables
    if _file_tables is None:
        out = owner_db(
            "select table_name || '.' || column_name from information_schema.columns "
            "where table_schema = 'public' and data_type in ('text', 'character varying') "
            "and (table_name like '%evidence%' or table_name like '%file%' or table_name like '%attachment%' "
            "or table_name like '%upload%') and column_name like '%name%' order by 1")
        _file_tables = [tuple(x.split(".", 1)) for x in out.split("\n") if x]
        check(_file_tables, "no table for evidence found in the database (looked for *evidence*/*file*/*upload*)")
    return _file_tables


def stored_files_named(filename):
    """How many rows in the evidence tables carry this (unique) file name."""
    total = 0
    for t, col in _evidence_columns():
        total += int(owner_db("select count(*) from %s where %s = '%s'" % (t, col, filename.replace("'", "''"))) or 0)
    return total


# --------------------------------------------------------------------------------------------
# users

class Actor:
    """A user of one role with its own logged-in client."""

    def __init__(self, user, client, password):
        self.user = user
        self.id = user["id"]
        self.username = user["username"]
        self.role = user["role"]
        self.client = client
        self.password = password

    @property
    def ref(self):
        return {"id": self.id, "name": self.username}

    def __repr__(self):
        return "<%s %s>" % (self.role, self.username)


_lock = threading.Lock()
_actor_cache = {}


def new_actor(role, department_id=None):
    """Create a user through the API as admin, log it in, return an Actor."""
    username = "u_%s_%s_%d" % (ctx.file_tag[:10], ctx.prefix, random.randrange(10 ** 9))
    password = "Pw-%s-%d" % (ctx.prefix, random.randrange(10 ** 9))
    body = {"username": username, "display_name": "测试用户" + role, "role": role, "password": password}
    if department_id is not None:
        body["department_id"] = department_id
    r = ctx.admin.post(API + "/users", json=body)
    expect_status(r, 201, "create %s user" % role)
    r2 = ctx.admin.post(API + "/auth/token", json={"username": username, "password": password}, token=None)
    expect_status(r2, 201, "log in as the new %s user" % role)
    return Actor(r.json, ctx.server.client(r2.json["token"]), password)


def actor(role, department_id=None, key=None):
    """A cached Actor per (role, department, key) for this file."""
    k = (role, department_id, key)
    with _lock:
        a = _actor_cache.get(k)
    if a is None:
        a = new_actor(role, department_id)
        with _lock:
            _actor_cache[k] = a
    return a


def admin():
    return ctx.admin


def inspector(n=1):
    return actor("inspector", key=n)


def viewer():
    return actor("viewer")


def dept_user(dept_id, n=1):
    return actor("department", dept_id, key=n)


# --------------------------------------------------------------------------------------------
# files

def make_pdf(text="ducha test"):
    """A small valid PDF 1.4 (one page, one text line) with a binary comment and a binary stream,
    cross-reference offsets computed exactly."""
    binary = bytes(range(256))
    content = ("BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text).encode("latin-1", "replace")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(binary) + binary + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


# a 16x16 baseline JFIF JPEG (543 bytes, from CPython's imghdr test data)
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQ"
    "Ew8QEBD/2wBDAQMDAwQDBAgEBAgQCwkLEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBD/wAARCAAQABAD"
    "ASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAABwQF/8QAJBAAAQQBBAICAwAAAAAAAAAAAQIDBAYFBwgSExEiABQJMTL/xAAVAQEBAAAAAAAA"
    "AAAAAAAAAAAABv/EACMRAAECBQMFAAAAAAAAAAAAAAECEQMEBQYhABIxFRZhgeH/2gAMAwEAAhEDEQA/ABSm0mobc8HmExLUlRzzEWPkJWW+ulrs"
    "aUVAseUgslSlH9LKuPryIKuWPZdskzXmm3fX5m2nF4GlVxx/HOpx4ks51+MiU/Iaad7UcUo4tILoS4kqcWkezS0hO/HvuRp0rO6hWnWO1UisZVuF"
    "i4GFeyEpmGepa5S5SWVPuciFKRFLgSrwetnyPIB+Vb4N9mKhQMzo5po9XLdDs9d6ZVix2VEhiL9kuNPxw2gEKcDQ/rs8AuA8VAe0vdl7VOYn+27f"
    "lHAUgmITjbhSmCg3BYlyeWDkMolvw4KOp1KM6iCNvngZHwetf//Z")

# executables: a 64-bit ELF header and a DOS/PE stub
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + bytes(range(40)) * 4
PE = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"\x40\x00\x00\x00"
      + b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21This program cannot be run in DOS mode.\r\r\n$"
      + b"\x00" * 7 + b"PE\x00\x00\x4c\x01\x03\x00" + b"\x00" * 64)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def multipart(filename, data, ctype, field="file"):
    """(body, content type) of a multipart/form-data body with one file part; the filename is
    written as browsers do (UTF-8, quotes escaped as %22)."""
    boundary = "----duchaBoundary%016x" % random.getrandbits(64)
    fn = filename.replace('"', "%22")
    head = ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\nContent-Type: %s\r\n\r\n'
            % (boundary, field, fn, ctype)).encode("utf-8")
    return head + data + ("\r\n--%s--\r\n" % boundary).encode("ascii"), "multipart/form-data; boundary=" + boundary


def content_disposition(filename):
    """attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded (RFC 6266)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (fallback, urllib.parse.quote(filename, safe=""))


def upload(client, path, data, filename, ctype, mode="raw", **kw):
    """POST evidence to `path` (e.g. /rectifications/1/evidence) as a raw body or multipart."""
    if mode == "multipart":
        body, ct = multipart(filename, data, ctype)
        return client.post(API + path, body=body, ctype=ct, **kw)
    headers = dict(kw.pop("headers", {}) or {})
    headers["Content-Disposition"] = content_disposition(filename)
    return client.post(API + path, body=data, ctype=ctype, headers=headers, **kw)


def add_evidence(client, rect_id, data=None, filename=None, ctype="application/pdf", progress_id=None, mode="raw"):
    data = make_pdf() if data is None else data
    filename = filename or ctx.uniq("佐证") + ".pdf"
    path = "/rectifications/%d/evidence" % rect_id
    if progress_id is not None:
        path += "?progress_id=%d" % progress_id
    r = upload(client, path, data, filename, ctype, mode=mode)
    expect_status(r, 201, "upload evidence")
    return r.json


def filename_star(header):
    """Decode filename*=UTF-8''... from a Content-Disposition header (None when absent)."""
    for part in (header or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k.strip().lower() == "filename*":
            v = v.strip()
            check(v.lower().startswith("utf-8''"), "filename* is not UTF-8'': %r" % v)
            return urllib.parse.unquote(v[7:], encoding="utf-8", errors="strict")
    return None


# --------------------------------------------------------------------------------------------
# records

def rpath(rid, rest=""):
    return API + "/rectifications/%d%s" % (rid, ("/" + rest) if rest else "")


def default_body(action, other_dept_id=None):
    """A valid body for each action."""
    return {
        "start": {}, "submit": {}, "urge": {},
        "close": {"opinion": "材料齐全，同意销号"},
        "reject": {"reason": "佐证材料不足，退回补充"},
        "request-extension": {"deadline": day(60), "reason": "需要更多时间协调"},
        "extend": {"deadline": day(45), "reason": "延期"},
        "refuse-extension": {"reason": "理由不充分"},
        "reassign": {"responsible_department_id": other_dept_id, "reason": "职责调整，转办"},
        "revoke": {"reason": "核查发现材料不实，撤销销号"},
    }[action]


def act(client, rid, action, body=None, **kw):
    return client.post(rpath(rid, action), json={} if body is None else body, **kw)


def act_ok(client, rid, action, body=None, **kw):
    r = act(client, rid, action, body, **kw)
    expect_status(r, 200, "%s rectification %d" % (action, rid))
    return r.json


def get_rect(client, rid):
    r = client.get(rpath(rid))
    expect_status(r, 200, "GET rectification %d" % rid)
    return r.json


def status_of(rid):
    return get_rect(ctx.admin, rid)["status"]


def audit(entity_type, entity_id, action=None, client=None):
    q = "entity_type=%s&entity_id=%d" % (entity_type, entity_id)
    if action:
        q += "&action=" + action
    return (client or ctx.admin).list_all(API + "/audit-events?" + q)


class Case:
    """One inspection (started, with problems and rectifications, then submitted) on fresh units:
    target, responsible (with a parent unit), and an unrelated unit."""

    def __init__(self, n=1, deadline=None, submit=True, responsible=None, target=None, measures=None,
                 descriptions=None, item_index=0, batch_id=None):
        self.parent = None
        if responsible is None:
            self.parent = mk_dept(name=ctx.uniq("上级单位"))
            responsible = mk_dept(name=ctx.uniq("责任单位"), parent_id=self.parent["id"])
        self.resp = responsible
        self.target = target or mk_dept(name=ctx.uniq("督察对象"))
        extra = {"batch_id": batch_id} if batch_id else {}
        self.insp = mk_inspection(self.target["id"], **extra)
        expect_status(ctx.admin.post(API + "/inspections/%d/start" % self.insp["id"], json={}), 200)
        self.items = items_of(self.insp["id"])
        self.item = self.items[item_index]
        self.problem = mk_problem(self.item["id"], (descriptions or [None])[0])
        self.rects = []
        for i in range(n):
            m = measures[i] if measures else None
            self.rects.append(mk_rect(self.problem["id"], responsible["id"], m,
                                      deadline=deadline if deadline is not None else day(30)))
        if submit:
            r = ctx.admin.post(API + "/inspections/%d/submit" % self.insp["id"], json={})
            expect_status(r, 200, "submit the inspection")
        self.rect = self.rects[0]
        self.id = self.rect["id"]

    def dept(self, n=1):
        """A department user of the responsible unit."""
        return dept_user(self.resp["id"], n)

    def parent_user(self):
        check(self.parent is not None, "case has no parent unit")
        return dept_user(self.parent["id"])

    def insp_status(self):
        r = ctx.admin.get(API + "/inspections/%d" % self.insp["id"])
        expect_status(r, 200)
        return r.json["status"]


def drive(rid, state, dept_client, submitter=None, closer=None):
    """Take a pending rectification to `state` through the API (evidence added by dept_client)."""
    if state == "pending":
        return get_rect(ctx.admin, rid)
    act_ok(dept_client, rid, "start")
    if state == "in_progress":
        return get_rect(ctx.admin, rid)
    if get_rect(ctx.admin, rid)["evidence_count"] == 0:
        add_evidence(dept_client, rid)
    act_ok(submitter or dept_client, rid, "submit")
    if state == "submitted":
        return get_rect(ctx.admin, rid)
    act_ok(closer or inspector(1).client, rid, "close", {"opinion": "同意销号"})
    check(state == "closed", "unknown state %r" % state)
    return get_rect(ctx.admin, rid)
