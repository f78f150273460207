#!/bin/bash
# Shared functions for the scripts of cdk8s-mysql. Sourced, never run on its own:
#   source "$(dirname "$0")/lib.sh"
# Reads only these environment variables:
#   DB_ENGINE        mysql | mariadb (picks the client and server program names)
#   SECRETS_DIR      directory of the mounted credentials Secret (files, one per key)
#   DB_SOCKET        the server's unix socket
#   TLS_DIR          (clusters with TLS) the mounted certificate files: ca.crt, and tls.crt and
#                    tls.key on the servers; TCP connections then use TLS, verified against ca.crt
set -euo pipefail

SCRIPT_NAME=$(basename "$0")

# Logs a line to stderr with a UTC timestamp and the script's name. Never pass secrets.
log() {
  printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$SCRIPT_NAME" "$*" >&2
}

die() {
  log "FATAL: $*"
  exit 1
}

# Prints the value of one key of the credentials Secret; fails on a missing or empty value.
read_secret() {
  local key=$1 file="${SECRETS_DIR:?SECRETS_DIR is not set}/$1"
  [[ -r $file ]] || die "credential '$key' is missing: the Secret mounted at $SECRETS_DIR has no key '$key'"
  local value
  value=$(<"$file")
  [[ -n $value ]] || die "credential '$key' is empty: set a non-empty value in the Secret"
  [[ $value != *$'\n'* ]] || die "credential '$key' contains a line break: use a single-line value"
  printf '%s' "$value"
}

# Quotes a value as an SQL string literal: 'it''s' (backslashes doubled for MySQL/MariaDB).
sql_quote() {
  local s=${1//\\/\\\\}
  s=${s//\'/\'\'}
  printf "'%s'" "$s"
}

# A credential of the Secret as an SQL string literal. Use it as `x=$(sql_secret key)`: the
# assignment fails when the credential is missing or empty. (In `$(sql_quote "$(read_secret k)")`
# the inner failure is lost and an empty literal would be used.)
sql_secret() {
  local value
  value=$(read_secret "$1") || return 1
  sql_quote "$value"
}

# Quotes a value for an option file (my.cnf): "..." with \ and " escaped.
cnf_quote() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# The client options (one per line, without the leading --) of a TCP connection to a server of
# the cluster: none without TLS_DIR; else TLS, with the server's certificate verified against the
# cluster's CA and its name checked against the host name the client connects to.
tls_client_options() {
  [[ -n ${TLS_DIR:-} ]] || return 0
  [[ -r $TLS_DIR/ca.crt ]] || die "$TLS_DIR/ca.crt is missing or unreadable: the TLS Secret needs the key ca.crt"
  case "${DB_ENGINE:?DB_ENGINE is not set}" in
    mariadb) printf '%s\n' "ssl-ca=$TLS_DIR/ca.crt" ssl-verify-server-cert ;;
    mysql) printf '%s\n' "ssl-ca=$TLS_DIR/ca.crt" ssl-mode=VERIFY_IDENTITY ;;
    *) die "DB_ENGINE must be mysql or mariadb, not '$DB_ENGINE'" ;;
  esac
}

# Writes a client option file (mode 0600) that logs in as USER with the password of a Secret
# key, so that no password appears on a command line or in the environment. With a HOST, the
# connection is TCP (with TLS when TLS_DIR is set); without, the socket.
#   write_client_cnf FILE USER SECRET_KEY [HOST] [PORT]
write_client_cnf() {
  local file=$1 user=$2 key=$3 host=${4:-} port=${5:-}
  local password tmp
  password=$(read_secret "$key")
  tmp="$file.tmp.$$"
  (
    umask 077
    {
      printf '[client]\nuser=%s\npassword=%s\n' "$(cnf_quote "$user")" "$(cnf_quote "$password")"
      if [[ -n $host ]]; then
        printf 'host=%s\nport=%s\nprotocol=TCP\n' "$host" "${port:-3306}"
        tls_client_options
      else
        printf 'socket=%s\n' "${DB_SOCKET:?DB_SOCKET is not set}"
      fi
    } >"$tmp"
  )
  mv -f "$tmp" "$file"
}

# The client and admin programs of the engine (mariadb:11 has no mysql* names).
db_client() {
  case "${DB_ENGINE:?DB_ENGINE is not set}" in
    mariadb) printf 'mariadb' ;;
    mysql) printf 'mysql' ;;
    *) die "DB_ENGINE must be mysql or mariadb, not '$DB_ENGINE'" ;;
  esac
}

db_admin() {
  case "${DB_ENGINE:?DB_ENGINE is not set}" in
    mariadb) printf 'mariadb-admin' ;;
    mysql) printf 'mysqladmin' ;;
    *) die "DB_ENGINE must be mysql or mariadb, not '$DB_ENGINE'" ;;
  esac
}

# Runs SQL from stdin with a client option file: sql CNF_FILE [client options...]
sql() {
  local cnf=$1
  shift
  "$(db_client)" --defaults-extra-file="$cnf" --batch --skip-column-names "$@"
}

# Waits until the server answers on its socket, or fails after TIMEOUT seconds.
#   wait_for_server CNF_FILE TIMEOUT
wait_for_server() {
  local cnf=$1 timeout=$2 waited=0
  until "$(db_admin)" --defaults-extra-file="$cnf" --connect-timeout=2 ping >/dev/null 2>&1; do
    ((waited < timeout)) || return 1
    sleep 1
    waited=$((waited + 1))
  done
}

# Writes CONTENT to FILE atomically: readers see the old file or the whole new one.
atomic_write() {
  local file=$1 content=$2 tmp="$1.tmp.$$"
  printf '%s' "$content" >"$tmp"
  sync "$tmp" 2>/dev/null || true
  mv -f "$tmp" "$file"
}

# The server program of the engine (mariadb:11 has no mysqld name).
db_server() {
  case "${DB_ENGINE:?DB_ENGINE is not set}" in
    mariadb) printf 'mariadbd' ;;
    mysql) printf 'mysqld' ;;
    *) die "DB_ENGINE must be mysql or mariadb, not '$DB_ENGINE'" ;;
  esac
}
