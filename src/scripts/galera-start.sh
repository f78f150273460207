#!/bin/bash
# The command of a GaleraCluster pod (PID 1 of its mariadb container). It decides how this node
# starts, with no controller and no human step, then runs mariadbd and watches it.
#
# Every pod publishes its state on STATUS_PORT (socat runs galera-status.sh per connection):
# recovering, waiting with its last committed position (UUID SEQNO SAFE_TO_BOOTSTRAP),
# starting, primary or non-primary (see galera-lib.sh). A pod that starts:
#
#  1. Reads its own position: grastate.dat after a clean shutdown; mariadbd --wsrep-recover after
#     a crash (grastate.dat names the cluster with seqno -1); nothing for an empty data directory,
#     nor when grastate.dat names no cluster (see local_position in galera-lib.sh). It then
#     publishes "waiting UUID SEQNO SAFE" and asks every peer of PEERS, once a second.
#  2. JOIN: as soon as one peer runs in a Primary Component, it starts mariadbd normally, with
#     --wsrep-start-position when it has data, so that a node that crashed catches up by IST
#     instead of a full SST (a plain restart after a crash would request a full SST). A node
#     with data first waits while that Primary Component still counts its previous instance
#     (a member at POD_IP, see counted_by_primary in galera-lib.sh), until the peers have
#     evicted it, at most until REJOIN_WAIT seconds after this script started: a join before
#     the eviction stalls until Galera's install timeout and takes longer. Without a Primary
#     Component (every node crashed) or without data (a new node) there is nothing to wait for.
#  3. RE-FORM: a node that crashed inside a Primary Component keeps gvwstate.dat (pc.recovery).
#     When some peer is starting, running outside a Primary Component or not answering yet, it
#     starts mariadbd normally: Galera re-forms that Primary Component by itself once every one
#     of its members is back, and never with fewer. This is tried once per gvwstate.dat.
#  4. BOOTSTRAP: when every node of PEERS answers, none is in or on its way into a Primary
#     Component (each is waiting, or runs outside any Primary Component), and this node holds
#     the most advanced position among them all, it confirms the same answers three times in a
#     row, sets safe_to_bootstrap: 1 and starts with --wsrep-new-cluster (never kept for a
#     later restart: every start decides anew). The most advanced position: data before no
#     data, then the highest seqno, then safe_to_bootstrap 1 (the last node to leave a clean
#     shutdown), then the lowest ordinal. When no node has data (a brand-new cluster) that is
#     ordinal 0, which first initializes its data directory and creates the root and SST users
#     from the Secret.
#  5. Otherwise it waits: for an unreachable, recovering or starting peer, or for the winner.
#
# Why this is safe: a server is only started without --wsrep-new-cluster (steps 2 and 3, where
# Galera's own quorum rules apply) or by the single winner of step 4. Step 4 needs an answer
# from every node (not a majority): a node that is missing may hold the newest transactions, for
# instance the last survivor of nodes that left one by one. From a state where no server runs,
# only the winner can start one; every other node waits for it, and positions do not change
# while servers are stopped, so every node computes the same winner. A node with a lost volume
# answers "no data" and gets a full SST once the cluster runs: what only it held is lost, but the
# cluster recovers. A node that cannot start at all (unschedulable pod) blocks step 4 until it is
# back, or until a human removes it from the StatefulSet; this is the price of never losing data.
#
# After starting mariadbd this script stays PID 1: it forwards SIGTERM/SIGINT to mariadbd and
# exits with mariadbd's status, and it watches the server:
#  - a server started by step 2 or 3 that is not a member of a Primary Component within
#    JOIN_TIMEOUT seconds (no SQL, no new view in gvwstate.dat, no SST in progress), or whose
#    Primary Component to join is gone, is killed, as it has changed nothing; the container
#    restarts and decides again (with a gvwstate.dat that has had its chance, step 3 is skipped);
#  - a running server outside any Primary Component, while every peer is stopped and it holds
#    the most advanced position, makes its component Primary (pc.bootstrap=YES): step 4 for a
#    node that survived the others;
#  - a running server disconnected from the cluster for good (wsrep_connected OFF, which Galera
#    leaves behind after errors such as a failed IST) is stopped, so that its restart rejoins.
#
# Environment (besides those of lib.sh and galera-lib.sh):
#   CONFIG_FILE    the shared galera.cnf (ConfigMap); DB_SOCKET the server socket
#   POD_IP         this pod's IP (wsrep_node_address)
#   SST_USER       the database user of mariabackup SST; its password is the Secret key
#                  sst-password, root's is root-password
#   JOIN_TIMEOUT   seconds, see above (default 60)
#   REJOIN_WAIT    seconds, see step 2 (default 15: Galera's evs.inactive_timeout, by which any
#                  crashed member is evicted)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

