#!/bin/bash
# Functions of the backup, restore and drill scripts of cdk8s-mysql. Sourced, never run on its own:
#   source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"
# Besides lib.sh's variables (DB_ENGINE, SECRETS_DIR) it reads these, all set by the construct:
#   DB_PORT          the members' SQL port
#   CLUSTER_NAME     the cluster's name (recorded in manifests)
#   TOPOLOGY         replication | galera (how a logical backup pauses its source; a restore into
#                    Galera reads causally)
#   MEMBERS          host names of the members to back up from, most preferred first
#   WRITE_HOST       where a restore Job loads a backup
#   METHOD           physical | logical (a restore or drill of 'latest' picks this method's newest)
#   COMPRESSION      zstd | gzip | none
#   STREAM_PORT      the members' physical stream port (physical backups)
#   RUN_DIR          a memory-backed directory for client option files (passwords)
#   WORK_DIR         scratch space shared by the containers of a Job's pod
#   TARGET_KIND      pvc | s3
#   TARGET_DIR       (pvc) the directory of the cluster's backups on the mounted claim
#   S3_BUCKET S3_PREFIX S3_REGION S3_ENDPOINT S3_FORCE_PATH_STYLE S3_SECRETS_DIR RCLONE RCLONE_CA_FILE (s3)
#   KEEP_LAST KEEP_SECONDS  retention: keep the newest N / everything younger than S seconds
#   STALE_SECONDS    leftovers of runs older than this are removed after a successful backup
#   BACKUP           (restore, drill) the backup to restore: its name, or latest
#
# Layout of a target directory: one directory per complete backup, named <UTC start>-<method>
# (20250101T010100Z-physical), holding the artifact, <artifact>.sha256 and manifest.json. A backup
# is written under .incomplete/<name>/ and moved into place when complete, manifest last: a
# directory without manifest.json is never a backup.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The last file of every complete physical stream (the replication donors' end mark).
readonly STREAM_END_MARK=cdk8s-mysql-seed-complete
# A named lock a backup holds on its source member while it pauses it.
# shellcheck disable=SC2034 # used by the scripts that source this file
readonly BACKUP_LOCK=cdk8s_mysql_backup
readonly INCOMPLETE_DIR=.incomplete
readonly MANIFEST=manifest.json
# The last line of every complete logical artifact.
readonly DUMP_END_MARK='-- cdk8s-mysql: end of backup'
readonly BACKUP_NAME_RE='^[0-9]{8}T[0-9]{6}Z-(physical|logical)$'
# Schemas that are never backed up, checksummed or dropped: the server's own.
readonly SYSTEM_SCHEMAS="'mysql', 'information_schema', 'performance_schema', 'sys'"

# --- tools of the engine --------------------------------------------------------------------------

db_dump() {
  case "${DB_ENGINE:?DB_ENGINE is not set}" in
    mariadb) printf 'mariadb-dump' ;;
    mysql) printf 'mysqldump' ;;
    *) die "DB_ENGINE must be mysql or mariadb, not '$DB_ENGINE'" ;;
  esac
}

# The physical backup tool and its stream extractor: mariadb-backup/mbstream or xtrabackup/xbstream.
xb_tool() {
  case "${DB_ENGINE:?DB_ENGINE is not set}" in
    mariadb) printf 'mariadb-backup' ;;
    mysql) printf 'xtrabackup' ;;
    *) die "DB_ENGINE must be mysql or mariadb, not '$DB_ENGINE'" ;;
  esac
}

xb_stream() {
  case "${DB_ENGINE:?DB_ENGINE is not set}" in
    mariadb) printf 'mbstream' ;;
    mysql) printf 'xbstream' ;;
    *) die "DB_ENGINE must be mysql or mariadb, not '$DB_ENGINE'" ;;
  esac
}

