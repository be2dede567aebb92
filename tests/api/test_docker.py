#!/usr/bin/python3
"""docker/ (issue 12, Operations): no Docker engine runs here, so what can be checked is checked
without one. Debian's docker-compose accepts docker/compose.yaml (PostgreSQL, a one-shot
migration, two replicas with a stop_grace_period longer than their drain, nginx in front with
DUCHA_TRUSTED_PROXIES naming it); `nginx -t` accepts docker/nginx.conf outside compose (the
replicas are resolved at run time); each stage of docker/Dockerfile installs exactly its list of
scripts/packages/, and the runtime list holds the package of every library build/ducha links."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DUCHA_BIN, DUCHA_SRC, check, eq, main, skip, test  # noqa: E402

import yaml  # noqa: E402

DOCKER = os.path.join(DUCHA_SRC, "docker")
PACKAGES = os.path.join(DUCHA_SRC, "scripts", "packages")
# In the runtime list without being the package of a library build/ducha links, and why.
RUNTIME_EXTRA = {"tzdata": "DUCHA_TIMEZONE's zone files (config.c checks /usr/share/zoneinfo)",
                 "ca-certificates": "the authorities libcurl checks a webhook receiver's https certificate against"}


def package_list(name):
    """What scripts/lib.sh installs for a list (ducha_package_list)."""
    p = subprocess.run(["bash", "-c", '. "$1/scripts/lib.sh" && ducha_package_list "$2"', "-", DUCHA_SRC, name],
                       capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, "ducha_package_list %s: %s" % (name, p.stderr))
    return p.stdout.split()


def stages():
    """{stage name: {"from": image, "lines": [instruction lines, continuations joined]}}."""
    with open(os.path.join(DOCKER, "Dockerfile")) as f:
        text = f.read()
    joined = re.sub(r"\\\n", " ", text)
    out, cur = {}, None
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?$", line, re.I)
        if m:
            cur = {"from": m.group(1), "lines": []}
            out[m.group(2) or str(len(out))] = cur
            continue
        check(cur is not None, "an instruction before FROM: %r" % line)
        cur["lines"].append(line)
    return out


def installs(stage):
    """The packages a stage's apt-get install installs: its one install must take its names from
    the list file the stage copied, through the same filter as scripts/lib.sh, and name no other."""
    copies = [l.split()[1:] for l in stage["lines"] if l.startswith("COPY") and "scripts/packages/" in l]
    eq(len(copies), 1, "lists copied into the stage: %s" % copies)
    src, dst = copies[0]
    runs = [l for l in stage["lines"] if l.startswith("RUN") and "apt-get install" in l]
    eq(len(runs), 1, "apt-get installs in the stage")
    run = runs[0]
    m = re.search(r"(sed\s.*?)\s+" + re.escape(dst) + r"\s*\|\s*xargs\s+apt-get\s+install\s+(.*?)(?:&&|$)", run)
    check(m, "the install does not read %s through sed | xargs: %r" % (dst, run))
    options = shlex.split(m.group(2))
    check(all(o.startswith("-") for o in options), "names besides the list: %s" % options)
    check("--no-install-recommends" in options, "recommends would come too: %s" % options)
    sed = shlex.split(m.group(1))
    p = subprocess.run(sed + [os.path.join(DUCHA_SRC, src)], capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, "the stage's filter on %s" % src)
    return os.path.basename(src)[:-len(".txt")], p.stdout.split()


@test
def each_stage_installs_exactly_its_list():
    st = stages()
    eq(sorted(st), ["build", "runtime"], "stages")
    check(st["build"]["from"].startswith("debian:12"), "build FROM %s" % st["build"]["from"])
    eq(st["runtime"]["from"], "debian:12-slim", "runtime FROM")
    for name in ("build", "runtime"):
        listed, got = installs(st[name])
        eq(listed, name, "the %s stage installs the list" % name)
        eq(got, package_list(name), "the %s stage installs what scripts/lib.sh reads from %s.txt" % (name, name))


@test
def runtime_stage_is_slim_non_root_and_healthchecked():
    rt = stages()["runtime"]["lines"]
    users = [l.split()[1] for l in rt if l.startswith("USER")]
    check(users and users[-1] not in ("root", "0"), "runs as %s" % users)
    check(any(l.startswith("HEALTHCHECK") and "/healthz" in l for l in rt), "HEALTHCHECK of /healthz")
    copied = [l for l in rt if l.startswith("COPY --from=build")]
    check(any("/build/ducha" in l for l in copied), "the binary comes from the build stage")
    for l in copied:
        check("/usr/" not in l.split()[2] and "apt" not in l, "the runtime takes only ducha's files: %r" % l)
    check(any(l.startswith("ENTRYPOINT") for l in rt), "ENTRYPOINT")
    envs = " ".join(l for l in rt if l.startswith("ENV"))
    for var in ("DUCHA_LISTEN=0.0.0.0:8080", "DUCHA_METRICS_LISTEN=0.0.0.0:9464", "DUCHA_DOCS_DIR="):
        check(var in envs, "ENV %s" % var)


def needed_packages():
    """{library: Debian package} of what build/ducha links (readelf -d: NEEDED)."""
    p = subprocess.run(["readelf", "-d", DUCHA_BIN], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        skip("readelf: %s" % p.stderr.strip())
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", p.stdout)
    # the sanitizer build's runtimes are not the image's (it builds --buildtype=release)
    libs = [lib for lib in libs if not re.match(r"lib(a|ub|t|l)san\.", lib)]
    check(libs, "no NEEDED libraries in %s" % DUCHA_BIN)
    cache = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, timeout=30).stdout
    out = {}
    for lib in libs:
        m = re.search(r"^\s*%s \(.*\) => (\S+)$" % re.escape(lib), cache, re.M)
        check(m, "ldconfig does not know %s" % lib)
        path = m.group(1)
        owner = None
        for candidate in (path, os.path.realpath(path), os.path.realpath(path).replace("/usr/lib/", "/lib/", 1)):
            q = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, timeout=30)
            if q.returncode == 0:
                owner = q.stdout.split(":")[0]
                break
        check(owner, "no package holds %s (%s)" % (lib, path))
        out[lib] = owner
    return out


@test
def the_runtime_list_holds_what_ducha_links():
    needed = needed_packages()
    runtime = set(package_list("runtime"))
    missing = sorted("%s (%s)" % (pkg, lib) for lib, pkg in needed.items() if pkg != "libc6" and pkg not in runtime)
    check(not missing, "scripts/packages/runtime.txt lacks: %s" % ", ".join(missing))
    extra = sorted(runtime - set(needed.values()) - set(RUNTIME_EXTRA))
    check(not extra, "runtime.txt has packages build/ducha does not link: %s" % extra)
    build = set(package_list("build"))
    check(not (runtime & build), "in both lists: %s" % sorted(runtime & build))
    check(not [p for p in runtime if p.endswith("-dev")], "a -dev package in the runtime list")


@test
def lib_sh_installs_the_lists():
    check(not os.path.exists(os.path.join(DUCHA_SRC, "scripts", "packages.txt")), "scripts/packages.txt is split")
    for script, lists in (("run", "build runtime dev"), ("test", "build runtime dev test")):
        with open(os.path.join(DUCHA_SRC, "scripts", script)) as f:
            text = f.read()
        check(re.search(r"^ducha_install_packages %s$" % lists, text, re.M),
              "scripts/%s installs %s" % (script, lists))
    for name in ("build", "runtime", "dev", "test"):
        check(package_list(name), "scripts/packages/%s.txt is empty" % name)


def compose_config(env_extra):
    exe = shutil.which("docker-compose")
    if not exe:
        skip("docker-compose not installed (Debian's docker-compose: scripts/packages/test.txt)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUCHA_")}
    env.update(env_extra)
    with tempfile.TemporaryDirectory() as home:
        env["HOME"] = home
        return subprocess.run([exe, "-f", os.path.join(DOCKER, "compose.yaml"), "config"], capture_output=True,
                              text=True, timeout=120, env=env, cwd=DUCHA_SRC)


@test
def docker_compose_accepts_the_file():
    p = compose_config({"DUCHA_DB_PASSWORD": "owner-secret", "DUCHA_APP_PASSWORD": "app-secret"})
    eq(p.returncode, 0, "docker-compose config: %s" % p.stderr[-2000:])
    cfg = yaml.safe_load(p.stdout)
    services = cfg["services"]
    eq(sorted(services), ["ducha-1", "ducha-2", "migrate", "nginx", "postgres"], "services")
    eq(services["postgres"]["image"].split(":")[0], "postgres", "PostgreSQL's image")
    mig = services["migrate"]
    check("migrate" in " ".join(mig.get("entrypoint") or []) + " ".join(mig.get("command") or []), "migrate runs ducha migrate")
    eq(str(mig.get("restart")), "no", "the migration runs once")
    check("DUCHA_MIGRATION_DATABASE_URL" in mig["environment"], "it migrates as the schema owner")
    nginx_ip = services["nginx"]["networks"]["backend"]["ipv4_address"]
    for name in ("ducha-1", "ducha-2"):
        s = services[name]
        eq(s["depends_on"]["migrate"]["condition"], "service_completed_successfully", name + " waits for the migration")
        env = s["environment"]
        check(env["DATABASE_URL"].startswith("postgresql://ducha_app:"), name + " runs as ducha_app")
        eq(env["DUCHA_TRUSTED_PROXIES"], nginx_ip, name + " trusts nginx's address")
        m = re.match(r"^(\d+)s$", str(s["stop_grace_period"]))
        check(m, "stop_grace_period %r" % s.get("stop_grace_period"))
        drain = int(env["DUCHA_SHUTDOWN_GRACE"]) + int(env["DUCHA_DRAIN_TIMEOUT"])
        check(int(m.group(1)) > drain, "%s: stop_grace_period %s is not longer than the drain (%d s)" % (
            name, s["stop_grace_period"], drain))
        check("ducha" in s["networks"]["backend"]["aliases"], name + " answers to the name nginx resolves")
        eq(s["build"]["dockerfile"], "docker/Dockerfile", name + " build")
    vols = " ".join(str(v) for v in services["nginx"]["volumes"])
    check("nginx.conf" in vols, "nginx gets docker/nginx.conf: %s" % vols)
    # without the passwords it refuses, naming them
    p = compose_config({})
    check(p.returncode != 0 and "DUCHA_APP_PASSWORD" in p.stderr + p.stdout, "docker-compose config without the passwords: "
          "rc %d %s" % (p.returncode, p.stderr[-500:]))


@test
def nginx_accepts_its_configuration_outside_compose():
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not exe:
        skip("nginx not installed (scripts/packages/test.txt)")
    conf = os.path.join(DOCKER, "nginx.conf")
    with tempfile.TemporaryDirectory() as prefix:
        p = subprocess.run([exe, "-t", "-q", "-c", conf, "-p", prefix + "/"], capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, "nginx -t: %s" % p.stderr)
    with open(conf) as f:
        text = re.sub(r"#.*", "", f.read())
    check(re.search(r"\bresolver\s", text), "a resolver: the replicas are looked up at run time")
    m = re.search(r"proxy_pass\s+(\S+);", text)
    check(m and m.group(1).startswith("$"), "proxy_pass through a variable (resolved per request): %s" % (m and m.group(1)))
    check(re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", text),
          "X-Forwarded-For is set to the client's address, not appended to what the client sent")
    check(re.search(r"proxy_request_buffering\s+on;", text), "bodies are read whole before they reach ducha")


if __name__ == "__main__":
    main(start_server=False)
