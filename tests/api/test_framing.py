#!/usr/bin/python3
"""Request framing (issue 7 §2, request smuggling), on raw sockets. Every hostile request is a
POST that would create a department, and is followed on the same connection by a pipelined
POST that would create another; a smuggled request inside a body would create a third. The
tests read everything until the server closes (3 s at most) and then check that no department
was created and no request was answered 2xx.

Where the request reaches ducha (Content-Length with Transfer-Encoding, two Content-Length
headers, two Host headers, a bare CR or a NUL in a header value, and HTTP/1.1 without Host
unless libmicrohttpd answers that itself) the answer is one 400 problem+json of type
urn:ducha:problem:malformed-request with `Connection: close`, and then the connection closes.
Where libmicrohttpd answers by itself (no X-Request-Id on the answer: an invalid
Content-Length, and with MHD_OPTION_STRICT_FOR_CLIENT a missing Host) or the request carries
an unknown Transfer-Encoding or `Transfer-Encoding : chunked`, any refusal or close will do."""

import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import API, check, ctx, eq, main, spec, test  # noqa: E402

READ_LIMIT = 3.0
MALFORMED = "urn:ducha:problem:malformed-request"


# --------------------------------------------------------------------------------------------
# raw HTTP

def exchange(data, timeout=READ_LIMIT):
    """Sends data on a new connection and reads until the server closes or `timeout` passes.
    Returns (bytes received, closed by the server, seconds)."""
    s = socket.create_connection(("127.0.0.1", ctx.server.port), timeout=5)
    t0 = time.monotonic()
    out = b""
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before it has read everything
        while True:
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                break
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            out += d
    finally:
        s.close()
    return out, closed, time.monotonic() - t0


