#!/bin/bash
# Server container of a MySqlReplicationCluster pod: runs mysqld or mariadbd on the option file
# the init container wrote, as PID 1 of the container (so it receives SIGTERM and shuts down
# cleanly). Nothing of the image's entrypoint is used.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}"

[[ -s ${DB_CNF:?DB_CNF is not set} ]] || die "$DB_CNF is missing: the init container writes it at pod start"
[[ -d $(datadir) ]] || die "$(datadir) is missing: the init container creates it at pod start"
log "starting $(db_server) with $DB_CNF"
exec "$(db_server)" --defaults-file="$DB_CNF"
