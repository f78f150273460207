#!/usr/bin/env bash
# Starts one container incarnation. Runs as PID 1 of the container's own PID and mount
# namespaces (already inside the pod's network, UTS and IPC namespaces), builds the
# container's root filesystem and execs the container's process, which keeps PID 1.
#
#   $1  container directory, holding:
#         rootfs/  mount point of the root filesystem
#         mounts   tab-separated steps: "bind SOURCE TARGET ro|rw" or "dir TARGET", targets
#                  already resolved inside the container
#         env      NUL-separated NAME=VALUE pairs, the container's whole environment
#         launch   NUL-separated command that switches to the container's root, working
#                  directory, user, groups and capabilities (setpriv and nsenter)
#         argv     NUL-separated command and arguments
#         started  created here right before the exec: the container is running
#   $2  image layer directory (see image-layer.ts)
#   $3  rw | ro  (securityContext.readOnlyRootFilesystem)
set -euo pipefail
ctr=$1
layer=$2
root_mode=$3
base=$ctr/rootfs
umask 0022

# The writable layer lives on a tmpfs that dies with this incarnation: a restarted container
# starts from the image again. The image layer goes in first; this machine's / is the lower layer.
mount -t tmpfs -o size=512m,mode=0755 podrunner-writable "$base"
mkdir "$base/upper" "$base/work" "$base/merged"
cp -a "$layer/." "$base/upper/"
mount -t overlay podrunner-root -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/merged"
root=$base/merged

mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,mode=0755,size=64k podrunner-dev "$root/dev"
for device in null zero full random urandom tty; do
  touch "$root/dev/$device"
  mount --bind "/dev/$device" "$root/dev/$device"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777,size=64m shm "$root/dev/shm"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o nosuid,nodev,mode=1777 podrunner-tmp "$root/tmp"

while IFS=$'\t' read -r kind source target mode; do
  case $kind in
    bind)
      if [[ -d $source ]]; then
        mkdir -p "$root$target"
      else
        mkdir -p "$(dirname "$root$target")"
        [[ -e $root$target ]] || touch "$root$target"
      fi
      mount --bind "$source" "$root$target"
      if [[ $mode == ro ]]; then
        mount -o remount,bind,ro "$root$target"
      fi
      ;;
    dir) # "dir TARGET": the target is the second field
      mkdir -p "$root$source"
      ;;
    *)
      echo "container-init: unknown step $kind" >&2
      exit 1
      ;;
  esac
done <"$ctr/mounts"

if [[ $root_mode == ro ]]; then
  mount -o remount,bind,ro "$root"
fi

mapfile -d '' -t env <"$ctr/env"
mapfile -d '' -t launch <"$ctr/launch"
mapfile -d '' -t argv <"$ctr/argv"
touch "$ctr/started"
exec /usr/bin/env -i "${env[@]}" "${launch[@]}" "${argv[@]}"
