#!/usr/bin/python3
"""A TCP proxy in front of PostgreSQL that writes down what its clients send.

    bench/pgproxy.py LISTEN_PORT PG_PORT EVENTS_FILE

Forwards every byte both ways unchanged, and reads the client's side of the protocol (v3,
without TLS: connect with sslmode=disable). For each message that matters it appends one JSON
line to EVENTS_FILE, flushed at once:

    {"conn": N, "type": "parse",   "name": "s3", "sql": "..."}      Parse
    {"conn": N, "type": "bind",    "name": "s3", "params": [...]}    Bind (text values, null for NULL)
    {"conn": N, "type": "execute"}                                    Execute
    {"conn": N, "type": "sync"}                                       Sync: the end of a pipeline
    {"conn": N, "type": "query",   "sql": "..."}                      Query (the simple protocol)

Statements sent between two Syncs went to the server together, in one round trip. bench/run
points a one-thread ducha at this proxy to capture the statements of one request of each kind
(bench/statements.py turns them into pgbench scripts). Runs until killed.
"""
import json
import socket
import struct
import sys
import threading

lock = threading.Lock()
counter = [0]


def emit(out, event):
    with lock:
        out.write(json.dumps(event, ensure_ascii=False) + '\n')
        out.flush()


def cstr(buf, i):
    j = buf.index(b'\0', i)
    return buf[i:j].decode('utf-8', 'replace'), j + 1


def client_side(src, dst, out, conn):
    """Forwards src -> dst, parsing the frontend messages."""
    buf = b''
    startup = True
    while True:
        data = src.recv(65536)
        if not data:
            break
        dst.sendall(data)
        buf += data
        while True:
            if startup:
                if len(buf) < 8:
                    break
                n = struct.unpack('!I', buf[:4])[0]
                if len(buf) < n:
                    break
                code = struct.unpack('!I', buf[4:8])[0]
                buf = buf[n:]
                if code not in (80877103, 80877104):  # SSLRequest, GSSENCRequest: another follows
                    startup = False
                continue
            if len(buf) < 5:
                break
            kind = buf[:1]
            n = struct.unpack('!I', buf[1:5])[0]
            if len(buf) < 1 + n:
                break
            body, buf = buf[5:1 + n], buf[1 + n:]
            if kind == b'P':
                name, i = cstr(body, 0)
                sql, i = cstr(body, i)
                emit(out, {'conn': conn, 'type': 'parse', 'name': name, 'sql': sql})
            elif kind == b'B':
                _, i = cstr(body, 0)  # portal
                name, i = cstr(body, i)
                nfmt = struct.unpack('!H', body[i:i + 2])[0]
                fmts = struct.unpack('!%dH' % nfmt, body[i + 2:i + 2 + 2 * nfmt]) if nfmt else ()
                i += 2 + 2 * nfmt
                nparams = struct.unpack('!H', body[i:i + 2])[0]
                i += 2
                params = []
                for k in range(nparams):
                    ln = struct.unpack('!i', body[i:i + 4])[0]
                    i += 4
                    if ln < 0:
                        params.append(None)
                        continue
                    raw = body[i:i + ln]
                    i += ln
                    binary = (fmts[k] if nfmt > 1 else fmts[0] if nfmt == 1 else 0) == 1
                    params.append({'binary': raw.hex()} if binary else raw.decode('utf-8', 'replace'))
                emit(out, {'conn': conn, 'type': 'bind', 'name': name, 'params': params})
            elif kind == b'E':
                emit(out, {'conn': conn, 'type': 'execute'})
            elif kind == b'S':
                emit(out, {'conn': conn, 'type': 'sync'})
            elif kind == b'Q':
                sql, _ = cstr(body, 0)
                emit(out, {'conn': conn, 'type': 'query', 'sql': sql})
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def server_side(src, dst):
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            break
        if not data:
            break
        try:
            dst.sendall(data)
        except OSError:
            break
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(client, pg_port, out, conn):
    upstream = socket.create_connection(('127.0.0.1', pg_port))
    t = threading.Thread(target=server_side, args=(upstream, client), daemon=True)
    t.start()
    try:
        client_side(client, upstream, out, conn)
    except (OSError, ValueError, struct.error) as e:
        emit(out, {'conn': conn, 'type': 'error', 'error': str(e)})
    t.join()
    client.close()
    upstream.close()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    listen_port, pg_port = int(sys.argv[1]), int(sys.argv[2])
    out = open(sys.argv[3], 'a', encoding='utf-8')
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', listen_port))
    ls.listen(16)
    while True:
        client, _ = ls.accept()
        counter[0] += 1
        threading.Thread(target=serve, args=(client, pg_port, out, counter[0]), daemon=True).start()


if __name__ == '__main__':
    main()
