#!/usr/bin/python3
"""Signed checkpoints of the audit chains (issue 7 §5): an admin makes one on demand; each is
numbered, names the signature before it, is signed with a key the database never holds and is
written to the log; /audit-events/verify checks a range against the checkpoints that bear on it.
What the hash chains alone miss and the checkpoints find: the database owner rewriting a chain
and re-hashing it to its head, cutting a chain short and stepping its head back, altering or
removing a checkpoint.

Other test files write events at the same time and test_audit.py tampers too, so: this file finds
its events by their request ids; its verifications cover its own time range; an "ok" it expects
is asked again for a moment when something else is wrong in that range; every tampering is
undone at once (as test_audit.py does), and while it lasts this file holds the lock that makes
checkpoints (so that none signs the tampered state, which would stay wrong after the undo)."""

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API, OWNER_DATABASE_URL, PsqlSession, Server, check, ctx, db_try, eq,  # noqa: E402
                     expect_problem, expect_status, main, make_user, mk_dept, qs, skip, sql_str, test)

CHECKPOINT_LOCK = 8324502   # src/checkpoint.c
HEX64 = re.compile(r"^[0-9a-f]{64}$")
VERIFY_KEYS = sorted(["from", "to", "events_checked", "anchored", "checkpoints_checked", "anchored_until",
                      "unanchored_events", "ok", "problems"])
CHECKPOINT_KEYS = sorted(["seq", "created_at", "heads", "prev_signature", "key_id", "signature"])

KEY_DIR = tempfile.mkdtemp(prefix="ducha-audit-key-")


def key_file(name, data, mode=0o600):
    path = os.path.join(KEY_DIR, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


# Every test file that makes checkpoints in the shared database signs with this one key (not a
# secret; test_matrix.py has it too): a checkpoint signed with another is reported as altered.
TEST_KEY = b"ducha test audit key; not a secret: 0123456789abcdef"
KEY = key_file("audit.key", TEST_KEY)
T0 = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
psql = PsqlSession()
_owner = [None]
_n = [0]


def now_utc(offset_s=0):
    t = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s):
    return _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def rid(label):
    _n[0] += 1
    return "ckp-%s-%s-%d" % (ctx.prefix, label, _n[0])


def owner():
    if not OWNER_DATABASE_URL:
        skip("DUCHA_MIGRATION_DATABASE_URL is not set")
    if _owner[0] is None:
        _owner[0] = PsqlSession(OWNER_DATABASE_URL)
    return _owner[0]


def owner_close():
    if _owner[0] is not None:
        _owner[0].close()
        _owner[0] = None


@contextlib.contextmanager
def tampering():
    """Holds the checkpoint lock while the database is tampered with and until it is undone.
    On a failure the owner's session ends, which rolls back and releases the lock."""
    owner().q("SELECT pg_advisory_lock(%d)" % CHECKPOINT_LOCK)
    try:
        yield owner()
    except BaseException:
        owner_close()
        raise
    owner().q("SELECT pg_advisory_unlock(%d)" % CHECKPOINT_LOCK)


def event_of(request_id):
    """(id, chain, chain_seq) of the one event a request wrote."""
    row = psql.q("SELECT id || ' ' || chain || ' ' || chain_seq FROM audit_events"
                 " WHERE occurred_at >= '%s' AND request_id = %s" % (T0, sql_str(request_id)))
    check(row and "\n" not in row, "events of request %s: %r" % (request_id, row))
    return tuple(int(x) for x in row.split())


def own_event():
    r = rid("dept")
    expect_status(ctx.admin.post(API + "/departments", json={"name": ctx.uniq("锚定")}, headers={"X-Request-Id": r}),
                  201)
    return event_of(r)


def checkpoint(client=None):
    r = rid("cp")
    resp = (client or ctx.admin).post(API + "/audit-events/checkpoints", headers={"X-Request-Id": r})
    expect_status(resp, 201, "make a checkpoint")
    cp = resp.json
    eq(resp.h("Location"), API + "/audit-events/checkpoints/%d" % cp["seq"], "Location")
    cp["request_id"] = r
    return cp


