# shellcheck shell=bash
# Helpers shared by scripts/run and scripts/test. Source this file.
#
#   ducha_install_packages LIST.. Debian packages of scripts/packages/LIST.txt (apt only when missing)
#   ducha_install_docs            Swagger UI for /docs, as docs/package-lock.json pins it (npm ci)
#   ducha_build DIR OPTS...       meson setup (reused when possible) + ninja
#   ducha_pg_provision_persistent a cluster of this checkout's own, kept between runs
#   ducha_pg_provision_throwaway  a cluster in a temporary directory
#   ducha_pg_stop / ducha_pg_destroy
#
# Run directly for a self-test of the PostgreSQL part:  bash scripts/lib.sh pg-selftest

DUCHA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DUCHA_STATE="$DUCHA_ROOT/.ducha"
DUCHA_PG_BIN=${DUCHA_PG_BIN:-/usr/lib/postgresql/15/bin}
DUCHA_PG_FIRST_PORT=${DUCHA_PG_FIRST_PORT:-55432}

# Set by the provisioning functions (read by scripts/run and scripts/test).
# shellcheck disable=SC2034
DUCHA_PG_BASE=""      # directory holding pgdata/, socket/, postgresql.log
DUCHA_PG_PORT=""
DUCHA_PG_STARTED=0    # 1 when this process started the server (and so stops it)
DUCHA_PG_FRESH=0      # 1 when initdb ran in this process

ducha_log() { printf 'ducha: %s\n' "$*" >&2; }
ducha_die() { ducha_log "$*"; exit 1; }
ducha_is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as root: directly when root, through sudo otherwise.
ducha_sudo() {
	if ducha_is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		ducha_die "need root for: $* (sudo not found)"
	fi
}

# ---------------------------------------------------------------- packages

# The lists (scripts/packages/): build (compile ducha, fetch the page's Swagger UI), runtime (the
# libraries it runs on), dev (scripts/run: PostgreSQL, jq), test (scripts/test). The stages of
# docker/Dockerfile install build and runtime.
ducha_package_list() { # LIST...
	local list
	for list in "$@"; do
		sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$DUCHA_ROOT/scripts/packages/$list.txt"
	done
}

# The names of the installed packages and of what they provide (NodeSource's nodejs provides
# npm, and Debian's npm would conflict with it), one a line.
ducha_installed_names() {
	dpkg-query -W -f='${db:Status-Status} ${Package},${Provides}\n' 2>/dev/null |
		sed -n 's/^installed //p' | sed -e 's/([^)]*)//g' -e 's/[[:space:]]//g' | tr ',' '\n' | sed '/^$/d'
}

ducha_install_packages() { # LIST... (scripts/packages/LIST.txt)
	local pkg svc missing=() have
	have=$(ducha_installed_names | sort -u)
	while IFS= read -r pkg; do
		grep -qxF -- "$pkg" <<<"$have" || missing+=("$pkg")
	done < <(ducha_package_list "$@" | sort -u)
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	ducha_log "installing packages: ${missing[*]}"
	ducha_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
	ducha_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" </dev/null
	# Installing postgresql-15 creates and may start the distribution's cluster 15/main
	# on port 5432. We never use it (our clusters are our own): stop it again.
	case " ${missing[*]} " in
	*" postgresql-15 "*)
		if pg_lsclusters -h 2>/dev/null | grep -q '^15 *main .*online'; then
			ducha_sudo pg_ctlcluster 15 main stop || true
		fi
		;;
	esac
	# The tests use nginx and prometheus as tools (nginx -t, promtool): no servers of theirs.
	for svc in nginx prometheus; do
		case " ${missing[*]} " in
		*" $svc "*) ducha_sudo service "$svc" stop >/dev/null 2>&1 || true ;;
		esac
	done
}