# Fails unless every variable named is set: a missing one is a bug, not a reason to guess.
need_env() {
  local name missing=()
  for name in "$@"; do
    [[ -n ${!name:-} ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) || die "environment variables missing: ${missing[*]} (the construct sets them)"
}

now_utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# --- names and ages -------------------------------------------------------------------------------

# A new backup's name: its UTC start time and method.
new_backup_name() { printf '%s-%s' "$(date -u +%Y%m%dT%H%M%SZ)" "$1"; }

is_backup_name() { [[ $1 =~ $BACKUP_NAME_RE ]]; }

# Seconds since the epoch of a backup name's start time.
name_epoch() {
  local n=$1
  date -u -d "${n:0:4}-${n:4:2}-${n:6:2} ${n:9:2}:${n:11:2}:${n:13:2}" +%s
}

name_method() { printf '%s' "${1##*-}"; }

# --- compression ----------------------------------------------------------------------------------

artifact_name() {
  local method=$1 compression=$2 base
  case $method in
    physical) base=backup.xbstream ;;
    logical) base=backup.sql ;;
    *) die "unknown backup method '$method'" ;;
  esac
  case $compression in
    zstd) printf '%s.zst' "$base" ;;
    gzip) printf '%s.gz' "$base" ;;
    none) printf '%s' "$base" ;;
    *) die "unknown compression '$compression' (zstd, gzip or none)" ;;
  esac
}

# stdin → stdout
compress() {
  case ${1:?} in
    zstd) zstd -q -c -3 -T0 ;;
    gzip) gzip -c -6 ;;
    none) cat ;;
    *) die "unknown compression '$1'" ;;
  esac
}

decompress() {
  case ${1:?} in
    zstd) zstd -q -d -c ;;
    gzip) gzip -d -c ;;
    none) cat ;;
    *) die "unknown compression '$1'" ;;
  esac
}

# --- the target -----------------------------------------------------------------------------------

# rclone's configuration, written once per pod (mode 0600, in RUN_DIR): the credentials are read
# from the mounted Secret, never from the environment or the command line.
rclone_conf() {
  local file="${RUN_DIR:?RUN_DIR is not set}/rclone.conf"
  if [[ ! -s $file ]]; then
    local key secret dir=${S3_SECRETS_DIR:?S3_SECRETS_DIR is not set} tmp="$file.tmp.$$"
    [[ -r $dir/access-key-id && -r $dir/secret-access-key ]] || die "the S3 credentials Secret mounted at $dir has no keys access-key-id and secret-access-key"
    key=$(<"$dir/access-key-id")
    secret=$(<"$dir/secret-access-key")
    [[ -n $key && -n $secret && $key != *$'\n'* && $secret != *$'\n'* ]] || die "the S3 credentials must be non-empty single-line values"
    (
      umask 077
      {
        printf '[target]\ntype = s3\nenv_auth = false\nno_check_bucket = true\n'
        printf 'provider = %s\n' "$([[ -n ${S3_ENDPOINT:-} ]] && echo Other || echo AWS)"
        printf 'access_key_id = %s\nsecret_access_key = %s\n' "$key" "$secret"
        printf 'region = %s\n' "${S3_REGION:-us-east-1}"
        [[ -z ${S3_ENDPOINT:-} ]] || printf 'endpoint = %s\n' "$S3_ENDPOINT"
        printf 'force_path_style = %s\n' "${S3_FORCE_PATH_STYLE:-false}"
      } >"$tmp"
    )
    mv -f "$tmp" "$file"
  fi
  printf '%s' "$file"
}

rcl() {
  local conf
  conf=$(rclone_conf)
  if [[ -n ${RCLONE_CA_FILE:-} && -r $RCLONE_CA_FILE ]]; then
    SSL_CERT_FILE=$RCLONE_CA_FILE "${RCLONE:?RCLONE is not set}" --config "$conf" --retries 3 --low-level-retries 10 -q "$@"
  else
    "${RCLONE:?RCLONE is not set}" --config "$conf" --retries 3 --low-level-retries 10 -q "$@"
  fi
}

s3_root() { printf 'target:%s/%s' "${S3_BUCKET:?S3_BUCKET is not set}" "${S3_PREFIX:?S3_PREFIX is not set}"; }

target_kind() {
  case "${TARGET_KIND:?TARGET_KIND is not set}" in
    pvc | s3) printf '%s' "$TARGET_KIND" ;;
    *) die "TARGET_KIND must be pvc or s3, not '$TARGET_KIND'" ;;
  esac
}

target_description() {
  if [[ $(target_kind) == pvc ]]; then printf '%s' "${TARGET_DIR:?TARGET_DIR is not set}"; else printf 's3://%s/%s' "$S3_BUCKET" "$S3_PREFIX"; fi
}

