#!/usr/bin/env bash
# Runs a command from the client namespace (a machine on the cluster network, outside any pod)
# with name resolution like a pod's: the cluster hosts file and a resolv.conf without a
# reachable nameserver are bind-mounted in a private mount namespace.
#   $1  hosts file    $2  resolv.conf    $3...  command and arguments
set -euo pipefail
mount --bind "$1" /etc/hosts
mount --bind "$2" /etc/resolv.conf
shift 2
exec "$@"
