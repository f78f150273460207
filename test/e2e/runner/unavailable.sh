#!/bin/sh
# Stands in for an executable that the real image has but no Debian package provides. It fails
# loudly, so a test never passes or fails for a reason that would not exist in the real image.
echo "pod-runner: ${0} is in the real image but the test runner cannot provide it (see test/e2e/runner/profiles.ts)" >&2
exit 127
