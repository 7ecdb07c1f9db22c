#!/usr/bin/env bash
# Runs a command with pcscd (and its vpcd reader) up when it is installed, and stops it afterwards.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=0
if [ -x "$here/pcscd.sh" ] && command -v pcscd >/dev/null 2>&1; then
  if "$here/pcscd.sh" start; then started=1; fi
fi
"$@"
rc=$?
[ "$started" = 1 ] && "$here/pcscd.sh" stop
exit $rc
