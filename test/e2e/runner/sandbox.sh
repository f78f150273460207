#!/usr/bin/env bash
# The pod sandbox, like the pause container of a Kubernetes pod: started in the pod's network
# namespace inside new UTS and IPC namespaces (unshare --uts --ipc), it sets the pod's hostname
# and then holds those namespaces for the pod's containers to join.
#   $1  hostname
set -euo pipefail
hostname "$1"
exec sleep infinity
