#!/usr/bin/env bash
# Checks that this machine can run pods: root, the commands the runner uses, network namespaces
# and overlayfs. Prints what is missing and fails; prints nothing when all is well.
#   $1  scratch directory (created and removed again)
set -euo pipefail
scratch=$1

if [[ $(id -u) -ne 0 ]]; then
  echo "the pod runner needs root (it creates network, mount and PID namespaces); run the e2e tests as root" >&2
  exit 1
fi
missing=()
for command in ip nsenter unshare setpriv nft mknod mount cp; do
  command -v "$command" >/dev/null || missing+=("$command")
done
if ((${#missing[@]} > 0)); then
  echo "the pod runner needs these commands: ${missing[*]} (run test/e2e/host-setup.sh)" >&2
  exit 1
fi
probe=podrun-preflight-$$
if ! error=$(ip netns add "$probe" 2>&1); then
  echo "the pod runner cannot create network namespaces: $error" >&2
  exit 1
fi
ip netns del "$probe"
mkdir -p "$scratch"
# shellcheck disable=SC2016 # the inner script expands its own $1
if ! error=$(unshare --mount --propagation private -- bash -c '
    set -euo pipefail
    mount -t tmpfs podrunner-preflight "$1"
    mkdir "$1/upper" "$1/work" "$1/merged"
    mount -t overlay podrunner-preflight -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/merged"
  ' preflight "$scratch" 2>&1); then
  rm -rf -- "$scratch"
  echo "the pod runner cannot mount an overlay root filesystem: $error" >&2
  exit 1
fi
rm -rf -- "$scratch"
