#!/usr/bin/python3
"""/docs (issue 12, Operations): a page that shows openapi.yaml to people with Swagger UI (npm
swagger-ui-dist, pinned in docs/package.json, installed by scripts/lib.sh), served by ducha from
DUCHA_DOCS_DIR, nothing from elsewhere. Headless Chromium (Debian's chromium) loads it and finds
every operation of openapi.yaml listed."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DUCHA_SRC, Server, check, ctx, eq, expect_problem, expect_status, main, skip,  # noqa: E402
                     spec, tail, test)

DOCS_DIR = os.path.join(DUCHA_SRC, "docs", "node_modules", "swagger-ui-dist")


def need_assets():
    if not os.path.exists(os.path.join(DOCS_DIR, "swagger-ui-bundle.js")):
        skip("Swagger UI is not installed in %s (scripts/run and scripts/test install it)" % DOCS_DIR)


@test
def the_pinned_version_is_installed():
    need_assets()
    with open(os.path.join(DUCHA_SRC, "docs", "package.json")) as f:
        pinned = json.load(f)["dependencies"]["swagger-ui-dist"]
    check(re.match(r"^\d+\.\d+\.\d+$", pinned), "docs/package.json pins an exact version, not %r" % pinned)
    with open(os.path.join(DOCS_DIR, "package.json")) as f:
        eq(json.load(f)["version"], pinned, "installed swagger-ui-dist")
    with open(os.path.join(DUCHA_SRC, "docs", "package-lock.json")) as f:
        lock = json.load(f)
    eq(lock["packages"]["node_modules/swagger-ui-dist"]["version"], pinned, "package-lock.json")
    check(lock["packages"]["node_modules/swagger-ui-dist"].get("integrity"), "the lock file has its hash")


@test
def the_page_and_its_files_are_served_from_here():
    need_assets()
    anon = ctx.server.client()
    r = anon.get("/docs")
    expect_status(r, 200)
    check(r.ctype == "text/html", "Content-Type %r" % r.ctype)
    csp = r.h("Content-Security-Policy") or ""
    check("default-src 'self'" in csp, "the page may load only from here: %r" % csp)
    page = r.body.decode("utf-8")
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    check(refs, "the page references no files")
    for ref in refs:
        check(ref.startswith("/docs/"), "the page loads %r, not one of its own files" % ref)
        expect_status(anon.get(ref), 200)
    start = anon.get("/docs/ducha-docs.js").body.decode("utf-8")
    check("'/openapi.yaml'" in start and "validatorUrl: null" in start, "the start-up script: %r" % start)
    check("http" not in start, "the start-up script names no address elsewhere")
    for name, ctype in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
        r = anon.get("/docs/" + name)
        expect_status(r, 200)
        eq(r.ctype, ctype, name + " Content-Type")
        with open(os.path.join(DOCS_DIR, name), "rb") as f:
            check(r.body == f.read(), "%s is the installed file" % name)
    expect_problem(anon.get("/docs/index.html"), 404)
    expect_problem(anon.get("/docs/..%2fpackage.json"), 404)


@test
def chromium_lists_every_operation():
    need_assets()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        skip("chromium not installed (Debian's chromium: scripts/packages/test.txt)")
    profile = tempfile.mkdtemp(prefix="ducha-docs-chromium-")
    try:
        p = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--no-first-run", "--user-data-dir=" + profile, "--virtual-time-budget=30000",
                            "--dump-dom", "http://127.0.0.1:%d/docs" % ctx.server.port],
                           capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    dom = p.stdout
    check(p.returncode == 0 and "swagger-ui" in dom, "chromium: rc %s, %s" % (p.returncode, tail(p.stderr, 5)))
    shown = set(re.findall(r'opblock-summary-method">([A-Z]+)<.*?data-path="([^"]+)"', dom))
    want = set(spec().operations())
    missing = sorted("%s %s" % x for x in want - shown)
    check(not missing, "%d of %d operations not on the page: %s" % (len(missing), len(want), ", ".join(missing[:10])))
    eq(len(shown - want), 0, "operations on the page that openapi.yaml lacks: %s" % sorted(shown - want)[:5])
    check("ducha API" in dom, "the document's title is shown")


@test
def without_swagger_ui_the_page_is_404():
    srv = Server({"DUCHA_DOCS_DIR": "/nonexistent/ducha-docs"}).start()
    try:
        r = srv.client().get("/docs")
        expect_problem(r, 404, "not-found")
        check("DUCHA_DOCS_DIR" in r.json["detail"], "the detail says where: %r" % r.json["detail"])
        check("DUCHA_DOCS_DIR" in srv.output(), "the log says so at start-up: %r" % tail(srv.output(), 5))
        expect_status(srv.client().get("/healthz"), 200)
    finally:
        eq(srv.stop(), 0, "exit status")


if __name__ == "__main__":
    main()
