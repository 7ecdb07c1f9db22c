#!/usr/bin/env bash
# Runs a command with pcscd (and its vpcd readers) up when it is installed, and stops it afterwards,
# unless it was already running before (then it is left as it was).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=0
if [ -x "$here/pcscd.sh" ] && { command -v pcscd >/dev/null 2>&1 || [ -x /usr/sbin/pcscd ]; }; then
  if ! "$here/pcscd.sh" status >/dev/null 2>&1; then
    if "$here/pcscd.sh" start; then started=1; fi
  fi
fi
"$@"
rc=$?
[ "$started" = 1 ] && "$here/pcscd.sh" stop
exit $rc
