#!/bin/bash
# Prints this GaleraCluster node's state for its peers, one line (format in galera-lib.sh).
# galera-start.sh serves it on STATUS_PORT: socat runs this script once per connection.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

SCRIPTS_DIR=$(cd "$(dirname "$0")" && pwd)
source "$SCRIPTS_DIR/lib.sh"
source "$SCRIPTS_DIR/galera-lib.sh"

status_line