def parse_responses(raw):
    """The responses in raw, one after the other: [(status, [(name lower, value)], body)],
    and the bytes that do not parse as a response."""
    out = []
    rest = raw
    while rest:
        m = re.match(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n", rest)
        if not m or b"\r\n\r\n" not in rest:
            break
        head, _, after = rest.partition(b"\r\n\r\n")
        headers = []
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            headers.append((k.strip().lower(), v.strip()))
        lengths = [v for k, v in headers if k == "content-length"]
        chunked = any(k == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
        if lengths and lengths[0].isdigit():
            n = int(lengths[0])
            body, rest = after[:n], after[n:]
        elif chunked:
            body = b""
            while True:
                size_line, sep, after = after.partition(b"\r\n")
                if not sep:
                    break
                n = int(size_line.split(b";")[0] or b"0", 16)
                if n == 0:
                    after = after.partition(b"\r\n")[2]
                    break
                body += after[:n]
                after = after[n + 2:]
            rest = after
        else:
            body, rest = after, b""
        out.append((int(m.group(1)), headers, body))
    return out, rest


def header(headers, name):
    vals = [v for k, v in headers if k == name]
    return vals[0] if vals else None


def post_department(name, head_lines=None, host=True, body=None, version="HTTP/1.1"):
    """A POST /api/v1/departments creating `name`; head_lines replace the framing headers
    (Content-Length is computed when head_lines is None)."""
    body = json.dumps({"name": name}, ensure_ascii=False).encode("utf-8") if body is None else body
    lines = ["POST %s/departments %s" % (API, version)]
    if host:
        lines.append("Host: x")
    lines += ["Authorization: Bearer " + ctx.admin.token, "Content-Type: application/json"]
    if head_lines is None:
        lines.append("Content-Length: %d" % len(body))
    head = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    for h in head_lines or []:
        head += h if isinstance(h, bytes) else h.encode("latin-1")
        head += b"\r\n"
    return head + b"\r\n" + body


def json_of(name):
    return json.dumps({"name": name}, ensure_ascii=False).encode("utf-8")


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def chunked_json(name):
    """The chunked body of a department `name`: one chunk, then the last."""
    return chunk(json_of(name)) + b"0\r\n\r\n"


def created(names):
    """The names among `names` that exist as departments."""
    found = {d["name"] for d in ctx.admin.list_all(API + "/departments?q=" + ctx.prefix)}
    return [n for n in names if n in found]


# --------------------------------------------------------------------------------------------
# verdicts

def _describe(raw, closed, secs):
    return "received %d bytes in %.2f s (%s): %r" % (
        len(raw), secs, "closed by the server" if closed else "still open", raw[:600])


def _nothing_done(raw, closed, secs, names):
    time.sleep(0.3)  # a request dispatched when the connection closed would have committed by now
    check(not re.search(rb"HTTP/1\.[01] 2\d\d", raw), "a request was answered 2xx: " + _describe(raw, closed, secs))
    made = created(names)
    check(not made, "departments created (the request was dispatched): %s; %s" % (made, _describe(raw, closed, secs)))


def expect_malformed(data, names, mhd_may_answer=False):
    """One 400 malformed-request problem with Connection: close, then the close; nothing done.
    With mhd_may_answer, an answer of libmicrohttpd's own (no X-Request-Id) is accepted too."""
    raw, closed, secs = exchange(data)
    _nothing_done(raw, closed, secs, names)
    resps, rest = parse_responses(raw)
    check(resps, "no HTTP response: " + _describe(raw, closed, secs))
    status, headers, body = resps[0]
    if header(headers, "x-request-id") is None:
        check(mhd_may_answer, "the answer did not come from ducha (no X-Request-Id): " + _describe(raw, closed, secs))
        check(400 <= status < 500, "libmicrohttpd answered %d: %s" % (status, _describe(raw, closed, secs)))
        check(not any(header(h, "x-request-id") for _, h, _ in resps), "a later request reached ducha: " +
              _describe(raw, closed, secs))
        return "libmicrohttpd answered %d itself" % status
    eq(status, 400, "status of the answer to the hostile request (%s)" % _describe(raw, closed, secs))
    eq((header(headers, "content-type") or "").split(";")[0].strip().lower(), "application/problem+json",
       "Content-Type")
    try:
        problem = json.loads(body.decode("utf-8"))
    except ValueError:
        problem = None
    check(isinstance(problem, dict), "the 400 body is not a JSON object: %r" % body[:300])
    eq(problem.get("type"), MALFORMED, "problem type")
    eq(problem.get("status"), 400, "problem status")
    eq(problem.get("request_id"), header(headers, "x-request-id"), "request_id vs X-Request-Id")
    ctx.spec_errors.extend(spec().validate_problem(problem))
    check("close" in (header(headers, "connection") or "").lower(),
          "the 400 has no Connection: close (Connection: %r)" % header(headers, "connection"))
    check(len(resps) == 1 and not rest, "more than the one answer came on the connection: " +
          _describe(raw, closed, secs))
    check(closed, "the server did not close the connection within %.0f s after its 400" % READ_LIMIT)
    return "ducha answered 400 malformed-request"


def expect_not_served(data, names):
    """Any refusal or close; nothing dispatched, no second request served."""
    raw, closed, secs = exchange(data)
    _nothing_done(raw, closed, secs, names)
    resps, _ = parse_responses(raw)
    from_ducha = [r for r in resps if header(r[1], "x-request-id")]
    check(len(from_ducha) <= 1, "ducha answered %d requests on the connection: %s" % (
        len(from_ducha), _describe(raw, closed, secs)))
    for status, _, _ in resps:
        check(status >= 400, "answered %d: %s" % (status, _describe(raw, closed, secs)))
    return "%s; %s" % (", ".join(str(r[0]) + ("" if header(r[1], "x-request-id") else " (libmicrohttpd)")
                                 for r in resps) or "no answer",
                       "closed" if closed else "left open for %.0f s" % READ_LIMIT)


def pipelined():
    """(bytes of a pipelined POST creating a department, its name)."""
    name = ctx.uniq("管道后续")
    return post_department(name), name


def hostile(label, verdict, name, head_lines=None, body=None, host=True, also=()):
    """(label, check) for in_parallel: a POST creating `name` (head_lines, body and host as
    post_department takes them) with a pipelined POST behind it, judged by verdict(data, names);
    names are `name`, `also` (departments a smuggled request would create) and the pipelined one."""
    p, pname = pipelined()
    data = post_department(name, head_lines, host=host, body=body) + p
    names = [name] + list(also) + [pname]
    return label, lambda: verdict(data, names)


def in_parallel(cases):
    """Runs fn() for each (label, fn) in threads; fails with every failure's label."""
    results, errors = {}, {}

    def one(label, fn):
        try:
            results[label] = fn()
        except AssertionError as exc:
            errors[label] = str(exc)
        except Exception as exc:  # noqa: BLE001
            errors[label] = "%s: %s" % (exc.__class__.__name__, exc)
    threads = [threading.Thread(target=one, args=c) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    check(not errors, "\n".join("%s: %s" % kv for kv in sorted(errors.items())))
    for label in sorted(results):
        sys.stdout.write("# %s: %s\n" % (label, results[label]))
    return results


# --------------------------------------------------------------------------------------------
# reaching ducha: one 400 malformed-request, Connection: close

@test
def content_length_with_transfer_encoding():
    # CL.TE: by Content-Length the body holds everything; by chunks it ends at "0" and a second
    # request follows
    a, s = ctx.uniq("CLTE请求体"), ctx.uniq("CLTE夹带")
    body = chunked_json(a) + post_department(s)
    cl_te = hostile("CL.TE", expect_malformed, a, ["Content-Length: %d" % len(body), "Transfer-Encoding: chunked"],
                    body, also=[s])
    # TE.CL: by Content-Length the body is the chunk-size line and a request follows; by chunks
    # the request is the body
    s2 = ctx.uniq("TECL夹带")
    smuggled = post_department(s2)
    size_line = b"%x\r\n" % len(smuggled)
    body2 = size_line + smuggled + b"\r\n0\r\n\r\n"
    te_cl = hostile("TE.CL", expect_malformed, ctx.uniq("TECL请求体"),
                    ["Content-Length: %d" % len(size_line), "Transfer-Encoding: chunked"], body2, also=[s2])
    a3 = ctx.uniq("TE在前")
    body3 = chunked_json(a3)
    te_first = hostile("TE before CL", expect_malformed, a3,
                       ["Transfer-Encoding: chunked", "Content-Length: %d" % len(body3)], body3)
    in_parallel([cl_te, te_cl, te_first])


@test
def two_equal_content_lengths():
    a = ctx.uniq("两个相同长度")
    body = json_of(a)
    in_parallel([hostile("Content-Length twice, equal", expect_malformed, a, ["Content-Length: %d" % len(body)] * 2,
                         body)])


@test
def two_different_content_lengths():
    s = ctx.uniq("长度夹带")
    a, a2 = ctx.uniq("两个不同长度"), ctx.uniq("两个不同长度")
    body, body2 = json_of(a) + post_department(s), json_of(a2) + post_department(s)
    in_parallel([hostile("shorter first", expect_malformed, a,
                         ["Content-Length: %d" % len(json_of(a)), "Content-Length: %d" % len(body)], body, also=[s]),
                 hostile("longer first", expect_malformed, a2,
                         ["Content-Length: %d" % len(body2), "Content-Length: %d" % len(json_of(a2))], body2,
                         also=[s])])


@test
def http11_without_host():
    # libmicrohttpd with MHD_OPTION_STRICT_FOR_CLIENT answers this one itself (an HTML 400):
    # either answer will do, as long as nothing is done
    in_parallel([hostile("no Host", lambda data, names: expect_malformed(data, names, mhd_may_answer=True),
                         ctx.uniq("无Host"), host=False)])


@test
def two_host_headers():
    def case(hosts):
        a = ctx.uniq("两个Host")
        p, pname = pipelined()
        body = json_of(a)
        lines = ["POST %s/departments HTTP/1.1" % API] + ["Host: %s" % h for h in hosts] + [
            "Authorization: Bearer " + ctx.admin.token, "Content-Type: application/json",
            "Content-Length: %d" % len(body)]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body + p
        return lambda: expect_malformed(data, [a, pname])
    in_parallel([("Host twice, different", case(["x", "y"])), ("Host twice, equal", case(["x", "x"]))])


def with_note(label, name, line):
    """hostile(), expecting malformed-request: a department `name` with Content-Length and the
    X-Note header `line` (bytes)."""
    return hostile(label, expect_malformed, name, [b"Content-Length: %d" % len(json_of(name)), line], json_of(name))


@test
def bare_cr_in_a_header_value():
    # a parser that ends lines at a bare CR reads a Transfer-Encoding header in the first
    in_parallel([with_note("CR before a header", ctx.uniq("裸CR"), b"X-Note: a\rTransfer-Encoding: chunked"),
                 with_note("CR inside a value", ctx.uniq("裸CR"), b"X-Note: a\rb")])


@test
def nul_in_a_header_value():
    in_parallel([with_note(label, ctx.uniq("NUL"), b"X-Note: " + value)
                 for label, value in (("NUL inside a value", b"a\x00b"), ("NUL ending a value", b"ab\x00"),
                                      ("NUL as the whole value", b"\x00"))])


# --------------------------------------------------------------------------------------------
# libmicrohttpd's cases: any refusal or close, nothing dispatched, nothing pipelined served

def not_served(label, name, head_lines, body):
    return hostile(label, expect_not_served, name, head_lines, body)


@test
def invalid_content_length():
    cases = []
    for value in ("%dx", "-%d", "%d, %d", "0x%x", "+%d", "%d %d"):
        a = ctx.uniq("坏长度")
        n = len(json_of(a))
        v = value % ((n, n) if value.count("%") == 2 else n)
        cases.append(not_served("Content-Length: " + v, a, ["Content-Length: " + v], json_of(a)))
    in_parallel(cases)


@test
def unknown_transfer_encoding():
    cases = []
    for te in ("gzip", "gzip, chunked", "chunked, gzip", "xchunked", "identity"):
        a = ctx.uniq("未知编码")
        cases.append(not_served("Transfer-Encoding: " + te, a, ["Transfer-Encoding: " + te], chunked_json(a)))
    in_parallel(cases)


@test
def transfer_encoding_with_a_space_before_the_colon():
    a, a2 = ctx.uniq("冒号前空格"), ctx.uniq("冒号前空格")
    body2 = chunked_json(a2)
    in_parallel([not_served("Transfer-Encoding : chunked", a, ["Transfer-Encoding : chunked"], chunked_json(a)),
                 not_served("with Content-Length", a2,
                            ["Content-Length: %d" % len(body2), "Transfer-Encoding : chunked"], body2)])


@test
def an_ordinary_pipeline_is_served():
    """The control: the same pipelined pair without anything hostile creates both."""
    a = ctx.uniq("正常管道")
    p, pname = pipelined()
    raw, closed, secs = exchange(post_department(a) + p, timeout=2.0)
    resps, rest = parse_responses(raw)
    eq([r[0] for r in resps], [201, 201], "statuses of two pipelined creates (%r)" % raw[:300])
    eq(sorted(created([a, pname])), sorted([a, pname]), "departments created")


if __name__ == "__main__":
    main()