def verify(frm=None, to=None, client=None):
    r = (client or ctx.admin).get(API + "/audit-events/verify?" + qs(**{"from": frm or T0, "to": to or now_utc(60)}))
    expect_status(r, 200, "verify")
    eq(sorted(r.json), VERIFY_KEYS, "verify keys")
    return r.json


def verify_ok(frm=None, to=None, tries=12):
    """Verification of a range that should be clean; asked again while something else (another
    file's tampering, undone within a moment) makes it not."""
    for _ in range(tries):
        v = verify(frm, to)
        if v["ok"]:
            return v
        time.sleep(0.25)
    raise AssertionError("verification of this file's range stays not ok: %s" % json.dumps(v["problems"])[:800])


def naming(v, **want):
    """The problems that have every field of want."""
    return [p for p in v["problems"] if all(p.get(k) == x for k, x in want.items())]


def chain_problems(v, chain):
    """Problems the hash chains themselves found (not a checkpoint) in chain."""
    return [p for p in v["problems"] if p.get("chain") == chain and "checkpoint" not in p]


# ------------------------------------------------------------------------------ making them

@test
def a_checkpoint_signs_every_head_and_verification_uses_it():
    for _ in range(3):
        own_event()
    cp = checkpoint()
    eq(sorted(k for k in cp if k != "request_id"), CHECKPOINT_KEYS, "checkpoint keys")
    eq([h["chain"] for h in cp["heads"]], list(range(16)), "one head per chain, in order")
    for h in cp["heads"]:
        check(h["seq"] >= 0 and (HEX64.match(h["hash"]) if h["seq"] else h["hash"] == ""), "head %s" % h)
    check(HEX64.match(cp["signature"]) and re.match(r"^[0-9a-f]{16}$", cp["key_id"]), "signature, key id: %s" % cp)
    # numbered after the one before it, whose signature it names
    if cp["seq"] == 1:
        eq(cp["prev_signature"], None, "the first checkpoint names no signature")
    else:
        before = ctx.admin.get(API + "/audit-events/checkpoints/%d" % (cp["seq"] - 1))
        expect_status(before, 200)
        eq(cp["prev_signature"], before.json["signature"], "prev_signature")
    got = ctx.admin.get(API + "/audit-events/checkpoints/%d" % cp["seq"])
    expect_status(got, 200)
    eq({k: got.json[k] for k in CHECKPOINT_KEYS}, {k: cp[k] for k in CHECKPOINT_KEYS}, "GET of the checkpoint")
    listed = ctx.admin.get(API + "/audit-events/checkpoints?limit=200").json["data"]
    check(any(x["seq"] == cp["seq"] for x in listed), "the checkpoint is listed")
    check([x["seq"] for x in listed] == sorted((x["seq"] for x in listed), reverse=True), "newest first")
    # its own audit event, covered by the checkpoint itself
    eid, chain, seq = event_of(cp["request_id"])
    e = [x for x in ctx.admin.get(API + "/audit-events?" + qs(entity_type="audit_checkpoint", entity_id=cp["seq"]))
         .json["data"] if x["id"] == eid]
    eq([(x["action"], x["after"]) for x in e], [("checkpoint", {"seq": cp["seq"]})], "its audit event")
    check(seq <= cp["heads"][chain]["seq"], "the checkpoint does not cover its own event")
    # a copy in the log, outside the database
    out = ctx.server.output()
    check(re.search(r"audit checkpoint %d at \S+ signature %s" % (cp["seq"], cp["signature"]), out),
          "the checkpoint is not in the log")
    # verification checks it
    v = verify_ok()
    eq(v["anchored"], True, "anchored")
    check(v["checkpoints_checked"] >= 1, "checkpoints_checked %s" % v["checkpoints_checked"])
    check(v["anchored_until"] and parse_time(v["anchored_until"]) >= parse_time(cp["created_at"]),
          "anchored_until %s, the checkpoint was made at %s" % (v["anchored_until"], cp["created_at"]))
    check(0 <= v["unanchored_events"] <= v["events_checked"], "unanchored_events %s" % v)
    # an event after the newest checkpoint is not anchored
    own_event()
    v = verify_ok()
    newest = ctx.admin.get(API + "/audit-events/checkpoints?limit=1").json["data"][0]
    if newest["seq"] == cp["seq"]:
        check(v["unanchored_events"] >= 1, "the event made after the newest checkpoint counts as anchored: %s" % v)


