#!/bin/bash
# Donor sidecar of a MariaDB MySqlReplicationCluster pod: serves a physical copy of this pod's
# server to every connection on SEED_PORT (a new replica's init container connects, receives and
# prepares it). socat -U: data flows only from replication-send.sh to the client. -b 1 MiB:
# socat moves 8 KiB per read and write by default, which slows the copy down (bench/seed.ts).
# Configured only by environment variables: see replication-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}" SEED_PORT

log "serving physical copies on port $(seed_port)"
exec socat -b 1048576 -U "TCP-LISTEN:$(seed_port),reuseaddr,fork" "EXEC:bash $(dirname "${BASH_SOURCE[0]}")/replication-send.sh"