# Swagger UI for the page /docs: the version docs/package.json pins, checked against
# docs/package-lock.json's hash (npm ci, no install scripts), into docs/node_modules, which
# DUCHA_DOCS_DIR names by default. Only when that version is not there already; a failure is
# reported, and /docs then answers 404.
ducha_install_docs() {
	local want have
	want=$(sed -n 's/.*"swagger-ui-dist": *"\([^"]*\)".*/\1/p' "$DUCHA_ROOT/docs/package.json")
	have=""
	if [ -f "$DUCHA_ROOT/docs/node_modules/swagger-ui-dist/package.json" ]; then # not on a fresh clone
		have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
			"$DUCHA_ROOT/docs/node_modules/swagger-ui-dist/package.json" | head -n 1)
	fi
	if [ -n "$want" ] && [ "$want" = "$have" ]; then
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1; then
		ducha_log "npm not found: /docs will answer 404 (scripts/packages/build.txt lists npm)"
		return 0
	fi
	ducha_log "installing Swagger UI $want for /docs (npm ci in docs/)"
	if ! (cd "$DUCHA_ROOT/docs" && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund \
		--loglevel=error </dev/null); then
		ducha_log "npm ci in docs/ failed: /docs will answer 404"
	fi
}

# ---------------------------------------------------------------- build