@test
def only_an_admin_makes_them():
    d = mk_dept()
    clients = {}
    for role in ("inspector", "viewer", "department"):
        _, tok = make_user(role, department_id=d["id"] if role == "department" else None)
        clients[role] = ctx.server.client(tok)
    for role, c in clients.items():
        r = rid("refused")
        expect_problem(c.post(API + "/audit-events/checkpoints", headers={"X-Request-Id": r}), 403, "forbidden")
        eq(psql.q("SELECT count(*) FROM audit_events WHERE occurred_at >= '%s' AND request_id = %s" % (T0, sql_str(r))),
           "0", "%s: an event was written" % role)
    for role in ("inspector", "viewer"):
        expect_status(clients[role].get(API + "/audit-events/checkpoints"), 200, role)
    expect_problem(clients["department"].get(API + "/audit-events/checkpoints"), 403, "forbidden")
    expect_problem(clients["department"].get(API + "/audit-events/checkpoints/1"), 403, "forbidden")
    expect_problem(ctx.admin.post(API + "/audit-events/checkpoints", json={"note": "x"}), 400, "validation-failed")
    expect_problem(ctx.admin.get(API + "/audit-events/checkpoints/987654321"), 404, "not-found")


@test
def without_a_usable_key_there_are_none_and_verification_says_so():
    def server(path):
        return Server({"DUCHA_AUDIT_KEY_FILE": path}).start()
    for path, why in (("", "no audit key is configured (DUCHA_AUDIT_KEY_FILE)"),
                      (key_file("open.key", os.urandom(48), 0o644), "cannot be used"),
                      (key_file("short.key", os.urandom(16)), "cannot be used"),
                      (os.path.join(KEY_DIR, "absent.key"), "cannot be used")):
        srv = server(path)
        try:
            c = srv.client(ctx.admin.token)
            b = expect_problem(c.post(API + "/audit-events/checkpoints"), 409, "conflict")
            check(why in b.get("detail", ""), "%r: detail %r" % (path, b.get("detail")))
            v = verify(client=c)
            eq((v["anchored"], v["checkpoints_checked"], v["anchored_until"], v["unanchored_events"]),
               (False, 0, None, v["events_checked"]), "verification without the key")
        finally:
            srv.stop()
            out = srv.output()
        if path:
            check(re.search(r"audit key file .* (may be read|fewer than 32|cannot read)", out) or
                  "cannot read the audit key file" in out, "the log does not say why %s is refused" % path)
    # another key: every checkpoint of this file is named
    cp = checkpoint()
    srv = server(key_file("other.key", os.urandom(48)))
    try:
        v = verify(client=srv.client(ctx.admin.token))
    finally:
        srv.stop()
    eq(v["anchored"], True)
    check(naming(v, checkpoint=cp["seq"], event_id=None), "a checkpoint signed with another key passes: %s" % v)
    check("another key" in naming(v, checkpoint=cp["seq"])[0]["problem"], naming(v, checkpoint=cp["seq"]))


# ------------------------------------------------------------------------------ what they find

REHASH = """DO $$ DECLARE e audit_events; prev bytea; BEGIN
  SELECT prev_hash INTO prev FROM audit_events WHERE chain = %(chain)d AND chain_seq = %(seq)d;
  FOR e IN SELECT * FROM audit_events WHERE chain = %(chain)d AND chain_seq >= %(seq)d ORDER BY chain_seq LOOP
    e.prev_hash := prev; e.hash := audit_digest(e); prev := e.hash;
    UPDATE audit_events SET prev_hash = e.prev_hash, hash = e.hash WHERE id = e.id;
  END LOOP;
  UPDATE audit_chain_heads SET hash = prev WHERE chain = %(chain)d;
END $$"""


