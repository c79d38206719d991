#!/bin/sh
# The `command` host provider's list script: prints the handle of every live host.
set -eu
: "${HOSTS_DIR:?}"
for f in "$HOSTS_DIR"/*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
    basename "$f" .pid
  fi
done
