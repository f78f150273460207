#!/usr/bin/env bash
# Cleans up after a runner whose process died without stopping it (a crash, SIGKILL, Ctrl-C in
# jest). Its stdin is a pipe from the runner's process: the runner writes a line when it stops
# normally; end of input without a line means that process is gone.
#   $1  network namespace prefix of the runner    $2  runner directory
set -euo pipefail
prefix=$1
dir=$2
if read -r _; then
  exit 0
fi
namespaces=$(ip netns list | awk -v prefix="$prefix" 'index($1, prefix) == 1 { print $1 }') || true
for ns in $namespaces; do
  for _ in $(seq 100); do
    pids=$(ip netns pids "$ns" 2>/dev/null) || true
    [[ -n $pids ]] || break
    # shellcheck disable=SC2086 # one pid per word
    kill -9 $pids 2>/dev/null || true
    sleep 0.05
  done
  ip netns del "$ns" || true
done
rm -rf -- "$dir"
