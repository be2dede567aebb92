#!/usr/bin/python3
"""README's walk-through works as a newcomer pastes it, and pasted a second time (issue 9 §4):
its bash blocks run against a server of their own; no jq error, no id left null, and the second
paste meets no failure the first did not, other than the users it already made (409)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DUCHA_SRC, check, db, eq, extra_server, main, run_cli, tail, test  # noqa: E402

SECTIONS = ("## Walk-through with curl", "## Who may do what", "## Rectification to closure",
            "## The form in and out of Excel", "## Public disclosure (公示)")
ADMIN_PASSWORD = "readme-admin-password-1"


def blocks():
    """The bash blocks of SECTIONS, in order, as one script."""
    with open(os.path.join(DUCHA_SRC, "README.md"), encoding="utf-8") as f:
        text = f.read()
    parts = re.split(r"^(?=## )", text, flags=re.M)
    script = []
    for head in SECTIONS:
        section = next((p for p in parts if p.startswith(head)), None)
        check(section is not None, "README has a section %r" % head)
        found = re.findall(r"^```bash\n(.*?)^```", section, flags=re.M | re.S)
        check(found, "%r has a bash block" % head)
        script += found
    return "\n".join(script)


def failures(log, since):
    """(METHOD, path with ids as {id}, status) of every 4xx and 5xx the server logged after since."""
    out = set()
    for line in log[since:].splitlines():
        m = re.search(r"\b(GET|POST|PATCH|DELETE) (/\S*) (\d{3}) [\d.]+ms request_id=", line)
        if m and int(m.group(3)) >= 400:
            out.add((m.group(1), re.sub(r"/\d+", "/{id}", m.group(2)), int(m.group(3))))
    return out


@test
def the_walk_through_runs_twice():
    srv = extra_server()
    home = tempfile.mkdtemp(prefix="ducha-readme-")
    try:
        if db("SELECT count(*) FROM users WHERE username = 'admin'") == "0":
            run_cli(["user", "create", "--username", "admin", "--role", "admin", "--password-stdin"],
                    stdin=ADMIN_PASSWORD, check_rc=True)
        token = run_cli(["token", "create", "--user", "admin"], check_rc=True).stdout
        token = re.search(r"dch_[A-Za-z0-9_-]{43}", token).group(0)
        os.makedirs(os.path.join(home, ".ducha"))
        for name, value in (("admin.token", token), ("admin.password", ADMIN_PASSWORD)):
            with open(os.path.join(home, ".ducha", name), "w") as f:
                f.write(value + "\n")
        script = blocks().replace("http://127.0.0.1:8080", "http://127.0.0.1:%d" % srv.port)
        runs = []
        for paste in (1, 2):
            since = len(srv.output())
            p = subprocess.run(["bash", "-c", script], cwd=home, capture_output=True, text=True, timeout=120)
            eq(p.returncode, 0, "paste %d: bash exit status" % paste)
            eq(p.stderr, "", "paste %d: nothing on stderr (jq errors show there)" % paste)
            check(not re.search(r"^null$", p.stdout, re.M), "paste %d: an id came out null:\n%s" % (paste, tail(p.stdout)))
            runs.append(failures(srv.output(), since))
        expected = {("GET", "/api/v1/inspections/{id}", 404),           # the department user: not its unit
                    ("POST", "/api/v1/rectifications/{id}/close", 403)}  # a department may not close
        check(runs[0] <= expected | {("POST", "/api/v1/users", 409)},
              "first paste: only the failures the README shows: %s" % sorted(runs[0] - expected))
        check(expected <= runs[0], "first paste: the README's two refusals happen: %s" % sorted(runs[0]))
        eq(sorted(runs[1] - {("POST", "/api/v1/users", 409)}), sorted(runs[0] - {("POST", "/api/v1/users", 409)}),
           "second paste: no failure the first did not meet (but the users it made)")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
