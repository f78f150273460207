#!/bin/bash
# Init container of a pod with metrics: writes the option file the mysqld_exporter sidecar logs
# in with (EXPORTER_CNF, in the run directory the pod's containers share), so the exporter's
# password never appears in its command line, environment or the manifests. The account itself
# is created by the cluster's own scripts once the server runs (see exporter-lib.sh).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=exporter-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/exporter-lib.sh"

write_exporter_cnf "${EXPORTER_CNF:?EXPORTER_CNF is not set}"
log "wrote $EXPORTER_CNF for $EXPORTER_USER@localhost"
