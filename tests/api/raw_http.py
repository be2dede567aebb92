"""Raw-socket HTTP/1.1 for the tests that control the bytes on the wire and their timing (slow
clients, the shutdown drain, streamed downloads): open a connection, build a request, read a
response with a Content-Length body."""

import socket


def connect(port, source=None, timeout=5.0, rcvbuf=None):
    """A TCP connection to 127.0.0.1:port, from address `source` when given, with a receive
    buffer of `rcvbuf` bytes when given."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def request_bytes(method, path, token=None, body=None, extra=""):
    """A request with Host: x, the bearer token if any, a JSON body if any, then the `extra`
    header lines (each ending in CRLF)."""
    h = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, path)
    if token:
        h += "Authorization: Bearer %s\r\n" % token
    if body is not None:
        h += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    h += extra + "\r\n"
    return h.encode("ascii") + (body or b"")


def json_head(path, token, length):
    """The head of a POST of a JSON body of `length` bytes, for sending the body apart."""
    return request_bytes("POST", path, token, extra="Content-Type: application/json\r\nContent-Length: %d\r\n" % length)


def read_head(s):
    """Receives from s up to the end of a response head: (first line, headers lower-cased, the
    bytes after the head); None when s closes first."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, rest


def read_message(s):
    """read_head, then the rest of the Content-Length body: (first line, headers, body); None
    when s closes before the end of the head."""
    r = read_head(s)
    if r is None:
        return None
    first, headers, body = r
    n = int(headers.get("content-length", "0") or 0)
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return first, headers, body


def read_response(s):
    """One response from s: (status, headers lower-cased, body); None on close."""
    r = read_message(s)
    return None if r is None else (int(r[0].split()[1]), r[1], r[2])
