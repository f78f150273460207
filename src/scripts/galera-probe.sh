#!/bin/bash
# The probes of a GaleraCluster pod: galera-probe.sh startup|liveness|readiness
#   startup, liveness  the server answers on its socket (an "Access denied" answer counts).
#                      The startup probe fails while galera-start.sh waits for its peers, during
#                      an SST and during crash recovery, within the startup probe's budget;
#                      the liveness probe only begins once the server has answered.
#   readiness          wsrep_ready ON, wsrep_connected ON, wsrep_cluster_status Primary and
#                      wsrep_local_state_comment Synced (also Donor/Desynced when
#                      READY_WHEN_DONOR is true), so that clients only reach nodes that serve
#                      current data.
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
  local out ready connected status state
  [[ -r $CLIENT_CNF ]] || die "no server yet ($CLIENT_CNF is missing)"
  out=$("$(db_client)" --defaults-extra-file="$CLIENT_CNF" --connect-timeout=3 --batch --skip-column-names \
    -e "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_connected', \
      'wsrep_cluster_status', 'wsrep_local_state_comment')" 2>&1) || die "cannot query the server: $out"
  ready=$(awk '$1 == "wsrep_ready" { print $2 }' <<<"$out")
  connected=$(awk '$1 == "wsrep_connected" { print $2 }' <<<"$out")
  status=$(awk '$1 == "wsrep_cluster_status" { print $2 }' <<<"$out")
  state=$(awk '$1 == "wsrep_local_state_comment" { print $2 }' <<<"$out")
  [[ $ready == ON && $connected == ON && $status == Primary ]] ||
    die "not in a Primary Component: wsrep_ready=$ready wsrep_connected=$connected wsrep_cluster_status=$status"
  case $state in
    Synced) ;;
    Donor* | Desynced)
      [[ ${READY_WHEN_DONOR:-false} == true ]] || die "not ready while $state (readyWhenDonor is off)"
      ;;
    *) die "not ready while $state" ;;
  esac
}

case ${1:-} in
  startup | liveness) ping_server ;;
  readiness) check_ready ;;
  *) die "usage: galera-probe.sh startup|liveness|readiness" ;;
esac
