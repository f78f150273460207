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

reconcile_replica() {
  local ordinal=$1
  if [[ ! -f $(seeded_marker) ]]; then
    if [[ $DB_ENGINE != mysql ]]; then
      log "the volume is not seeded: the init container seeds it at the next pod start"
      return 1
    fi
    if clone_completed; then
      atomic_write "$(seeded_marker)" "cloned_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"$'\n'
      log "the server runs on a completed clone: the volume is seeded"
    else
      clone_from_donor "$ordinal" || return 1
      wait_for_server_stop 300 || log "the server still runs after the clone"
      return 0
    fi
  fi
  configure_replication
  if [[ $DB_ENGINE == mysql ]]; then
    ensure_super_read_only
  fi
}

main() {
  local ordinal role
  ordinal=$(pod_ordinal)
  role=$(role_of "$ordinal")
  trap 'log "stopping"; exit 0' TERM INT
  log "watching $(peer_host "$ordinal") ($role)"
  while true; do
    if [[ $role == replica ]] && server_alive "$(root_cnf)"; then
      reconcile_replica "$ordinal" || log "not done yet; trying again in ${PERIOD_SECONDS}s"
    fi
    sleep "$PERIOD_SECONDS" &
    wait $!
  done
}

main "$@"
