#!/bin/bash
# Readiness probe of a MySqlReplicationCluster pod. The primary is ready when it accepts writes;
# a replica when both replication threads run, it is at most MAX_LAG_SECONDS behind and it is
# read-only. Prints the reason when not ready (shown in the pod's events).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}"

if reason=$(local_healthy); then
  echo "ready"
else
  echo "not ready: $reason"
  exit 1
fi