def rewrite(o, event_id, chain, seq, after):
    """As the owner: sets an event's after and re-hashes its chain from it to the head, so that
    the chain holds together again (the head locked first, as audit_append does)."""
    o.q("BEGIN; SELECT count(*) FROM (SELECT 1 FROM audit_chain_heads WHERE chain = %d FOR UPDATE) h;"
        " ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;"
        " UPDATE audit_events SET after = %s::jsonb WHERE id = %d; %s;"
        " ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; COMMIT" % (
            chain, sql_str(after), event_id, REHASH % {"chain": chain, "seq": seq}))


@test
def a_chain_rewritten_and_rehashed_by_the_owner_is_named():
    owner()
    mine = []
    found = None
    for _ in range(100):
        mine.append(own_event())
        ids = ",".join(str(e[0]) for e in mine)
        row = psql.q("SELECT e.id || ' ' || e.chain || ' ' || e.chain_seq FROM audit_events e WHERE e.id IN (%s)"
                     " AND EXISTS (SELECT 1 FROM audit_events n WHERE n.chain = e.chain AND n.chain_seq = e.chain_seq + 1)"
                     " ORDER BY e.id LIMIT 1" % ids)
        if row:
            found = tuple(int(x) for x in row.split())
            break
    check(found, "none of %d events of this file got a successor in its chain" % len(mine))
    eid, chain, seq = found
    cp = checkpoint()
    check(cp["heads"][chain]["seq"] > seq, "the checkpoint does not cover the event and its successor")
    verify_ok()
    orig = psql.q("SELECT after::text FROM audit_events WHERE id = %d" % eid)
    forged = dict(json.loads(orig), name="改写后的名称")
    with tampering() as o:
        rewrite(o, eid, chain, seq, json.dumps(forged, ensure_ascii=False))
        try:
            v = verify()
        finally:
            rewrite(o, eid, chain, seq, orig)
    eq(v["ok"], False, "verification after the rewrite")
    eq(chain_problems(v, chain), [], "the hash chains themselves should not see a consistent rewrite")
    eq([p for p in naming(v, event_id=eid)], [], "problems at the rewritten event")
    signed = cp["heads"][chain]
    hits = naming(v, checkpoint=cp["seq"], chain=chain, chain_seq=signed["seq"])
    check(hits, "the rewrite of chain %d is not named by checkpoint %d: %s" % (chain, cp["seq"], v["problems"]))
    eq(hits[0]["problem"], "the chain differs from signed checkpoint %d" % cp["seq"])
    check(isinstance(hits[0]["event_id"], int), "the event the checkpoint signed is named: %s" % hits[0])
    verify_ok()


RESTORE_TAIL = """DO $$ DECLARE e audit_events; saved audit_events; prev bytea; BEGIN
  PERFORM 1 FROM audit_chain_heads WHERE chain = %(chain)d FOR UPDATE;
  ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
  -- events appended meanwhile move up one place; their content stays as it is
  FOR e IN SELECT * FROM audit_events WHERE chain = %(chain)d AND chain_seq >= %(seq)d ORDER BY chain_seq DESC LOOP
    UPDATE audit_events SET chain_seq = chain_seq + 1 WHERE id = e.id;
  END LOOP;
  saved := json_populate_record(NULL::audit_events, %(saved)s::json);
  INSERT INTO audit_events OVERRIDING SYSTEM VALUE SELECT saved.*;
  prev := saved.hash;
  FOR e IN SELECT * FROM audit_events WHERE chain = %(chain)d AND chain_seq > %(seq)d ORDER BY chain_seq LOOP
    e.prev_hash := prev; e.hash := audit_digest(e); prev := e.hash;
    UPDATE audit_events SET prev_hash = e.prev_hash, hash = e.hash WHERE id = e.id;
  END LOOP;
  UPDATE audit_chain_heads SET seq = (SELECT max(chain_seq) FROM audit_events WHERE chain = %(chain)d), hash = prev
   WHERE chain = %(chain)d;
  ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
END $$"""


