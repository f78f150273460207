#!/bin/bash
# Functions shared by the GaleraCluster scripts (galera-start.sh, galera-status.sh,
# galera-probe.sh). Sourced after lib.sh, never run on its own. Reads only these variables:
#   DATADIR       the data directory (the pod's PersistentVolumeClaim)
#   STATE_DIR     a private runtime directory (emptyDir): generated option files and the
#                 node's published state
#   POD_NAME      this pod's name, NAME-ORDINAL
#   PEERS         every pod's address in ordinal order, space-separated (NAME-0.SERVICE ...)
#   STATUS_PORT   the TCP port on which every pod publishes its state to its peers
#
# The state a pod publishes, one line: STATE UUID SEQNO SAFE_TO_BOOTSTRAP, '-' when unknown.
#   recovering - - -          the start script is still reading its own position
#   waiting UUID SEQNO SAFE   the server is stopped and its last committed position is known
#   starting - - -            the server was started and cannot be asked yet (joining, SST,
#                             crash recovery), or it is running but does not answer
#   primary UUID SEQNO -      the server runs in a Primary Component
#   non-primary UUID SEQNO -  the server runs outside any Primary Component
# A peer that does not answer is recorded as "unreachable - - -". A running server adds a second
# line, "addresses ADDRESS,...": the members of its component (wsrep_incoming_addresses, each
# member's IP and SQL port). Readers that only take the first line see the format above.
set -euo pipefail

readonly ZERO_UUID=00000000-0000-0000-0000-000000000000

# This pod's ordinal: the number after the last '-' of its name.
my_ordinal() {
  local ordinal=${POD_NAME##*-}
  [[ $ordinal =~ ^[0-9]+$ ]] || die "POD_NAME '$POD_NAME' does not end in -ORDINAL: the pod must belong to a StatefulSet"
  printf '%s' "$ordinal"
}

# Prints one field of grastate.dat (uuid, seqno, safe_to_bootstrap); nothing when absent.
grastate_field() {
  local file="$DATADIR/grastate.dat"
  [[ -r $file ]] || return 0
  awk -v key="$1:" '$1 == key { print $2 }' "$file"
}

# Recovers the last committed position from InnoDB after a crash: prints UUID:SEQNO.
# The server only reads its data files and exits; it opens no port.
recover_position() {
  local out position
  if ! out=$(mariadbd --defaults-file="$STATE_DIR/my.cnf" --wsrep-recover --skip-log-error \
    --skip-networking --socket="$STATE_DIR/recover.sock" 2>&1); then
    printf '%s\n' "$out" | tail -n 30 >&2
    die "mariadbd --wsrep-recover failed (its last lines are above); the data directory needs a look"
  fi
  position=$(printf '%s\n' "$out" | sed -n 's/.*WSREP: Recovered position: *//p' | tail -n 1)
  # With wsrep_gtid_mode the position carries ",GTID" suffixes.
  position=${position%%,*}
  [[ $position =~ ^[0-9a-f-]{36}:-?[0-9]+$ ]] || {
    printf '%s\n' "$out" | tail -n 30 >&2
    die "mariadbd --wsrep-recover printed no position (its last lines are above)"
  }
  printf '%s' "$position"
}

# Prints this node's last committed position as "UUID SEQNO SAFE_TO_BOOTSTRAP":
#   - after a clean shutdown: what grastate.dat says
#   - after a crash (grastate.dat names the cluster, with seqno -1): what InnoDB recovers
#   - otherwise no position: ZERO_UUID -1 0
# Galera itself uses a recovered position only when grastate.dat names the same cluster (it
# ignores --wsrep-start-position otherwise and requests a full state transfer), and it leaves no
# UUID (an empty file, or the zero UUID) whenever the data files may not match any position: while
# it applies a DDL or another total-order action, while it requests a state transfer (before any
# byte arrives, so an interrupted mariabackup or rsync transfer never shows a UUID), and for good
# after an inconsistency. The data files can look complete in every one of these cases (InnoDB
# recovers a valid UUID:SEQNO), and nothing on disk tells them apart, so none of them counts as data.
local_position() {
  local uuid seqno safe position
  uuid=$(grastate_field uuid)
  seqno=$(grastate_field seqno)
  safe=$(grastate_field safe_to_bootstrap)
  if [[ ! -d $DATADIR/mysql || -z $uuid || $uuid == "$ZERO_UUID" ]]; then
    printf '%s -1 0' "$ZERO_UUID"
    return
  fi
  if [[ -z $seqno || $seqno == -1 ]]; then
    position=$(recover_position)
    if [[ ${position%%:*} != "$uuid" ]]; then
      log "InnoDB recovered $position, not a position of the cluster $uuid that grastate.dat names: this node has no usable position (Galera would ignore it too)"
      printf '%s -1 0' "$ZERO_UUID"
      return
    fi
    seqno=${position#*:}
  fi
  printf '%s %s %s' "$uuid" "$seqno" "${safe:-0}"
}

# An ungraceful stop can leave an empty or truncated gvwstate.dat, with which Galera refuses to
# start ("invalid UUID"); without it the node joins or re-forms the normal way.
discard_unusable_gvwstate() {
  local file="$DATADIR/gvwstate.dat"
  if [[ -f $file ]] && ! { grep -qE '^my_uuid: *[0-9a-f-]{36}$' "$file" && grep -q '^#vwend' "$file"; }; then
    log "removing an unusable gvwstate.dat (left by an ungraceful stop)"
    rm -f "$file"
  fi
}

# True when this node holds data of some cluster (a position with a non-zero UUID).
has_data() {
  [[ $1 != "$ZERO_UUID" ]]
}

# Asks the local server for its Galera state; prints a state line (primary / non-primary, or
# disconnected when its provider is closed: it left the cluster for good and needs a restart)
# or fails when the server does not answer. With the argument "addresses", a second line lists
# the members of its component.
server_state() {
  local out status uuid seqno connected addresses
  out=$(timeout 5 "$(db_client)" --defaults-extra-file="$STATE_DIR/client.cnf" --connect-timeout=2 \
    --batch --skip-column-names -e "SHOW GLOBAL STATUS WHERE Variable_name IN \
      ('wsrep_cluster_status', 'wsrep_cluster_state_uuid', 'wsrep_last_committed', 'wsrep_connected', \
       'wsrep_incoming_addresses')" 2>/dev/null) || return 1
  status=$(awk '$1 == "wsrep_cluster_status" { print $2 }' <<<"$out")
  uuid=$(awk '$1 == "wsrep_cluster_state_uuid" { print $2 }' <<<"$out")
  seqno=$(awk '$1 == "wsrep_last_committed" { print $2 }' <<<"$out")
  connected=$(awk '$1 == "wsrep_connected" { print $2 }' <<<"$out")
  [[ -n $status && -n $uuid && -n $seqno ]] || return 1
  if [[ $connected == OFF ]]; then
    printf 'disconnected %s %s -\n' "$uuid" "$seqno"
  elif [[ $status == Primary ]]; then
    printf 'primary %s %s -\n' "$uuid" "$seqno"
  else
    printf 'non-primary %s %s -\n' "$uuid" "$seqno"
  fi
  if [[ ${1:-} == addresses ]]; then
    addresses=$(awk '$1 == "wsrep_incoming_addresses" { print $2 }' <<<"$out")
    printf 'addresses %s\n' "$addresses"
  fi
}

# This node's state line, as published to its peers. A disconnected server is about to be
# restarted by galera-start.sh: it counts as starting, so that nobody decides without it.
status_line() {
  local phase uuid seqno safe state
  read -r phase uuid seqno safe <"$STATE_DIR/state" 2>/dev/null || phase=recovering
  case $phase in
    waiting) printf 'waiting %s %s %s\n' "$uuid" "$seqno" "$safe" ;;
    started)
      if state=$(server_state addresses) && [[ $state != disconnected* ]]; then
        printf '%s\n' "$state"
      else
        printf 'starting - - -\n'
      fi
      ;;
    *) printf 'recovering - - -\n' ;;
  esac
}

