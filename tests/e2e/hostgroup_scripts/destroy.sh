#!/bin/sh
# The `command` host provider's destroy script: `destroy.sh HANDLE` stops the host (here: the
# local agent process); a host already gone is success.
set -eu
: "${HOSTS_DIR:?}"
pidfile="$HOSTS_DIR/$1.pid"
[ -f "$pidfile" ] || exit 0
kill -9 "$(cat "$pidfile")" 2>/dev/null || true
rm -f "$pidfile"
