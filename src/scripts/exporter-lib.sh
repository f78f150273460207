#!/bin/bash
# The account and option file of the mysqld_exporter sidecar (metrics). Sourced after lib.sh:
#   source "$(dirname "${BASH_SOURCE[0]}")/exporter-lib.sh"
# Besides lib.sh's variables (DB_ENGINE, SECRETS_DIR, DB_SOCKET) it reads, set by the construct:
#   EXPORTER_CNF  the exporter's option file, in the run directory the pod's containers share
# The exporter logs in as exporter@localhost over the server's socket: the account cannot be
# used from the network. Its password is the Secret key exporter-password.
set -euo pipefail

readonly EXPORTER_USER=exporter
readonly EXPORTER_PASSWORD_KEY=exporter-password

# Prints the exporter's password. mysqld_exporter 0.15 and later expand $VAR and %(key)s in
# its option file, and a backquote would end the quoted value: such passwords are refused.
exporter_password() {
  local password
  # explicit returns: callers run these functions in conditions, where set -e does not apply
  password=$(read_secret "$EXPORTER_PASSWORD_KEY") || return 1
  if [[ $password == *[\$%\`]* ]]; then
    log "FATAL: credential '$EXPORTER_PASSWORD_KEY' contains \$, % or a backquote, which mysqld_exporter's option file parser changes: use letters, digits and symbols such as +/=-_.#; (e.g. openssl rand -base64 24)"
    return 1
  fi
  printf '%s' "$password"
}

# Writes the exporter's option file (mode 0600): the account and the server's socket. The
# password is quoted with backquotes, which the exporter's parser takes literally (#, ;, quotes,
# backslashes and spaces included); no mysql client reads this file.
write_exporter_cnf() {
  local file=${1:?write_exporter_cnf FILE} password tmp
  password=$(exporter_password) || return 1
  tmp="$file.tmp.$$"
  (
    umask 077
    # shellcheck disable=SC2016 # the backquotes are literal: they quote the password
    printf '[client]\nuser=%s\npassword=`%s`\nsocket=%s\n' "$EXPORTER_USER" "$password" "${DB_SOCKET:?DB_SOCKET is not set}" >"$tmp"
  )
  mv -f "$tmp" "$file"
}

# The SQL that creates or updates the exporter's account, idempotent: at most 3 connections;
# it can read the server's status and variables, the replication status and performance_schema,
# and nothing else (no table of any database, no writes). The password travels as its hash on
# MariaDB, whose binary log would otherwise keep it in clear (MySQL logs the hash by itself).
#   exporter_user_sql ROOT_CNF
exporter_user_sql() {
  local root_cnf=$1 password auth monitor account="'$EXPORTER_USER'@'localhost'"
  password=$(exporter_password) || return 1
  password=$(sql_quote "$password")
  if [[ $DB_ENGINE == mariadb ]]; then
    auth=$(printf 'SELECT PASSWORD(%s);\n' "$password" | sql "$root_cnf") || return 1
    [[ $auth =~ ^\*[0-9A-F]{40}$ ]] || { log "the server returned no password hash for the exporter's account"; return 1; }
    auth="IDENTIFIED BY PASSWORD '$auth'"
    # SHOW SLAVE STATUS; REPLICATION CLIENT would be BINLOG MONITOR, which the exporter does not use
    monitor='REPLICA MONITOR'
  else
    auth="IDENTIFIED BY $password"
    monitor='REPLICATION CLIENT'
  fi
  printf '%s\n' \
    "CREATE USER IF NOT EXISTS $account $auth WITH MAX_USER_CONNECTIONS 3;" \
    "ALTER USER $account $auth WITH MAX_USER_CONNECTIONS 3;" \
    "GRANT PROCESS, $monitor ON *.* TO $account;" \
    "GRANT SELECT ON performance_schema.* TO $account;"
}

# True when the exporter's account logs in with the Secret's password over the socket.
exporter_logs_in() {
  local cnf rc=0
  cnf=$(mktemp "${TMPDIR:-/tmp}/cdk8s-mysql-exporter.XXXXXX")
  write_client_cnf "$cnf" "$EXPORTER_USER" "$EXPORTER_PASSWORD_KEY" || rc=$?
  ((rc != 0)) || printf 'SELECT 1;\n' | sql "$cnf" >/dev/null 2>&1 || rc=$?
  rm -f "$cnf"
  return "$rc"
}

# Makes sure the exporter's account exists with the Secret's password; nothing is written when it
# logs in already. Runs on the server that accepts writes (replication: the primary, whose binary
# log carries the account to the replicas; Galera: any synced node). ensure_exporter_user ROOT_CNF
ensure_exporter_user() {
  local root_cnf=$1 statements out
  exporter_password >/dev/null || return 1
  if exporter_logs_in; then
    return 0
  fi
  statements=$(exporter_user_sql "$root_cnf") || return 1
  if ! out=$(printf '%s\n' "$statements" | sql "$root_cnf" 2>&1); then
    # the message may quote a statement: print only the error code
    log "creating the exporter's account failed: $(grep -o '^ERROR [0-9]* ([0-9A-Z]*)' <<<"$out" | head -n 1)"
    return 1
  fi
  log "the exporter's account $EXPORTER_USER@localhost is ready"
}
