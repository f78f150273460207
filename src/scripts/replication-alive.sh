#!/bin/bash
# Startup and liveness probe of a MySqlReplicationCluster pod: the server answers on its socket.
# Nothing more, so that a lagging or read-only server is never restarted for it.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}"

exec "$(db_admin)" --defaults-extra-file="$(root_cnf)" --connect-timeout=3 ping