# ducha_build DIR MESON_OPTION...
# Reuses DIR when it was set up by this meson, for this checkout, with these options
# (ninja regenerates by itself when meson.build changes); reconfigures when the options
# changed; wipes a directory that is not a usable meson build directory.
ducha_build() {
	local dir="$DUCHA_ROOT/$1"
	shift
	local stamp want fresh=0
	want="$(meson --version) $DUCHA_ROOT $*"
	stamp="$dir/.ducha-setup"

	if [ -e "$dir" ] && [ ! -f "$dir/meson-private/coredata.dat" ]; then
		ducha_log "${dir#"$DUCHA_ROOT"/}: not a meson build directory, recreating"
		rm -rf "$dir"
	fi
	if [ -d "$dir" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
		ducha_log "${dir#"$DUCHA_ROOT"/}: reconfiguring"
		if ! meson setup --reconfigure "$dir" "$DUCHA_ROOT" "$@"; then
			ducha_log "${dir#"$DUCHA_ROOT"/}: reconfigure failed, starting afresh"
			rm -rf "$dir"
		else
			printf '%s' "$want" >"$stamp"
		fi
	fi
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$DUCHA_ROOT" "$@" || ducha_die "meson setup failed"
		printf '%s' "$want" >"$stamp"
		fresh=1
	fi
	if ! ninja -C "$dir"; then
		[ "$fresh" -eq 0 ] || ducha_die "build failed"
		ducha_log "${dir#"$DUCHA_ROOT"/}: build failed, retrying in a fresh build directory"
		rm -rf "$dir"
		meson setup "$dir" "$DUCHA_ROOT" "$@" || ducha_die "meson setup failed"
		printf '%s' "$want" >"$stamp"
		ninja -C "$dir" || ducha_die "build failed"
	fi
}

ducha_build_release() { ducha_build build --buildtype=release; }
ducha_build_asan() {
	ducha_build build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug
}

# ---------------------------------------------------------------- PostgreSQL

# Run a PostgreSQL server program as the cluster's owner: the postgres OS user when we
# are root (initdb refuses root, and postgres may not enter the checkout), else ourselves.
ducha_pg_as_owner() {
	local prog=$1
	shift
	if ducha_is_root; then
		(cd / && runuser -u postgres -- "$DUCHA_PG_BIN/$prog" "$@")
	else
		"$DUCHA_PG_BIN/$prog" "$@"
	fi
}

# Write stdin to a file owned by the cluster's owner: ducha_pg_write_file [-a] FILE
ducha_pg_write_file() {
	if ducha_is_root; then
		(cd / && runuser -u postgres -- tee "$@" >/dev/null)
	elif [ "$1" = -a ]; then
		cat >>"$2"
	else
		cat >"$1"
	fi
}

# Make an empty directory the cluster's owner can use: ducha_pg_make_dir DIR
ducha_pg_make_dir() {
	if ducha_is_root; then
		getent passwd postgres >/dev/null || ducha_die "no postgres OS user (is postgresql-15 installed?)"
		install -d -m 0700 -o postgres -g postgres "$1"
	else
		install -d -m 0700 "$1"
	fi
}

ducha_port_free() {
	local port=$1
	if command -v ss >/dev/null 2>&1; then
		[ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] || return 1
	fi
	# Something answering on loopback also means taken.
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		return 1
	fi
	return 0
}

# Print the first free port from $1 (default DUCHA_PG_FIRST_PORT) upward.
ducha_free_port() {
	local port=${1:-$DUCHA_PG_FIRST_PORT} last
	last=$((port + 500))
	while [ "$port" -le "$last" ]; do
		if ducha_port_free "$port"; then
			printf '%s\n' "$port"
			return 0
		fi
		port=$((port + 1))
	done
	ducha_die "no free TCP port in $((last - 500))-$last"
}

ducha_pg_running() {
	[ -f "$DUCHA_PG_BASE/pgdata/postmaster.pid" ] &&
		ducha_pg_as_owner pg_ctl -D "$DUCHA_PG_BASE/pgdata" status >/dev/null 2>&1
}

# ducha_pg_init KIND  (KIND = persistent|throwaway)
# initdb into $DUCHA_PG_BASE/pgdata: UTF8, C.UTF-8 collation and ctype, trust on loopback.
ducha_pg_init() {
	local kind=$1 data="$DUCHA_PG_BASE/pgdata"
	ducha_log "creating a PostgreSQL cluster in $data"
	ducha_pg_as_owner initdb -D "$data" -E UTF8 --locale=C.UTF-8 -U postgres \
		--auth=trust >"$DUCHA_PG_BASE.initdb.log" 2>&1 || {
		cat "$DUCHA_PG_BASE.initdb.log" >&2
		rm -f "$DUCHA_PG_BASE.initdb.log"
		ducha_die "initdb failed"
	}
	rm -f "$DUCHA_PG_BASE.initdb.log"
	{
		printf '\n# added by ducha scripts (ducha.conf: port and socket, rewritten at every start)\n'
		printf "include_if_exists = 'ducha.conf'\n"
		if [ "$kind" = throwaway ]; then
			# a test cluster: speed over durability
			printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
			printf 'max_connections = 200\n'
		fi
	} | ducha_pg_write_file -a "$data/postgresql.conf"
	# shellcheck disable=SC2034  # read by scripts/run
	DUCHA_PG_FRESH=1
}

# ducha_pg_start [PREFERRED_PORT]: start the cluster on 127.0.0.1, on the preferred port
# when it is free, else on the first free one from DUCHA_PG_FIRST_PORT.
ducha_pg_start() {
	local preferred=${1:-} data="$DUCHA_PG_BASE/pgdata" sock="$DUCHA_PG_BASE/socket"
	local port try sockconf
	ducha_pg_make_dir "$sock"
	for try in 1 2 3 4 5; do
		if [ -n "$preferred" ] && [ "$try" -eq 1 ] && ducha_port_free "$preferred"; then
			port=$preferred
		else
			port=$(ducha_free_port "${port:+$((port + 1))}")
		fi
		# a unix socket path is limited to 107 bytes; go TCP-only when ours would not fit
		if [ "$((${#sock} + 15))" -le 107 ]; then
			sockconf="'${sock//\'/\'\'}'"
		else
			sockconf="''"
		fi
		printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = %s\n" \
			"$port" "$sockconf" | ducha_pg_write_file "$data/ducha.conf"
		if ducha_pg_as_owner pg_ctl -D "$data" -l "$DUCHA_PG_BASE/postgresql.log" \
			-w -t 60 start >/dev/null; then
			DUCHA_PG_PORT=$port
			DUCHA_PG_STARTED=1
			return 0
		fi
		ducha_log "PostgreSQL did not start on port $port (try $try)"
	done
	tail -n 20 "$DUCHA_PG_BASE/postgresql.log" >&2 || true
	ducha_die "could not start PostgreSQL; log: $DUCHA_PG_BASE/postgresql.log"
}

# Stop the server if this process started it. Quiet; safe to call twice.
ducha_pg_stop() {
	[ "$DUCHA_PG_STARTED" -eq 1 ] || return 0
	local data="$DUCHA_PG_BASE/pgdata" pid
	DUCHA_PG_STARTED=0
	if ducha_pg_as_owner pg_ctl -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1; then
		return 0
	fi
	ducha_pg_as_owner pg_ctl -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 && return 0
	# last resort: the postmaster whose pid we wrote down
	pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# Run the SQL on stdin as the cluster's superuser (over TCP, trust on loopback).
ducha_pg_psql_admin() {
	"$DUCHA_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
		"postgresql://postgres@127.0.0.1:$DUCHA_PG_PORT/postgres"
}

# ducha_pg_create_db NAME [ROLE_OPTIONS]: role ducha (LOGIN, no password: trust on
# loopback) and database NAME owned by it, UTF8 with C.UTF-8 collation and ctype; and role
# ducha_app, which the service runs as: `ducha migrate` (as ducha) grants it what it needs,
# and not the right to change or delete audit events.
ducha_pg_create_db() {
	local db=$1 roleopts=${2:-}
	ducha_pg_psql_admin <<SQL >/dev/null
SELECT 'CREATE ROLE ducha LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ducha')
\\gexec
SELECT 'CREATE ROLE ducha_app LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ducha_app')
\\gexec
SELECT 'ALTER ROLE ducha LOGIN $roleopts'
\\gexec
SELECT format('CREATE DATABASE %I OWNER ducha TEMPLATE template0 ENCODING %L LC_COLLATE %L LC_CTYPE %L',
              '$db', 'UTF8', 'C.UTF-8', 'C.UTF-8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')
\\gexec
SQL
}

