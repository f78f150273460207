#!/bin/bash
# Backup sidecar of a MySQL MySqlReplicationCluster pod with physical backups, in the
# percona/percona-xtrabackup image of the server's series (the mysql image has no physical backup
# tool). Serves a physical copy of this pod's server to every connection on SEED_PORT, with the
# protocol of the MariaDB donors: an xbstream whose last file is the end mark, or nothing when
# this server is not healthy. socat -U: data flows only from backup-mysql-send.sh to the client;
# -b 1 MiB as the MariaDB donors.
# Configured only by environment variables: see replication-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}" SEED_PORT

log "serving physical copies (xtrabackup) on port $(seed_port)"
exec socat -b 1048576 -U "TCP-LISTEN:$(seed_port),reuseaddr,fork" "EXEC:bash $(dirname "${BASH_SOURCE[0]}")/backup-mysql-send.sh"
