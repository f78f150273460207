#!/bin/bash
# Agent sidecar of a MySqlReplicationCluster pod. On a replica, every few seconds while the
# server runs, it makes sure that:
#   - a MySQL replica is seeded: it clones the best donor (ERROR 3707 = done; Kubernetes restarts
#     the server) and marks the volume seeded once the server runs on the completed clone;
#   - replication from the primary is configured (the copy's position applied at most once) and
#     both threads run;
#   - a MySQL replica has super_read_only on.
# On the primary it gives the replication account the REQUIRE clause of the cluster's TLS setting
# and, with metrics (EXPORTER_CNF set), creates the exporter's account once the server runs (see
# exporter-lib.sh); replication carries both to the replicas. On every pod it reloads a renewed
# certificate (TLS). Configured only by environment variables: see replication-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}"
if [[ -n ${EXPORTER_CNF:-} ]]; then
  # shellcheck source-path=SCRIPTDIR source=exporter-lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/exporter-lib.sh"
fi

readonly PERIOD_SECONDS=5
# Until a replica's server answers for the first time, look every second: a new replica then
# replicates (and becomes ready) about as soon as its server runs, not up to 5 s later.
readonly STARTUP_PERIOD_SECONDS=1

main() {
  local ordinal role account_done='' exporter_ready=1
  [[ -z ${EXPORTER_CNF:-} ]] || exporter_ready=0
  ordinal=$(pod_ordinal)
  role=$(role_of "$ordinal")
  trap 'log "stopping"; exit 0' TERM INT
  log "watching $(peer_host "$ordinal") ($role)"
  local period=$STARTUP_PERIOD_SECONDS
  [[ $role == replica ]] || period=$PERIOD_SECONDS
  while true; do
    if server_alive "$(root_cnf)"; then
      period=$PERIOD_SECONDS
      if [[ $role == replica ]]; then
        reconcile_replica "$ordinal" || log "not done yet; trying again in ${period}s"
      elif [[ -z $account_done ]] && primary_healthy "$(root_cnf)" >/dev/null; then
        ensure_replication_account_tls "$(root_cnf)" && account_done=1
      fi
      reload_tls_if_changed "$(root_cnf)" || log "reloading the certificate failed; trying again in ${period}s"
      if ((!exporter_ready)) && [[ $role == primary ]]; then
        if ensure_exporter_user "$(root_cnf)"; then exporter_ready=1; fi
      fi
    fi
    sleep "$period" &
    wait $!
  done
}

main "$@"
