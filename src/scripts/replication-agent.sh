#!/bin/bash
# Agent sidecar of a MySqlReplicationCluster pod. On a replica, every few seconds while the
# server runs, it makes sure that:
#   - a MySQL replica is seeded: it clones the best donor (ERROR 3707 = done; Kubernetes restarts
#     the server) and marks the volume seeded once the server runs on the completed clone;
#   - replication from the primary is configured (the copy's position applied at most once) and
#     both threads run;
#   - a MySQL replica has super_read_only on.
# On the primary it has nothing to do. Configured only by environment variables: see replication-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}"

readonly PERIOD_SECONDS=5
# Until a replica's server answers for the first time, look every second: a new replica then
# replicates (and becomes ready) about as soon as its server runs, not up to 5 s later.
readonly STARTUP_PERIOD_SECONDS=1

main() {
  local ordinal role
  ordinal=$(pod_ordinal)
  role=$(role_of "$ordinal")
  trap 'log "stopping"; exit 0' TERM INT
  log "watching $(peer_host "$ordinal") ($role)"
  local period=$STARTUP_PERIOD_SECONDS
  [[ $role == replica ]] || period=$PERIOD_SECONDS
  while true; do
    if [[ $role == replica ]] && server_alive "$(root_cnf)"; then
      period=$PERIOD_SECONDS
      reconcile_replica "$ordinal" || log "not done yet; trying again in ${period}s"
    fi
    sleep "$period" &
    wait $!
  done
}

main "$@"