# Every entry of the target directory as "<kind> <name>": complete, unfinished (a backup
# directory without manifest) and incomplete (under .incomplete/). Other entries are ignored.
target_entries() {
  local entry name
  if [[ $(target_kind) == pvc ]]; then
    local dir=${TARGET_DIR:?TARGET_DIR is not set}
    [[ -d $dir ]] || return 0
    for entry in "$dir"/*/; do
      [[ -d $entry ]] || continue
      name=$(basename "$entry")
      is_backup_name "$name" || continue
      if [[ -f $entry/$MANIFEST ]]; then echo "complete $name"; else echo "unfinished $name"; fi
    done
    for entry in "$dir/$INCOMPLETE_DIR"/*/; do
      [[ -d $entry ]] || continue
      name=$(basename "$entry")
      ! is_backup_name "$name" || echo "incomplete $name"
    done
  else
    local files
    files=$(rcl lsf -R --files-only "$(s3_root)") || die "cannot list $(target_description)"
    awk -F/ -v manifest="$MANIFEST" -v incomplete="$INCOMPLETE_DIR" -v re="$BACKUP_NAME_RE" '
      NF == 2 && $1 ~ re { seen[$1] = 1; if ($2 == manifest) done[$1] = 1 }
      NF == 3 && $1 == incomplete && $2 ~ re { partial[$2] = 1 }
      END {
        for (n in seen) print (n in done ? "complete " : "unfinished ") n
        for (n in partial) print "incomplete " n
      }' <<<"$files"
  fi
}

# Names of the complete backups, oldest first; with a method, only that method's.
list_backups() {
  local method=${1:-} entries
  entries=$(target_entries) || return 1
  awk -v m="$method" '$1 == "complete" && (m == "" || $2 ~ ("-" m "$")) { print $2 }' <<<"$entries" | sort
}

# Resolves a requested backup (a name, or latest) to the name of a complete backup.
resolve_backup() {
  local requested=$1 method=${2:-} names
  names=$(list_backups "$method") || die "cannot list the backups in $(target_description)"
  if [[ $requested == latest ]]; then
    [[ -n $names ]] || die "there is no complete ${method:+$method }backup in $(target_description)"
    tail -n 1 <<<"$names"
    return 0
  fi
  is_backup_name "$requested" || die "'$requested' is not a backup name: give latest or a name like 20250101T010100Z-physical"
  grep -qxF -- "$requested" <<<"$names" || die "backup '$requested' is not a complete backup in $(target_description) (complete: $(tr '\n' ' ' <<<"$names"))"
  printf '%s' "$requested"
}

# The local directory a new backup is written to: on a claim, already the target's .incomplete/.
target_stage() {
  if [[ $(target_kind) == pvc ]]; then
    printf '%s/%s/%s' "${TARGET_DIR:?TARGET_DIR is not set}" "$INCOMPLETE_DIR" "$1"
  else
    printf '%s/stage/%s' "${WORK_DIR:?WORK_DIR is not set}" "$1"
  fi
}

