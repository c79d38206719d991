#!/usr/bin/env bash
# Compares berth-lb with nginx as an HTTP/1.1 keep-alive reverse proxy in front of the same
# two backends (a separate single-worker nginx serving a small static body).
#
#   bench/lb_bench.sh            # defaults: wrk -t2 -c64 -d10s
#   THREADS=2 CONNS=64 DURATION=10s bench/lb_bench.sh
#
# Prints req/s, p50 and p99 for each proxy, the berth/nginx ratio, and berth's RSS under load.
set -euo pipefail

THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10s}
BACKEND_PORTS=(18081 18082)
NGINX_PORT=18080
BERTH_PORT=18090

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/lb_bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "building lb_bench_proxy (release)" >&2
(cd "$root" && cargo build --release -q -p berth-lb --example lb_bench_proxy)
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BERTH_BIN="$target_dir/release/examples/lb_bench_proxy"

# Backends: one nginx worker, a small static body on each port.
mkdir -p "$work/backend" "$work/proxy"
{
    echo "worker_processes 1; daemon off; pid $work/backend/nginx.pid; error_log $work/backend/error.log;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; keepalive_requests 1000000; keepalive_timeout 75s;"
    for p in "${BACKEND_PORTS[@]}"; do
        echo "  server { listen 127.0.0.1:$p reuseport; location / { default_type text/plain; return 200 'hello from $p\n'; } }"
    done
    echo "}"
} >"$work/backend/nginx.conf"

# The nginx reverse proxy under test: upstream keepalive, as its docs recommend.
{
    echo "worker_processes auto; daemon off; pid $work/proxy/nginx.pid; error_log $work/proxy/error.log;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; keepalive_requests 1000000;"
    echo "  upstream backends {"
    for p in "${BACKEND_PORTS[@]}"; do echo "    server 127.0.0.1:$p;"; done
    echo "    keepalive 128; }"
    echo "  server { listen 127.0.0.1:$NGINX_PORT; location / {"
    echo "    proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection '';"
    echo "    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
    echo "}"
} >"$work/proxy/nginx.conf"

"$NGINX" -p "$work/backend" -c "$work/backend/nginx.conf" & pids+=($!)
"$NGINX" -p "$work/proxy" -c "$work/proxy/nginx.conf" & nginx_pid=$!
pids+=($nginx_pid)
backends=()
for p in "${BACKEND_PORTS[@]}"; do backends+=("127.0.0.1:$p"); done
"$BERTH_BIN" "127.0.0.1:$BERTH_PORT" "${backends[@]}" 2>"$work/berth.log" & berth_pid=$!
pids+=($berth_pid)

wait_up() {
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 never answered" >&2; return 1
}
for p in "${BACKEND_PORTS[@]}" $NGINX_PORT $BERTH_PORT; do wait_up "$p"; done

# Latency values from wrk come as e.g. 1.23ms / 456.00us / 1.02s; normalise to ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else printf "%s", v }'
}

# CPU ticks (user + system) used so far by the given processes, all their threads.
ticks() {
    local t=0 p f
    for p in "$@"; do
        for f in /proc/"$p"/task/*/stat; do
            t=$((t + $(awk '{print $14 + $15}' "$f" 2>/dev/null || echo 0)))
        done
    done
    echo "$t"
}

run() { # name port pids... -> sets RPS P50 P99 CPU_US (proxy CPU microseconds per request)
    local out name=$1 port=$2 before after total
    shift 2
    wrk -t1 -c8 -d2s "http://127.0.0.1:$port/" >/dev/null # warm-up: pools, caches
    before=$(ticks "$@")
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$port/")
    after=$(ticks "$@")
    total=$(echo "$out" | awk '/requests in/ {print $1}')
    CPU_US=$(awk -v t=$((after - before)) -v n="$total" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    echo "$out" >"$work/$name.wrk"
    RPS=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    P50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
    P99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
    local errs
    errs=$(echo "$out" | grep -E "Non-2xx|Socket errors" || true)
    [ -n "$errs" ] && echo "$name: $errs" >&2
    return 0
}

# The machine may be shared: alternate the two proxies for ROUNDS rounds and report the
# median of each figure, so a burst of someone else's load does not decide the result.
ROUNDS=${ROUNDS:-5}
N_RPS_ALL=(); N_P50_ALL=(); N_P99_ALL=(); B_RPS_ALL=(); B_P50_ALL=(); B_P99_ALL=()
N_CPU_ALL=(); B_CPU_ALL=()
nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')
rss_file="$work/rss"
for r in $(seq 1 "$ROUNDS"); do
    # shellcheck disable=SC2086 # the worker pids are words
    run nginx $NGINX_PORT $nginx_workers
    N_RPS_ALL+=("$RPS"); N_P50_ALL+=("$P50"); N_P99_ALL+=("$P99"); N_CPU_ALL+=("$CPU_US")
    ( sleep 3; awk '/VmRSS/ {print $2}' "/proc/$berth_pid/status" >>"$rss_file" ) & sampler=$!
    run berth $BERTH_PORT "$berth_pid"
    B_RPS_ALL+=("$RPS"); B_P50_ALL+=("$P50"); B_P99_ALL+=("$P99"); B_CPU_ALL+=("$CPU_US")
    wait "$sampler" 2>/dev/null || true
    echo "round $r: nginx ${N_RPS_ALL[-1]} req/s p99 ${N_P99_ALL[-1]} ms ${N_CPU_ALL[-1]} us/req | berth ${B_RPS_ALL[-1]} req/s p99 ${B_P99_ALL[-1]} ms ${B_CPU_ALL[-1]} us/req" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
N_RPS=$(median "${N_RPS_ALL[@]}"); N_P50=$(median "${N_P50_ALL[@]}"); N_P99=$(median "${N_P99_ALL[@]}")
B_RPS=$(median "${B_RPS_ALL[@]}"); B_P50=$(median "${B_P50_ALL[@]}"); B_P99=$(median "${B_P99_ALL[@]}")
N_CPU=$(median "${N_CPU_ALL[@]}"); B_CPU=$(median "${B_CPU_ALL[@]}")
RSS_KB=$(sort -n "$rss_file" 2>/dev/null | tail -1 || echo "?")

echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION, keep-alive, $(nproc) cores, backends: nginx x${#BACKEND_PORTS[@]} ports; median of $ROUNDS alternating rounds"
printf "%-8s %12s %10s %10s %14s\n" proxy "req/s" "p50 ms" "p99 ms" "CPU us/req"
printf "%-8s %12s %10s %10s %14s\n" nginx "$N_RPS" "$N_P50" "$N_P99" "$N_CPU"
printf "%-8s %12s %10s %10s %14s\n" berth "$B_RPS" "$B_P50" "$B_P99" "$B_CPU"
awk -v b="$B_RPS" -v n="$N_RPS" -v bp="$B_P99" -v np="$N_P99" -v bc="$B_CPU" -v nc="$N_CPU" \
    'BEGIN { printf "berth/nginx: req/s %.2fx, p99 %.2fx, proxy CPU per request %.2fx\n", b / n, bp / np, bc / nc }'
echo "berth RSS under load (max sample): ${RSS_KB} kB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
