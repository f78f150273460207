#!/bin/bash
# The probes of a GaleraCluster pod: galera-probe.sh startup|liveness|readiness
#   startup, liveness  the server answers on its socket (an "Access denied" answer counts).
#                      The startup probe fails while galera-start.sh waits for its peers, during
#                      an SST and during crash recovery, within the startup probe's budget;
#                      the liveness probe only begins once the server has answered.
#   readiness          wsrep_ready ON, wsrep_connected ON, wsrep_cluster_status Primary and
#                      wsrep_local_state_comment Synced, so that clients only reach nodes that
#                      serve current data. A node that a backup desynchronized (wsrep_desync ON)
#                      stays ready while it keeps up: while its queue of received, not yet
#                      applied write sets (wsrep_local_recv_queue) is no longer than flow control
#                      lets a synced node's grow (gcs.fc_limit). It goes on applying and accepting
#                      writes, so a backup never takes the nodes out of the Services (not even a
#                      single node's); only one that falls behind is. A state-transfer donor
#                      (Donor/Desynced without wsrep_desync) is ready only when READY_WHEN_DONOR
#                      is true (an rsync donor does not accept writes).
# Credentials come from the 0600 option file galera-start.sh wrote in STATE_DIR.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

SCRIPTS_DIR=$(cd "$(dirname "$0")" && pwd)
source "$SCRIPTS_DIR/lib.sh"

: "${STATE_DIR:?}"
CLIENT_CNF="$STATE_DIR/client.cnf"

ping_server() {
  [[ -r $CLIENT_CNF ]] || die "no server yet ($CLIENT_CNF is missing)"
  "$(db_admin)" --defaults-extra-file="$CLIENT_CNF" --connect-timeout=3 ping >/dev/null 2>&1 ||
    die "the server does not answer on its socket"
}

check_ready() {
  local out ready connected status state desync queue limit
  [[ -r $CLIENT_CNF ]] || die "no server yet ($CLIENT_CNF is missing)"
  out=$("$(db_client)" --defaults-extra-file="$CLIENT_CNF" --connect-timeout=3 --batch --skip-column-names \
    -e "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_connected', \
      'wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_local_recv_queue'); \
      SELECT 'wsrep_desync', IF(@@GLOBAL.wsrep_desync, 'ON', 'OFF'); \
      SELECT 'fc_limit', REPLACE(@@GLOBAL.wsrep_provider_options, ' ', '')" 2>&1) || die "cannot query the server: $out"
  ready=$(awk '$1 == "wsrep_ready" { print $2 }' <<<"$out")
  connected=$(awk '$1 == "wsrep_connected" { print $2 }' <<<"$out")
  status=$(awk '$1 == "wsrep_cluster_status" { print $2 }' <<<"$out")
  state=$(awk '$1 == "wsrep_local_state_comment" { print $2 }' <<<"$out")
  queue=$(awk '$1 == "wsrep_local_recv_queue" { print $2 }' <<<"$out")
  desync=$(awk '$1 == "wsrep_desync" { print $2 }' <<<"$out")
  limit=$(awk '$1 == "fc_limit" { print $2 }' <<<"$out" | sed -n 's/.*gcs\.fc_limit=\([0-9]*\).*/\1/p')
  [[ $ready == ON && $connected == ON && $status == Primary ]] ||
    die "not in a Primary Component: wsrep_ready=$ready wsrep_connected=$connected wsrep_cluster_status=$status"
  case $state in
    Synced) ;;
    Donor* | Desynced)
      if [[ $desync == ON ]]; then
        # desynchronized by a backup: ready while it keeps up
        [[ $queue =~ ^[0-9]+$ ]] || die "desynchronized, and its receive queue is unknown ('$queue')"
        ((queue <= ${limit:-16})) ||
          die "desynchronized by a backup and behind: $queue write sets wait to be applied (more than gcs.fc_limit ${limit:-16})"
      else
        [[ ${READY_WHEN_DONOR:-false} == true ]] || die "not ready while $state (readyWhenDonor is off)"
      fi
      ;;
    *) die "not ready while $state" ;;
  esac
}

case ${1:-} in
  startup | liveness) ping_server ;;
  readiness) check_ready ;;
  *) die "usage: galera-probe.sh startup|liveness|readiness" ;;
esac
