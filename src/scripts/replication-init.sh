#!/bin/bash
# Init container of a MySqlReplicationCluster pod. Every start it writes the server's option file
# (role and server_id from the pod's ordinal) and the client option files; then, once per volume:
#   primary (ordinal 0): initializes a new datadir with the cluster's accounts;
#   MariaDB replica:     receives a physical copy from the best donor, prepares it, marks it seeded;
#   MySQL replica:       initializes an empty instance that the agent then fills with CLONE.
# Configured only by environment variables: see replication-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"

if [[ ${DB_ENGINE:-} == mariadb ]]; then require_env "${CLUSTER_ENV[@]}" SEED_PORT; else require_env "${CLUSTER_ENV[@]}"; fi

main() {
  local ordinal
  ordinal=$(pod_ordinal)
  log "preparing $(peer_host "$ordinal") as the $(role_of "$ordinal") of $CLUSTER_NAME"
  render_server_cnf "$ordinal"
  write_client_files
  rm -rf "$(init_stage)"
  if ((ordinal == 0)); then
    prepare_primary
  elif [[ $DB_ENGINE == mariadb ]]; then
    seed_replica "$ordinal"
  else
    prepare_clone_recipient
  fi
  log "done"
}

main "$@"