@test
def a_chain_cut_short_with_its_head_stepped_back_is_named():
    """The last event of a chain is the checkpoint's own event when nothing came after it: it is
    removed and the head stepped back to the event before it, as an owner hiding it would."""
    owner()
    cut = None
    for _ in range(40):
        cp = checkpoint()
        eid, chain, seq = event_of(cp["request_id"])
        with tampering() as o:
            o.q("BEGIN")
            if o.q("SELECT seq FROM audit_chain_heads WHERE chain = %d FOR UPDATE" % chain) != str(seq):
                o.q("ROLLBACK")
                continue
            saved = o.q("SELECT row_to_json(e) FROM audit_events e WHERE id = %d" % eid)
            o.q("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;"
                " UPDATE audit_chain_heads h SET seq = e.chain_seq - 1, hash = e.prev_hash FROM audit_events e"
                "  WHERE h.chain = %d AND e.id = %d;"
                " DELETE FROM audit_events WHERE id = %d;"
                " ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; COMMIT" % (chain, eid, eid))
            try:
                cut = (cp, chain, seq, verify())
            finally:
                o.q(RESTORE_TAIL % {"chain": chain, "seq": seq, "saved": sql_str(saved)})
        break
    check(cut, "no checkpoint's own event stayed the last of its chain long enough to cut it")
    cp, chain, seq, v = cut
    eq(v["ok"], False, "verification after the cut")
    eq(chain_problems(v, chain), [], "the hash chains themselves should not see a cut with the head stepped back")
    hits = naming(v, checkpoint=cp["seq"], chain=chain, chain_seq=seq)
    check(hits, "the cut of chain %d is not named by checkpoint %d: %s" % (chain, cp["seq"], v["problems"]))
    check(hits[0]["problem"] in ("the event that checkpoint %d signed at this position is missing" % cp["seq"],
                                 "the chain differs from signed checkpoint %d" % cp["seq"]), hits[0]["problem"])
    verify_ok()


@test
def an_altered_or_removed_checkpoint_is_named():
    owner()
    cps = [checkpoint() for _ in range(3)]
    seq = cps[1]["seq"]
    verify_ok()
    # the service's role may add and read checkpoints, nothing else
    for sql in ("UPDATE audit_checkpoints SET created_at = created_at WHERE seq = %d" % seq,
                "DELETE FROM audit_checkpoints WHERE seq = %d" % seq,
                "TRUNCATE audit_checkpoints",
                "ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only"):
        rc, _, err = db_try(sql)
        check(rc != 0, "the service role could run: %s" % sql)
    eq(db_try("SELECT signature FROM audit_checkpoints WHERE seq = %d" % seq)[1], cps[1]["signature"], "unchanged")
    shift = ("BEGIN; ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only;"
             " UPDATE audit_checkpoints SET created_at = created_at %s interval '1 microsecond' WHERE seq = %d;"
             " ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only; COMMIT")
    with tampering() as o:
        o.q(shift % ("+", seq))
        try:
            v = verify()
        finally:
            o.q(shift % ("-", seq))
    eq(naming(v, checkpoint=seq, event_id=None, chain=None, chain_seq=None),
       [{"event_id": None, "chain": None, "chain_seq": None, "checkpoint": seq,
         "problem": "checkpoint %d's signature does not match" % seq}], "the altered checkpoint")
    verify_ok()
    with tampering() as o:
        saved = o.q("SELECT row_to_json(k) FROM audit_checkpoints k WHERE seq = %d" % seq)
        o.q("BEGIN; ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only;"
            " DELETE FROM audit_checkpoints WHERE seq = %d;"
            " ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only; COMMIT" % seq)
        try:
            v = verify()
        finally:
            o.q("INSERT INTO audit_checkpoints SELECT * FROM json_populate_record(NULL::audit_checkpoints, %s::json)"
                % sql_str(saved))
    eq(naming(v, checkpoint=seq), [{"event_id": None, "chain": None, "chain_seq": None, "checkpoint": seq,
                                    "problem": "checkpoint %d is missing" % seq}], "the removed checkpoint")
    verify_ok()


if __name__ == "__main__":
    try:
        main(server_env={"DUCHA_AUDIT_KEY_FILE": KEY})
    finally:
        psql.close()
        owner_close()
        shutil.rmtree(KEY_DIR, ignore_errors=True)