ducha_pg_url() { printf 'postgresql://ducha@127.0.0.1:%s/%s\n' "$DUCHA_PG_PORT" "${1:-ducha}"; }
ducha_pg_app_url() { printf 'postgresql://ducha_app@127.0.0.1:%s/%s\n' "$DUCHA_PG_PORT" "${1:-ducha}"; }

# The cluster that scripts/run keeps between runs. Its data lives in DUCHA_PG_BASE:
#   as root:   /var/lib/ducha/<hash of the checkout path>  (reachable by the postgres user)
#   otherwise: .ducha/pg
# .ducha/pg.base records where it is, .ducha/pg.port the port last used.
# Sets and exports DATABASE_URL (role ducha_app) and DUCHA_MIGRATION_DATABASE_URL (ducha).
ducha_pg_provision_persistent() {
	local hash preferred=""
	install -d -m 0700 "$DUCHA_STATE"
	if [ -f "$DUCHA_STATE/pg.base" ]; then
		DUCHA_PG_BASE=$(cat "$DUCHA_STATE/pg.base")
	fi
	if [ -z "$DUCHA_PG_BASE" ] || [ ! -f "$DUCHA_PG_BASE/pgdata/PG_VERSION" ]; then
		if ducha_is_root; then
			hash=$(printf '%s' "$DUCHA_ROOT" | sha256sum | cut -c1-16)
			install -d -m 0755 /var/lib/ducha
			DUCHA_PG_BASE="/var/lib/ducha/$hash"
		else
			DUCHA_PG_BASE="$DUCHA_STATE/pg"
		fi
	fi
	printf '%s\n' "$DUCHA_PG_BASE" >"$DUCHA_STATE/pg.base"
	if [ ! -f "$DUCHA_PG_BASE/pgdata/PG_VERSION" ]; then
		ducha_pg_make_dir "$DUCHA_PG_BASE"
		ducha_pg_init persistent
	fi
	if ducha_pg_running; then
		# started by another scripts/run of this checkout: use it, leave it running
		DUCHA_PG_PORT=$(sed -n 's/^port = //p' "$DUCHA_PG_BASE/pgdata/ducha.conf" 2>/dev/null || true)
		[ -n "$DUCHA_PG_PORT" ] || ducha_die "PostgreSQL in $DUCHA_PG_BASE runs, but on which port?"
		ducha_log "using the running PostgreSQL in $DUCHA_PG_BASE (port $DUCHA_PG_PORT)"
	else
		[ -f "$DUCHA_STATE/pg.port" ] && preferred=$(cat "$DUCHA_STATE/pg.port")
		ducha_pg_start "$preferred"
		ducha_log "PostgreSQL started on 127.0.0.1:$DUCHA_PG_PORT (data: $DUCHA_PG_BASE/pgdata)"
	fi
	printf '%s\n' "$DUCHA_PG_PORT" >"$DUCHA_STATE/pg.port"
	ducha_pg_create_db ducha
	DATABASE_URL=$(ducha_pg_app_url ducha)
	DUCHA_MIGRATION_DATABASE_URL=$(ducha_pg_url ducha)
	export DATABASE_URL DUCHA_MIGRATION_DATABASE_URL
}

