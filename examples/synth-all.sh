#!/bin/bash
# Synthesizes every example app with the cdk8s CLI into examples/<name>/cdk8s.out/.
set -euo pipefail
cd "$(dirname "$0")"
for dir in */; do
  echo "synth examples/$dir"
  (cd "$dir" && cdk8s synth --no-check-upgrade)
done