SCRIPTS_DIR=$(cd "$(dirname "$0")" && pwd)
source "$SCRIPTS_DIR/lib.sh"
source "$SCRIPTS_DIR/galera-lib.sh"
# metrics: EXPORTER_CNF set; the node creates the exporter's account once it runs (exporter-lib.sh)
if [[ -n ${EXPORTER_CNF:-} ]]; then
  source "$SCRIPTS_DIR/exporter-lib.sh"
fi
EXPORTER_READY=0

: "${DATADIR:?}" "${STATE_DIR:?}" "${POD_NAME:?}" "${POD_IP:?}" "${PEERS:?}" "${STATUS_PORT:?}"
: "${CONFIG_FILE:?}" "${DB_SOCKET:?}" "${SST_USER:?}"
JOIN_TIMEOUT=${JOIN_TIMEOUT:-60}
REJOIN_WAIT=${REJOIN_WAIT:-15}
readonly CONFIRMATIONS=3

ORDINAL=$(my_ordinal)
STATUS_PID=''
SERVER_PID=''
STOPPING=0

on_signal() {
  STOPPING=1
  if [[ -n $SERVER_PID ]]; then
    log "stopping mariadbd"
    kill -TERM "$SERVER_PID" 2>/dev/null || true
  else
    log "stopping before a server was started"
    exit 0
  fi
}

cleanup() {
  if [[ -n $STATUS_PID ]]; then
    kill "$STATUS_PID" 2>/dev/null || true
  fi
  rm -f "$STATE_DIR/state"
}

# The server's option file: the shared galera.cnf plus this node's own settings and the SST
# credentials (mode 0600, in STATE_DIR, never in the ConfigMap, the environment or a command line).
write_server_cnf() {
  local address=$POD_IP password
  [[ $address != *:* ]] || address="[$address]"
  password=$(read_secret sst-password)
  local tmp="$STATE_DIR/my.cnf.tmp.$$"
  (
    umask 077
    cat >"$tmp" <<EOF
# Written by galera-start.sh: the shared settings, then this node's own.
!include $CONFIG_FILE

[mariadbd]
datadir = $DATADIR
socket = $DB_SOCKET
pid_file = $STATE_DIR/mariadbd.pid
wsrep_node_name = $POD_NAME
wsrep_node_address = $address
wsrep_sst_auth = $(cnf_quote "$SST_USER:$password")
EOF
  )
  mv -f "$tmp" "$STATE_DIR/my.cnf"
}

start_status_server() {
  socat TCP-LISTEN:"$STATUS_PORT",reuseaddr,fork EXEC:"bash $SCRIPTS_DIR/galera-status.sh" &
  STATUS_PID=$!
}

# Restarts the status server if it died (peers cannot decide without this node's answer).
check_status_server() {
  if ! kill -0 "$STATUS_PID" 2>/dev/null; then
    log "the status server on port $STATUS_PORT exited; restarting it"
    start_status_server
  fi
}

# The saved Primary Component view (the view_id line of gvwstate.dat), or "none". Galera
# rewrites the file when it restores it at start, but the view_id only changes when the node
# enters a new Primary Component: before any SST or IST.
gvwstate_signature() {
  local view=''
  if [[ -f $DATADIR/gvwstate.dat ]]; then
    view=$(grep -m 1 '^view_id:' "$DATADIR/gvwstate.dat" || true)
  fi
  printf '%s' "${view:-none}"
}

