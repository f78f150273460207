#!/usr/bin/env bash
# Applies a pod's fsGroup to one volume the way the kubelet does: every file and directory gets
# the fsGroup as its group, directories get the setgid bit (new files inherit the group), and
# owner and group get read-write access (read access on ConfigMap, Secret and downward API
# volumes). With fsGroupChangePolicy OnRootMismatch nothing changes when the volume's root
# already has the group and the setgid bit.
#   $1  volume directory    $2  fsGroup    $3  rw | ro    $4  Always | OnRootMismatch
set -euo pipefail
dir=$1
gid=$2
access=$3
policy=$4

if [[ $policy == OnRootMismatch && $(stat -c %g "$dir") == "$gid" && -g $dir ]]; then
  exit 0
fi
if [[ $access == rw ]]; then
  file_mode=ug+rw
  dir_mode=ug+rwx,g+s
else
  file_mode=ug+r
  dir_mode=ug+rx,g+s
fi
chgrp -hR "$gid" "$dir"
find "$dir" -type d -exec chmod "$dir_mode" {} +
find "$dir" -type f -exec chmod "$file_mode" {} +
