#!/bin/bash
# Readiness probe of a MySqlReplicationCluster pod. The primary is ready when it accepts writes;
# a replica when both replication threads run, it is at most MAX_LAG_SECONDS behind and it is
# read-only, or while its IO thread reconnects to the primary, until the data it has applied is
# MAX_LAG_SECONDS old. Prints the reason when not ready (shown in the pod's events).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}"

if reason=$(local_ready); then
  echo "ready${reason:+: $reason}"
else
  echo "not ready: $reason"
  exit 1
fi