# A re-form (step 3) needs data and a saved view, and is tried once per saved view.
reform_allowed() {
  has_data "$UUID" && [[ -f $DATADIR/gvwstate.dat ]] &&
    [[ $(gvwstate_signature) != "$(cat "$STATE_DIR/reform-tried" 2>/dev/null || true)" ]]
}

server_answers() {
  "$(db_admin)" --defaults-extra-file="$STATE_DIR/client.cnf" --connect-timeout=2 ping >/dev/null 2>&1
}

sleep_1() {
  sleep 1 &
  wait $! || true
}

# Steps 1 to 5: sets ACTION to join, reform or bootstrap.
elect() {
  local answers decision last='' stable=0 said='' said_at=0 counter held=0
  while :; do
    check_status_server
    answers=$(poll_all "waiting $UUID $SEQNO $SAFE")
    decision=$(decide "$ORDINAL" <<<"$answers")
    if [[ $decision == join* ]]; then
      if counter=$(hold_rejoin "$UUID" "$POD_IP" "$REJOIN_WAIT"); then
        if ((!held)); then
          log "the Primary Component of node $counter still counts this node's previous instance ($POD_IP): waiting until it is evicted (at most ${REJOIN_WAIT}s after this start), as a join before that stalls until Galera's install timeout"
          held=1
        fi
        sleep_1
        continue
      fi
      if ((held)) && ((SECONDS >= REJOIN_WAIT)); then
        log "stopped waiting for the eviction of this node's previous instance after ${REJOIN_WAIT}s; joining"
      elif ((held)); then
        log "the peers have evicted this node's previous instance"
      fi
      log "node ${decision#join } runs in a Primary Component: joining it"
      ACTION='join'
      return
    fi
    if reform_allowed && grep -qE '^[0-9]+ (starting|non-primary|unreachable) ' <<<"$answers"; then
      log "no Primary Component; this node crashed inside one (gvwstate.dat): starting normally so that Galera re-forms it once all of its members are back"
      ACTION='reform'
      return
    fi
    if [[ $decision == bootstrap ]]; then
      if [[ $answers == "$last" ]]; then
        stable=$((stable + 1))
      else
        stable=1
        last=$answers
      fi
      if ((stable >= CONFIRMATIONS)); then
        log "every node answered, none runs a server, and this node holds the most advanced position: bootstrapping. Answers:"
        printf '  %s\n' "${answers//$'\n'/$'\n'  }" >&2
        ACTION='bootstrap'
        return
      fi
    else
      stable=0
      last=''
    fi
    if [[ $decision == bootstrap ]]; then
      decision="this node holds the most advanced position; confirming before bootstrapping"
    fi
    if [[ $decision != "$said" ]] || ((SECONDS - said_at >= 30)); then
      log "no Primary Component yet: $decision"
      said=$decision
      said_at=$SECONDS
    fi
    sleep_1
  done
}