# Makes a staged backup visible, manifest last. A claim: one rename of the directory. S3: upload
# under .incomplete/, then a server-side move of every file into place, the manifest last.
target_commit() {
  local name=$1 stage final
  stage=$(target_stage "$name")
  [[ -f $stage/$MANIFEST ]] || die "refusing to commit $name: it has no manifest"
  if [[ $(target_kind) == pvc ]]; then
    final="$TARGET_DIR/$name"
    [[ ! -e $final ]] || die "$final exists already"
    sync "$stage"/* "$stage"
    mv -T "$stage" "$final"
    sync "$TARGET_DIR"
  else
    local root file files=()
    root=$(s3_root)
    for file in "$stage"/*; do
      [[ $(basename "$file") == "$MANIFEST" ]] || files+=("$(basename "$file")")
    done
    files+=("$MANIFEST")
    for file in "${files[@]}"; do
      rcl copyto "$stage/$file" "$root/$INCOMPLETE_DIR/$name/$file" || die "uploading $file to $root/$INCOMPLETE_DIR/$name failed"
    done
    for file in "${files[@]}"; do
      rcl moveto "$root/$INCOMPLETE_DIR/$name/$file" "$root/$name/$file" || die "moving $file into $root/$name failed"
    done
    rcl purge "$root/$INCOMPLETE_DIR/$name" 2>/dev/null || true
    rm -rf "$stage"
  fi
}

# Prints one file of a backup (complete, or with incomplete as the third argument, staged).
target_cat() {
  local name=$1 file=$2 where=${3:-}
  local rel=$name
  [[ $where != incomplete ]] || rel="$INCOMPLETE_DIR/$name"
  if [[ $(target_kind) == pvc ]]; then
    cat "$TARGET_DIR/$rel/$file"
  else
    rcl cat "$(s3_root)/$rel/$file"
  fi
}

# Copies one file of a complete backup to a local file.
target_get() {
  local name=$1 file=$2 dest=$3
  if [[ $(target_kind) == pvc ]]; then
    cp "$TARGET_DIR/$name/$file" "$dest"
  else
    rcl copyto "$(s3_root)/$name/$file" "$dest"
  fi
}

# Deletes a backup directory: KIND complete|unfinished (in place) or incomplete (.incomplete/).
target_delete() {
  local kind=$1 name=$2 rel=$2
  [[ $kind != incomplete ]] || rel="$INCOMPLETE_DIR/$name"
  is_backup_name "$name" || die "refusing to delete '$name': not a backup name"
  if [[ $(target_kind) == pvc ]]; then
    rm -rf -- "${TARGET_DIR:?TARGET_DIR is not set}/$rel"
  else
    rcl purge "$(s3_root)/$rel"
  fi
}

# --- retention ------------------------------------------------------------------------------------

# After a successful backup: deletes the complete backups of METHOD that neither rule keeps
# (KEEP_LAST newest, or younger than KEEP_SECONDS), never the newest one, and the leftovers of
# runs older than STALE_SECONDS. Prints what it deletes.
prune() {
  local method=$1 now entries names count i name age keep
  now=$(date -u +%s)
  entries=$(target_entries) || die "cannot list $(target_description): nothing pruned"
  names=$(awk -v m="$method" '$1 == "complete" && $2 ~ ("-" m "$") { print $2 }' <<<"$entries" | sort)
  [[ -n $names ]] || die "no complete $method backup in $(target_description) after a backup: nothing pruned"
  mapfile -t names <<<"$names"
  count=${#names[@]}
  for ((i = 0; i < count; i++)); do
    name=${names[i]}
    age=$((now - $(name_epoch "$name")))
    keep=''
    ((i < count - 1)) || keep='the newest'
    [[ -n $keep || -z ${KEEP_LAST:-} ]] || ((i < count - KEEP_LAST)) || keep="among the newest $KEEP_LAST"
    [[ -n $keep || -z ${KEEP_SECONDS:-} ]] || ((age >= KEEP_SECONDS)) || keep="younger than ${KEEP_SECONDS}s"
    if [[ -z $keep ]]; then
      log "pruning $name (age ${age}s)"
      target_delete complete "$name"
      echo "$name"
    fi
  done
  local kind
  while read -r kind name; do
    [[ $kind == incomplete || $kind == unfinished ]] || continue
    age=$((now - $(name_epoch "$name")))
    if ((age > ${STALE_SECONDS:?STALE_SECONDS is not set})); then
      log "removing the leftovers of $name ($kind, age ${age}s)"
      target_delete "$kind" "$name"
    fi
  done <<<"$entries"
}

# --- manifests ------------------------------------------------------------------------------------

json_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Reads KEY=value lines (values may contain '='); prints the value of one key.
env_get() {
  awk -v k="$2" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); found = 1; exit } END { exit !found }' "$1"
}

# Writes manifest.json from an info file (KEY=value lines) and a file of table lines.
#   write_manifest INFO TABLES OUT
write_manifest() {
  local info=$1 tables=$2 out=$3 key json_key value first=1 line
  {
    printf '{\n  "format": 1,\n'
    for key in NAME CLUSTER ENGINE SERVER_VERSION METHOD SOURCE GTID ARTIFACT COMPRESSION SIZE SHA256 STARTED_AT FINISHED_AT; do
      value=$(env_get "$info" "$key") || die "the backup's info has no $key"
      json_key=$(awk -v k="$key" 'BEGIN { n = split(tolower(k), p, "_"); s = p[1]; for (i = 2; i <= n; i++) s = s toupper(substr(p[i], 1, 1)) substr(p[i], 2); print s }')
      if [[ $key == SIZE ]]; then
        [[ $value =~ ^[0-9]+$ ]] || die "SIZE '$value' is not a number"
        printf '  "%s": %s,\n' "$json_key" "$value"
      else
        printf '  "%s": %s,\n' "$json_key" "$(json_string "$value")"
      fi
    done
    printf '  "tables": ['
    while IFS= read -r line; do
      [[ -n $line ]] || continue
      if ((first)); then printf '\n'; else printf ',\n'; fi
      first=0
      printf '    %s' "$line"
    done <"$tables"
    if ((first)); then printf ']\n}\n'; else printf '\n  ]\n}\n'; fi
  } >"$out"
}

# The value of a scalar field of a manifest (as written by write_manifest).
manifest_get() {
  local file=$1 key=$2
  awk -v k="$key" '
    index($0, "  \"" k "\": ") == 1 {
      v = substr($0, length(k) + 7); sub(/,$/, "", v)
      if (v ~ /^".*"$/) { v = substr(v, 2, length(v) - 2); gsub(/\\"/, "\"", v); gsub(/\\\\/, "\\", v) }
      print v; found = 1; exit
    }
    END { exit !found }' "$file"
}

# The table lines of a manifest, one JSON object per line.
manifest_tables() {
  awk '/^  "tables": \[/ { on = 1; next } on && /^  \]/ { exit } on { sub(/^    /, ""); sub(/,$/, ""); print }' "$1"
}

# Dies unless the tables of the server behind CNF equal the manifest's (the difference goes to
# stderr); prints how many tables matched.
#   expect_manifest_tables MANIFEST CNF BACKUP_NAME
expect_manifest_tables() {
  local expected actual
  expected=$(manifest_tables "$1")
  actual=$(table_checksums "$2") || die "cannot checksum the restored tables"
  if [[ $actual != "$expected" ]]; then
    diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") >&2 || true
    die "the tables restored from $3 differ from its manifest (above: < manifest, > restored)"
  fi
  grep -c . <<<"$expected" || true
}

# --- table checksums ------------------------------------------------------------------------------

# Prints one JSON object per user table, in a stable order: schema, table, row count and
# CHECKSUM TABLE … EXTENDED. The same function runs on the source (or the prepared copy) at
# backup time and on the restored copy in a drill, so equal data gives equal lines.
#   table_checksums CNF [client options]
table_checksums() {
  local cnf=$1 statements out
  shift
  statements=$(sql "$cnf" "$@" --raw <<SQL
SELECT CONCAT('SELECT ', QUOTE(TABLE_SCHEMA), ', ', QUOTE(TABLE_NAME), ', COUNT(*) FROM \`',
              REPLACE(TABLE_SCHEMA, '\`', '\`\`'), '\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\`; ',
              'CHECKSUM TABLE \`', REPLACE(TABLE_SCHEMA, '\`', '\`\`'), '\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\` EXTENDED;')
FROM information_schema.TABLES
WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ($SYSTEM_SCHEMAS)
ORDER BY TABLE_SCHEMA, TABLE_NAME;
SQL
  ) || return 1
  [[ -n $statements ]] || return 0
  out=$(sql "$cnf" "$@" <<<"$statements") || return 1
  awk -F'\t' '
    function js(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
    NR % 2 == 1 { schema = $1; table = $2; rows = $3; next }
    {
      if ($NF !~ /^[0-9]+$/ || rows !~ /^[0-9]+$/) { print "bad checksum of " schema "." table ": " $0 > "/dev/stderr"; bad = 1; exit 1 }
      printf "{\"schema\": %s, \"table\": %s, \"rows\": %s, \"checksum\": %s}\n", js(schema), js(table), rows, $NF
    }
    END { exit bad }' <<<"$out"
}

# --- throwaway servers ----------------------------------------------------------------------------

scratch_socket() { printf '%s/scratch.sock' "${RUN_DIR:?RUN_DIR is not set}"; }
scratch_cnf() { printf '%s/scratch.cnf' "${RUN_DIR:?RUN_DIR is not set}"; }

# A client option file for the throwaway server: root over its socket, with a password made now.
write_scratch_cnf() {
  local password
  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  (
    umask 077
    printf '[client]\nuser=root\npassword=%s\nsocket=%s\n' "$password" "$(scratch_socket)" >"$(scratch_cnf)"
  )
}

scratch_password() { awk -F= '$1 == "password" { print substr($0, 10); exit }' "$(scratch_cnf)"; }

# Initializes an empty datadir for a throwaway server (root@localhost without a password until
# the first session sets the scratch password).
scratch_init() {
  local dir=$1 user=()
  [[ $(id -u) != 0 ]] || user=(--user=root)
  mkdir -p "$dir"
  if [[ $DB_ENGINE == mariadb ]]; then
    mariadb-install-db --no-defaults --datadir="$dir" --auth-root-authentication-method=normal --skip-test-db "${user[@]}" >"$dir.init.log" 2>&1 ||
      { cat "$dir.init.log" >&2; die "initializing a throwaway datadir failed"; }
  else
    mysqld --no-defaults --datadir="$dir" --initialize-insecure "${user[@]}" >"$dir.init.log" 2>&1 ||
      { cat "$dir.init.log" >&2; die "initializing a throwaway datadir failed"; }
  fi
  rm -f "$dir.init.log"
}

SCRATCH_PID=''
# An option file for the throwaway server instead of none (a restoring cluster's own my.cnf).
SCRATCH_DEFAULTS_FILE=''

# Starts a throwaway server on DATADIR: no network, no replication, no binary log (unless it runs
# on SCRATCH_DEFAULTS_FILE, a cluster's configuration). Extra server options may follow:
# --skip-grant-tables for a copy whose passwords are unknown (a physical copy).
scratch_start() {
  local dir=$1
  shift
  local log_file="${WORK_DIR:-${TMPDIR:-/tmp}}/scratch-error.log"
  local opts=(--datadir="$dir" --socket="$(scratch_socket)" --pid-file="${RUN_DIR:?}/scratch.pid" --skip-networking --log-error="$log_file")
  if [[ -n $SCRATCH_DEFAULTS_FILE ]]; then
    opts=(--defaults-file="$SCRATCH_DEFAULTS_FILE" "${opts[@]}")
  else
    opts=(--no-defaults "${opts[@]}" --skip-log-bin --innodb-buffer-pool-size="${SCRATCH_BUFFER_POOL:-128M}")
  fi
  [[ $(id -u) != 0 ]] || opts+=(--user=root)
  if [[ $DB_ENGINE == mariadb ]]; then
    opts+=(--skip-slave-start --wsrep-on=OFF --skip-name-resolve)
  else
    opts+=(--skip-replica-start --mysqlx=OFF)
  fi
  [[ -s $(scratch_cnf) ]] || write_scratch_cnf
  rm -f "$(scratch_socket)"
  "$(db_server)" "${opts[@]}" "$@" &
  SCRATCH_PID=$!
  local waited=0
  until "$(db_admin)" --no-defaults --socket="$(scratch_socket)" --user=root --connect-timeout=2 ping >/dev/null 2>&1; do
    if ! kill -0 "$SCRATCH_PID" 2>/dev/null; then
      tail -n 30 "$log_file" >&2 || true
      SCRATCH_PID=''
      die "the throwaway server did not start on $dir (its log is above)"
    fi
    ((waited < 600)) || die "the throwaway server did not answer within 600s"
    sleep 1
    waited=$((waited + 1))
  done
}

scratch_stop() {
  [[ -n $SCRATCH_PID ]] || return 0
  kill -TERM "$SCRATCH_PID" 2>/dev/null || true
  wait "$SCRATCH_PID" 2>/dev/null || true
  SCRATCH_PID=''
}

# The first session on a throwaway server, as root without a password (a new datadir, or a copy
# served with --skip-grant-tables, whose grant tables FLUSH PRIVILEGES then loads): runs the SQL
# of stdin, then sets root@localhost's password to the scratch password, with which every later
# session logs in (scratch_cnf).
scratch_session() {
  local password
  password=$(sql_quote "$(scratch_password)")
  {
    printf 'FLUSH PRIVILEGES;\n'
    cat
    printf "ALTER USER 'root'@'localhost' IDENTIFIED BY %s;\n" "$password"
  } | "$(db_client)" --no-defaults --socket="$(scratch_socket)" --user=root --batch --skip-column-names
}

# --- logical dumps ----------------------------------------------------------------------------------

# Prints an SQL dump of every user database (with routines, events and triggers, in one
# consistent snapshot) followed by the user accounts (created only where missing), but not the
# accounts the cluster manages itself (root, repl, mariadb.sys, mysql.*): a restore keeps those
# of the cluster it restores into.
#   dump_sql CNF [client options]
dump_sql() {
  local cnf=$1
  shift
  local list dbs=()
  # every command is checked: this runs in pipelines and conditions, where errexit does not apply
  list=$(sql "$cnf" "$@" --raw <<<"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ($SYSTEM_SCHEMAS) ORDER BY 1") || return 1
  [[ -z $list ]] || mapfile -t dbs <<<"$list"
  printf -- '-- cdk8s-mysql logical backup of %s (%s)\n' "${CLUSTER_NAME:-}" "$DB_ENGINE" || return 1
  local common=(--single-transaction --routines --events --triggers --hex-blob --skip-add-locks --default-character-set=utf8mb4)
  [[ $DB_ENGINE == mariadb ]] || common+=(--set-gtid-purged=OFF)
  if ((${#dbs[@]} > 0)); then
    "$(db_dump)" --defaults-extra-file="$cnf" "$@" "${common[@]}" --databases "${dbs[@]}" || return 1
  fi
  printf -- '-- cdk8s-mysql: user accounts\n' || return 1
  if [[ $DB_ENGINE == mariadb ]]; then
    local accounts
    accounts=$("$(db_dump)" --defaults-extra-file="$cnf" "$@" --system=users --insert-ignore) || return 1
    # one statement per line; drop those that name a managed account
    grep -v -E "\`(root|repl|mariadb\.sys)\`@|'(root|repl|mariadb\.sys)'@" <<<"$accounts" || true
  else
    mysql_accounts_sql "$cnf" "$@" || return 1
  fi
  printf '%s\n' "$DUMP_END_MARK"
}

# MySQL has no dump of accounts: CREATE USER IF NOT EXISTS and GRANT statements for every account
# but root, repl and MySQL's own (password hashes printed as hex, so they survive any charset).
mysql_accounts_sql() {
  local cnf=$1
  shift
  local accounts account statements
  accounts=$(sql "$cnf" "$@" --raw <<<"SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user WHERE User NOT IN ('root', 'repl', '') AND User NOT LIKE 'mysql.%' ORDER BY User, Host") || return 1
  while IFS= read -r account; do
    [[ -n $account ]] || continue
    statements=$(sql "$cnf" "$@" --raw <<<"SET SESSION print_identified_with_as_hex = ON; SHOW CREATE USER $account; SHOW GRANTS FOR $account;") || return 1
    sed -E 's/^CREATE USER /CREATE USER IF NOT EXISTS /; s/$/;/' <<<"$statements" || return 1
  done <<<"$accounts"
}

# --- GTID positions and versions of physical copies -------------------------------------------------

# The position a prepared physical copy was taken at. MariaDB: a replica's copy has its GTID
# position in *_slave_info, any copy with a binary log as the third field of *_binlog_info (10.11
# names them xtrabackup_*, 11.1 and later mariadb_backup_*); a Galera node without a binary log
# has only its cluster position uuid:seqno in *_galera_info. MySQL: the GTID set of
# xtrabackup_binlog_info.
copy_gtid() {
  local dir=$1 name
  if [[ $DB_ENGINE == mariadb ]]; then
    for name in mariadb_backup_slave_info xtrabackup_slave_info; do
      if [[ -s $dir/$name ]]; then
        awk -F"'" '/^SET GLOBAL gtid_slave_pos = / { print $2; found = 1; exit } END { exit !found }' "$dir/$name" && return 0
      fi
    done
    for name in mariadb_backup_binlog_info xtrabackup_binlog_info; do
      if [[ -f $dir/$name ]]; then
        awk -F'\t' 'NR == 1 { print $3 }' "$dir/$name"
        return 0
      fi
    done
    for name in mariadb_backup_galera_info xtrabackup_galera_info; do
      if [[ -s $dir/$name ]]; then
        awk 'NR == 1 { print $1 }' "$dir/$name"
        return 0
      fi
    done
  else
    if [[ -f $dir/xtrabackup_binlog_info ]]; then
      awk -F'\t' '{ for (i = (NR == 1 ? 3 : 1); i <= NF; i++) printf "%s", $i } END { print "" }' "$dir/xtrabackup_binlog_info" | tr -d ' \n'
      return 0
    fi
  fi
  return 1
}

# The server version recorded in a physical copy's info file.
copy_server_version() {
  local dir=$1 name
  for name in mariadb_backup_info xtrabackup_info; do
    if [[ -f $dir/$name ]]; then
      awk -F' = ' '$1 == "server_version" { print $2; found = 1; exit } END { exit !found }' "$dir/$name" && return 0
    fi
  done
  return 1
}

# Extracts a stored physical artifact into DIR (emptied first), checks the end mark and prepares
# the copy. Fails on a corrupt, truncated or empty artifact.
#   extract_physical ARTIFACT_FILE COMPRESSION DIR
extract_physical() {
  local artifact=$1 compression=$2 dir=$3
  rm -rf "$dir"
  mkdir -p "$dir"
  if ! decompress "$compression" <"$artifact" | "$(xb_stream)" -x -C "$dir"; then
    log "the artifact does not decompress or extract: it is corrupt or truncated"
    return 1
  fi
  if [[ ! -f $dir/$STREAM_END_MARK ]]; then
    if [[ -z $(find "$dir" -mindepth 1 -maxdepth 1 -print -quit) ]]; then
      log "the copy is empty: the member refused or failed before sending anything"
    else
      log "the copy is incomplete: it ends without the member's end mark"
    fi
    return 1
  fi
  rm -f "$dir/$STREAM_END_MARK"
  log "preparing the copy"
  if ! "$(xb_tool)" --prepare --target-dir="$dir" >"$dir.prepare.log" 2>&1; then
    tail -n 20 "$dir.prepare.log" >&2
    log "preparing the copy failed"
    return 1
  fi
  rm -f "$dir.prepare.log"
}

# --- members ----------------------------------------------------------------------------------------

# A client option file for root on a member (mode 0600, in RUN_DIR).
member_cnf() {
  local host=$1 file
  file="${RUN_DIR:?RUN_DIR is not set}/root-$host.cnf"
  [[ -s $file ]] || write_client_cnf "$file" root root-password "$host" "${DB_PORT:?DB_PORT is not set}"
  printf '%s' "$file"
}

# One field of SHOW REPLICA STATUS (by its MySQL or MariaDB name); empty when not a replica.
replica_field() {
  local cnf=$1 a=$2 b=$3
  printf 'SHOW REPLICA STATUS;\n' | "$(db_client)" --defaults-extra-file="$cnf" --batch --connect-timeout=5 |
    awk -F'\t' -v a="$a" -v b="$b" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == a || $i == b) col = i; next } NR == 2 && col { print $col }'
}

# --- the held session ---------------------------------------------------------------------------------

# A client session that stays open while the backup runs: it holds the backup lock and the
# pause of its source. If the backup dies, the session ends and the server releases both
# (a replica's agent then restarts its SQL thread).
HOLD_OUT=()
readonly HOLD_DONE=cdk8s-mysql-statement-done

hold_open() {
  local cnf=$1
  coproc HOLD { exec "$(db_client)" --defaults-extra-file="$cnf" --batch --skip-column-names --unbuffered 2>&1; }
}

# Runs one statement in the held session; its output lines are in HOLD_OUT.
hold_sql() {
  local statement=$1 line
  HOLD_OUT=()
  [[ -n ${HOLD_PID:-} ]] || return 1
  printf '%s;\nSELECT %s;\n' "$statement" "'$HOLD_DONE'" >&"${HOLD[1]}" || return 1
  while IFS= read -r -t 3600 line <&"${HOLD[0]}"; do
    [[ $line != "$HOLD_DONE" ]] || return 0
    HOLD_OUT+=("$line")
  done
  log "the held session failed at '$statement': ${HOLD_OUT[*]:-it ended}"
  return 1
}

hold_close() {
  [[ -n ${HOLD_PID:-} ]] || return 0
  local pid=$HOLD_PID
  [[ -z ${HOLD[1]:-} ]] || eval "exec ${HOLD[1]}>&-"
  wait "$pid" 2>/dev/null || true
}