# Publishes this node's phase (recovering, waiting, started) and, when waiting, its position.
set_state() {
  atomic_write "$STATE_DIR/state" "$*"$'\n'
}

# Checks that a line is a well-formed state line.
valid_state_line() {
  [[ $1 =~ ^(recovering|starting)\ -\ -\ -$ ]] ||
    [[ $1 =~ ^waiting\ [0-9a-f-]{36}\ -?[0-9]+\ [01]$ ]] ||
    [[ $1 =~ ^(primary|non-primary)\ [0-9a-f-]{36}\ -?[0-9]+\ -$ ]]
}

# Asks one peer for its state line; prints "unreachable - - -" when it does not answer.
peer_state() {
  local line
  line=$(timeout 4 socat -T 3 -u "TCP:$1:$STATUS_PORT,connect-timeout=2" STDOUT 2>/dev/null | head -n 1) || true
  if valid_state_line "$line"; then
    printf '%s\n' "$line"
  else
    printf 'unreachable - - -\n'
  fi
}

# Asks one peer for the members of its component; prints them, comma-separated, when the peer
# runs in a Primary Component, and nothing otherwise (or when it does not answer).
primary_members() {
  local answer state members
  answer=$(timeout 4 socat -T 3 -u "TCP:$1:$STATUS_PORT,connect-timeout=2" STDOUT 2>/dev/null | head -n 2) || true
  state=${answer%%$'\n'*}
  members=${answer#*$'\n'}
  if valid_state_line "$state" && [[ $state == primary\ * && $members =~ ^addresses\ ([][0-9A-Za-z.:_,-]+)$ ]]; then
    printf '%s\n' "${BASH_REMATCH[1]}"
  fi
}

# The host of an address HOST:PORT, [IPV6]:PORT or HOST, without brackets.
address_host() {
  local host=$1
  if [[ $host == \[*\]* ]]; then
    host=${host#[}
    host=${host%%]*}
  elif [[ $host == *:*:* ]]; then
    : # a bare IPv6 address, no port
  else
    host=${host%:*}
  fi
  printf '%s' "$host"
}

# After a crash, the peers go on counting the node's previous instance as a member of their
# Primary Component until they evict it (evs.suspect_timeout, 5 s by default; at the latest
# evs.inactive_timeout). A new instance that joins before that does not get in before Galera's
# install timeout. Prints the ordinal of a peer whose Primary Component still counts a member at
# ADDRESS (this node's IP), or fails: no peer runs in a Primary Component, or none counts it.
counted_by_primary() {
  local address=$1 me i dir member
  local -a peers members
  me=$(my_ordinal)
  read -r -a peers <<<"${PEERS:?PEERS is not set}"
  dir=$(mktemp -d "$STATE_DIR/poll.XXXXXX")
  for i in "${!peers[@]}"; do
    if ((i != me)); then
      primary_members "${peers[$i]}" >"$dir/$i" &
    fi
  done
  wait
  for i in "${!peers[@]}"; do
    ((i != me)) || continue
    members=()
    IFS=, read -r -a members <"$dir/$i" || true
    for member in "${members[@]}"; do
      if [[ $(address_host "$member") == "$address" ]]; then
        rm -rf "$dir"
        printf '%s\n' "$i"
        return 0
      fi
    done
  done
  rm -rf "$dir"
  return 1
}

# Whether a node about to join a Primary Component waits first: it does when it has data (UUID
# is not the zero UUID), the script has run for less than CAP seconds (SECONDS), and a Primary
# Component still counts a member at ADDRESS; then it prints the ordinal of that peer.
hold_rejoin() {
  local uuid=$1 address=$2 cap=$3
  has_data "$uuid" && ((SECONDS < cap)) && counted_by_primary "$address"
}

# Prints "ORDINAL STATE UUID SEQNO SAFE" for every node, in ordinal order: this node's own line
# (given as the argument) and every peer's answer, asked in parallel.
poll_all() {
  local own=$1 me i dir
  local -a peers
  me=$(my_ordinal)
  read -r -a peers <<<"${PEERS:?PEERS is not set}"
  dir=$(mktemp -d "$STATE_DIR/poll.XXXXXX")
  for i in "${!peers[@]}"; do
    if ((i != me)); then
      peer_state "${peers[$i]}" >"$dir/$i" &
    fi
  done
  wait
  for i in "${!peers[@]}"; do
    if ((i == me)); then
      printf '%s %s\n' "$i" "$own"
    else
      printf '%s %s\n' "$i" "$(<"$dir/$i")"
    fi
  done
  rm -rf "$dir"
}

# The decision, from the lines of poll_all on stdin, for the node with ordinal ME:
#   join ORDINAL       a peer runs in a Primary Component: join it
#   bootstrap          every node answered, none runs in or towards a Primary Component, and
#                      node ME holds the most advanced position: ME must bootstrap
#   wait REASON        anything else
# The most advanced position: data of a cluster before none, then the highest seqno, then
# safe_to_bootstrap 1 (the last node to leave after a clean shutdown), then the lowest
# ordinal. For a brand-new cluster (no node has data) that is ordinal 0.
decide() {
  local me=$1 ordinal state uuid seqno safe data
  local best='' best_key='' key primary='' blocked=()
  local -A uuids=()
  while read -r ordinal state uuid seqno safe; do
    case $state in
      primary) primary=${primary:-$ordinal} ;;
      waiting | non-primary)
        [[ $safe == 1 ]] || safe=0
        data=0
        if has_data "$uuid"; then
          data=1
          uuids[$uuid]=1
        fi
        # a sort key: larger is more advanced (seqno offset so that -1 sorts lowest)
        key=$(printf '%d %020d %d %010d' "$data" "$((seqno + 1))" "$safe" "$((999999999 - ordinal))")
        if [[ -z $best_key || $key > "$best_key" ]]; then
          best_key=$key
          best=$ordinal
        fi
        ;;
      *) blocked+=("$ordinal:$state") ;;
    esac
  done
  if [[ -n $primary ]]; then
    printf 'join %s\n' "$primary"
  elif ((${#blocked[@]} > 0)); then
    printf 'wait for %s\n' "${blocked[*]}"
  elif [[ $best == "$me" ]]; then
    if ((${#uuids[@]} > 1)); then
      log "WARNING: the nodes hold data of ${#uuids[@]} different clusters (${!uuids[*]}); nodes of another cluster will receive a full state transfer"
    fi
    printf 'bootstrap\n'
  else
    printf 'wait for %s to bootstrap (most advanced position)\n' "$best"
  fi
}