# A cluster in a new temporary directory; call ducha_pg_destroy when done (trap it).
# Role ducha gets CREATEDB here so tests may make databases of their own.
# Sets and exports DATABASE_URL (database ducha) and DUCHA_TEST_PG_ADMIN_URL (superuser).
ducha_pg_provision_throwaway() {
	if ducha_is_root; then
		DUCHA_PG_BASE=$(mktemp -d /tmp/ducha-pg.XXXXXX)
		chown postgres:postgres "$DUCHA_PG_BASE"
	else
		DUCHA_PG_BASE=$(mktemp -d "${TMPDIR:-/tmp}/ducha-pg.XXXXXX")
	fi
	chmod 0700 "$DUCHA_PG_BASE"
	ducha_pg_init throwaway
	ducha_pg_start ""
	ducha_pg_create_db ducha CREATEDB
	DATABASE_URL=$(ducha_pg_url ducha)
	DUCHA_TEST_PG_ADMIN_URL="postgresql://postgres@127.0.0.1:$DUCHA_PG_PORT/postgres"
	export DATABASE_URL DUCHA_TEST_PG_ADMIN_URL
}

# Stop the throwaway cluster and remove its directory. Quiet; safe to call twice.
ducha_pg_destroy() {
	ducha_pg_stop
	if [ -n "$DUCHA_PG_BASE" ] && [ -d "$DUCHA_PG_BASE" ]; then
		case "$DUCHA_PG_BASE" in
		/tmp/ducha-pg.* | "${TMPDIR:-/tmp}"/ducha-pg.*) rm -rf "$DUCHA_PG_BASE" ;;
		esac
	fi
	DUCHA_PG_BASE=""
}

# ---------------------------------------------------------------- test results