# The SQL that creates the users of a new cluster. Passwords go to mariadbd on stdin only.
bootstrap_sql() {
  local root sst
  root=$(sql_secret root-password)
  sst=$(sql_secret sst-password)
  cat <<EOF
FLUSH PRIVILEGES;
DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', ''@'localhost';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS ''root''@''', @@hostname, ''', ''''@''', @@hostname, '''');
ALTER USER 'root'@'localhost' IDENTIFIED BY $root;
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY $root;
ALTER USER 'root'@'%' IDENTIFIED BY $root;
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS $(sql_quote "$SST_USER")@'localhost' IDENTIFIED BY $sst;
ALTER USER $(sql_quote "$SST_USER")@'localhost' IDENTIFIED BY $sst;
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, REPLICA MONITOR ON *.* TO $(sql_quote "$SST_USER")@'localhost';
EOF
}

# A brand-new cluster: initialize the data directory (unless a previous attempt did) and create
# the users. Both steps can be repeated safely; no existing data is ever removed.
init_new_cluster() {
  local out
  if [[ ! -d $DATADIR/mysql ]]; then
    log "initializing the data directory of a new cluster"
    out=$(mariadb-install-db --defaults-file="$STATE_DIR/my.cnf" --skip-test-db \
      --auth-root-authentication-method=normal 2>&1) || {
      printf '%s\n' "$out" >&2
      die "mariadb-install-db failed"
    }
  fi
  log "creating the root and SST users"
  out=$(bootstrap_sql | mariadbd --defaults-file="$STATE_DIR/my.cnf" --bootstrap --wsrep-on=OFF \
    --skip-networking --skip-log-error 2>&1) || {
    # an error message may quote the statement: never print the passwords
    local secret quoted secrets=()
    secrets+=("$(read_secret root-password)") || true
    secrets+=("$(read_secret sst-password)") || true
    for secret in "${secrets[@]}"; do
      [[ -n $secret ]] || continue
      quoted=$(sql_quote "$secret")
      quoted=${quoted:1:${#quoted}-2}
      out=${out//"$secret"/<password>}
      out=${out//"$quoted"/<password>}
    done
    printf '%s\n' "$out" | grep -v '\[Note\]' >&2
    die "creating the users failed"
  }
}

set_safe_to_bootstrap() {
  local file="$DATADIR/grastate.dat"
  if [[ -f $file ]]; then
    sed 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$file" >"$file.tmp"
    mv -f "$file.tmp" "$file"
  fi
}

# Kills a server that is not (yet) a member of any Primary Component, so it has changed no data,
# and exits: the container's restart decides again.
abandon_start() {
  log "$1; stopping it (it has changed no data) to decide again"
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  exit 1
}

# Runs mariadbd in the background and watches it until it exits; exits with its status.
run_server() {
  local mode=$1
  shift
  local before started joined=0 next_watch=0 lost=0 rc
  before=$(gvwstate_signature)
  started=$SECONDS
  set_state started
  log "starting mariadbd $*"
  mariadbd --defaults-file="$STATE_DIR/my.cnf" "$@" &
  SERVER_PID=$!
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    if ((STOPPING)); then
      if ((RESTART_DEADLINE > 0 && SECONDS > RESTART_DEADLINE)); then
        log "mariadbd did not stop within 60s; killing it"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        RESTART_DEADLINE=0
      fi
    elif ((!joined)); then
      if [[ $mode == bootstrap ]] || server_answers || [[ $(gvwstate_signature) != "$before" ]] || [[ -e $DATADIR/sst_in_progress ]]; then
        joined=1
        log "this node is a member of a Primary Component"
      elif ((SECONDS - started > JOIN_TIMEOUT)); then
        abandon_start "the server did not become a member of a Primary Component within ${JOIN_TIMEOUT}s"
      elif [[ $mode == join ]] && ((SECONDS >= next_watch)); then
        # the Primary Component this node set out to join may be gone (e.g. its last member lost
        # quorum): then waiting for it is pointless
        next_watch=$((SECONDS + 5))
        if [[ $(decide "$ORDINAL" <<<"$(poll_all 'starting - - -')") == join* ]]; then
          lost=0
        else
          lost=$((lost + 1))
          ((lost < 2)) || abandon_start "no peer runs in a Primary Component any more"
        fi
      fi
    elif ((SECONDS >= next_watch)); then
      next_watch=$((SECONDS + 5))
      watch_primary
      if [[ -n ${EXPORTER_CNF:-} ]] && ((!EXPORTER_READY)) && [[ $(server_state 2>/dev/null || true) == primary* ]]; then
        if ensure_exporter_user "$STATE_DIR/client.cnf"; then EXPORTER_READY=1; fi
      fi
    fi
    sleep_1
  done
  wait "$SERVER_PID" && rc=0 || rc=$?
  log "mariadbd exited with status $rc"
  if ((SELF_RESTART)); then
    exit 1
  fi
  exit "$rc"
}

# Watches a running server (every 5 s):
#  - outside any Primary Component, while every peer is stopped and this node holds the most
#    advanced position, it makes its component Primary (step 4 for a running node);
#  - disconnected from the cluster for good (wsrep_connected OFF, e.g. after a failed IST, which
#    Galera answers with "node restart required"), it is restarted: the container exits and its
#    restart decides again.
NP_LAST=''
NP_STABLE=0
DISCONNECTED=0
RESTART_DEADLINE=0
SELF_RESTART=0
watch_primary() {
  local own answers decision
  if ! own=$(server_state); then
    DISCONNECTED=0
    NP_LAST=''
    NP_STABLE=0
    return
  fi
  if [[ $own == disconnected* ]]; then
    DISCONNECTED=$((DISCONNECTED + 1))
    if ((DISCONNECTED >= CONFIRMATIONS)); then
      log "the server is disconnected from the cluster (wsrep_connected OFF) and cannot rejoin by itself: restarting it"
      STOPPING=1
      SELF_RESTART=1
      RESTART_DEADLINE=$((SECONDS + 60))
      kill -TERM "$SERVER_PID" 2>/dev/null || true
    fi
    return
  fi
  DISCONNECTED=0
  if [[ $own != non-primary* ]]; then
    NP_LAST=''
    NP_STABLE=0
    return
  fi
  check_status_server
  answers=$(poll_all "$own")
  decision=$(decide "$ORDINAL" <<<"$answers")
  if [[ $decision != bootstrap ]]; then
    NP_LAST=''
    NP_STABLE=0
    return
  fi
  if [[ $answers == "$NP_LAST" ]]; then
    NP_STABLE=$((NP_STABLE + 1))
  else
    NP_STABLE=1
    NP_LAST=$answers
  fi
  if ((NP_STABLE >= CONFIRMATIONS)); then
    log "this server runs outside any Primary Component, every peer is stopped, and it holds the most advanced position: making its component Primary (pc.bootstrap)"
    "$(db_client)" --defaults-extra-file="$STATE_DIR/client.cnf" --connect-timeout=2 \
      -e "SET GLOBAL wsrep_provider_options = 'pc.bootstrap=YES'" || log "pc.bootstrap failed; retrying later"
    NP_LAST=''
    NP_STABLE=0
  fi
}

main() {
  trap on_signal TERM INT
  trap cleanup EXIT
  mkdir -p "$STATE_DIR"
  rm -rf "$STATE_DIR"/poll.* "$STATE_DIR"/*.tmp.*
  set_state recovering
  write_server_cnf
  write_client_cnf "$STATE_DIR/client.cnf" root root-password
  start_status_server

  discard_unusable_gvwstate
  local position
  position=$(local_position)
  read -r UUID SEQNO SAFE <<<"$position"
  if has_data "$UUID"; then
    log "this node's last committed position: $UUID:$SEQNO (safe_to_bootstrap: $SAFE)"
  elif [[ -d $DATADIR/mysql ]]; then
    log "this node has no data of a cluster yet: its data files have no usable Galera position (grastate.dat names no cluster: a first start or a state transfer that did not finish, a crash while Galera applied a DDL, or an inconsistency); a full state transfer replaces them when it joins"
  else
    log "this node has no data of a cluster yet"
  fi
  set_state waiting "$UUID" "$SEQNO" "$SAFE"

  elect
  case $ACTION in
    join)
      if has_data "$UUID"; then
        run_server join --wsrep-start-position="$UUID:$SEQNO"
      else
        run_server join
      fi
      ;;
    reform)
      gvwstate_signature >"$STATE_DIR/reform-tried"
      run_server reform --wsrep-start-position="$UUID:$SEQNO"
      ;;
    bootstrap)
      if has_data "$UUID"; then
        set_safe_to_bootstrap
        run_server bootstrap --wsrep-new-cluster --wsrep-start-position="$UUID:$SEQNO"
      else
        init_new_cluster
        run_server bootstrap --wsrep-new-cluster
      fi
      ;;
  esac
}

main "$@"
