#!/bin/sh
# The `command` host provider's create script, for the tests and as a worked example: it
# reads the host spec (JSON) on stdin and starts `berth agent` as a local background process;
# a real one would start a VM or run the same command over ssh. Prints the handle (here: the
# instance id; the pid is kept in $HOSTS_DIR/ID.pid).
set -eu
: "${HOSTS_DIR:?}" "${BERTH_BIN:?}"
spec=$(cat)
field() { printf '%s' "$spec" | python3 -c "import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(v if v is not None else '')" "$1"; }
id=$(field instance_id)
attrs=$(printf '%s' "$spec" | python3 -c "import json,sys; print(' '.join('--attribute=%s=%s' % (k, v) for k, v in json.load(sys.stdin)['attributes']))")
mkdir -p "$HOSTS_DIR/$id"
BERTH_JOIN_TOKEN=$(field join_token) BERTH_USER_DATA=$(field user_data) \
  nohup "$BERTH_BIN" agent --server "$(field server_url)" --cluster "$(field cluster)" \
  --state-dir "$HOSTS_DIR/$id" --driver process --poll-wait 1 \
  --cpu "$(field cpu)" --memory "$(field memory)" $attrs \
  >"$HOSTS_DIR/$id/agent.log" 2>&1 </dev/null &
echo $! > "$HOSTS_DIR/$id.pid"
echo "$id"