# ducha_count_meson_results BUILD_DIR CONSOLE_LOG
# Prints "PASSED FAILED SKIPPED" for the last `meson test` run in BUILD_DIR, counting
# every TAP subtest (meson 1.0's summary counts whole test programs only). Read from
# meson-logs/testlog.json:
#   TAP test:  ok -> passed; not ok -> failed; not ok # TODO -> passed (expected fail);
#              ok # TODO -> failed (unexpected pass); # SKIP -> skipped; planned but never
#              reported -> failed; and a program meson judged FAIL/TIMEOUT/ERROR (a crash,
#              a sanitizer report at exit) with no failed subtest -> one more failed.
#   other:     OK/EXPECTEDFAIL -> passed; SKIP -> skipped; anything else -> failed.
# Without testlog.json, falls back to the summary lines (Ok:, Fail:, ...) of CONSOLE_LOG.
ducha_count_meson_results() {
	local json="$1/meson-logs/testlog.json" log=$2
	if [ -s "$json" ]; then
		/usr/bin/python3 - "$json" <<'PY'
import json, re, sys

RESULT = re.compile(r'^(not ok|ok)\b(.*)$')
PLAN = re.compile(r'^1\.\.(\d+)')
DIRECTIVE = re.compile(r'#\s*(SKIP|TODO)\b', re.I)
BAD = {'FAIL', 'TIMEOUT', 'ERROR', 'UNEXPECTEDPASS', 'INTERRUPT'}
passed = failed = skipped = 0
with open(sys.argv[1], encoding='utf-8', errors='replace') as f:
    for raw in f:
        if not raw.strip():
            continue
        try:
            t = json.loads(raw)
        except ValueError:
            failed += 1
            continue
        result = str(t.get('result', 'ERROR')).upper()
        p = fl = sk = seen = 0
        plan = None
        tap = bail = False
        for line in (t.get('stdout') or '').splitlines():
            m = PLAN.match(line)
            if m:
                tap, plan = True, int(m.group(1))
                continue
            if line.startswith('Bail out!'):
                tap = bail = True
                continue
            m = RESULT.match(line)
            if not m:
                continue
            tap = True
            seen += 1
            d = DIRECTIVE.search(m.group(2))
            directive = d.group(1).upper() if d else ''
            if m.group(1) == 'ok':
                if directive == 'SKIP':
                    sk += 1
                elif directive == 'TODO':
                    fl += 1
                else:
                    p += 1
            elif directive == 'TODO':
                p += 1
            else:
                fl += 1
        if tap:
            if plan is not None and plan > seen:
                fl += plan - seen
            if (bail or result in BAD) and fl == 0:
                fl += 1
        elif result in ('OK', 'EXPECTEDFAIL'):
            p += 1
        elif result == 'SKIP':
            sk += 1
        else:
            fl += 1
        passed += p
        failed += fl
        skipped += sk
print(passed, failed, skipped)
PY
		return
	fi
	awk '
		/^Ok:/              { ok += $2 }
		/^Expected Fail:/   { ok += $3 }
		/^Fail:/            { bad += $2 }
		/^Unexpected Pass:/ { bad += $3 }
		/^Timeout:/         { bad += $2 }
		/^Skipped:/         { skip += $2 }
		END { printf "%d %d %d\n", ok, bad, skip }
	' "$log"
}

# ---------------------------------------------------------------- self-test

# Provision a throwaway cluster, check it, tear it down, check nothing is left.
ducha_pg_selftest() {
	local base collate ctype enc out
	trap 'ducha_pg_destroy' EXIT
	ducha_pg_provision_throwaway
	base=$DUCHA_PG_BASE
	ducha_log "selftest: DATABASE_URL=$DATABASE_URL"
	out=$("$DUCHA_PG_BIN/psql" -X -At "$DATABASE_URL" -c 'select 1')
	[ "$out" = 1 ] || ducha_die "selftest: select 1 gave '$out'"
	collate=$("$DUCHA_PG_BIN/psql" -X -At "$DATABASE_URL" -c 'SHOW lc_collate')
	ctype=$("$DUCHA_PG_BIN/psql" -X -At "$DATABASE_URL" -c 'SHOW lc_ctype')
	enc=$("$DUCHA_PG_BIN/psql" -X -At "$DATABASE_URL" -c 'SHOW server_encoding')
	ducha_log "selftest: lc_collate=$collate lc_ctype=$ctype server_encoding=$enc"
	if [ "$collate" != C.UTF-8 ] || [ "$ctype" != C.UTF-8 ] || [ "$enc" != UTF8 ]; then
		ducha_die "selftest: wrong locale or encoding"
	fi
	"$DUCHA_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" \
		-c 'create table t (s text primary key)' \
		-c "insert into t values ('市政务公开办')" -c 'create extension pg_trgm' >/dev/null
	ducha_pg_destroy
	trap - EXIT
	[ ! -e "$base" ] || ducha_die "selftest: $base still exists"
	if pgrep -f -- "-D $base/pgdata" >/dev/null 2>&1; then
		ducha_die "selftest: a postgres for $base still runs"
	fi
	ducha_log "selftest: ok (cluster stopped and $base removed)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case "${1:-}" in
	pg-selftest) ducha_pg_selftest ;;
	*)
		echo "usage: bash scripts/lib.sh pg-selftest   (otherwise: source it)" >&2
		exit 2
		;;
	esac
fi
