#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# run.sh TARGET RUNNER KVS_SERVER: every scenario file (*.test beside this
# script) through kvs-scenario (RUNNER) against TARGET, started here and
# stopped at the end:
#   kvs, lmdb, mem  one kvs-server of that engine (scripts/cluster --no-proxy);
#                   durable unless mem (whose kill -9 loses the writes since
#                   its last snapshot: crash.test is skipped for it)
#   cluster         3 kvs-servers (kvs, lmdb, kvs) behind nutcracker; restart
#                   and crash act on every node
#   redis           redis-server with its AOF (everysec: written before each reply), the
#                   reference the scenarios were checked against
# Extra arguments after KVS_SERVER go to kvs-scenario (-v).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# redis-server's restart and crash hooks: run.sh _redis start|stop|crash DIR PORT
if [ "${1:-}" = _redis ]; then
    action=$2 dir=$3 port=$4
    pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
    if [ "$action" != start ] && [ -n "$pid" ]; then
        kill "-$([ "$action" = crash ] && echo KILL || echo TERM)" "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
        rm -f "$dir/redis.pid"
    fi
    [ "$action" = stop ] && exit 0
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
        --appendfsync everysec --save '' --daemonize yes --pidfile "$dir/redis.pid" \
        --logfile "$dir/redis.log"
    for _ in $(seq 500); do
        [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && exit 0
        sleep 0.02
    done
    echo "redis-server did not start; see $dir/redis.log" >&2
    exit 1
fi

target=${1:?usage: run.sh TARGET RUNNER KVS_SERVER [kvs-scenario options]}
runner=${2:?runner}
server=${3:?kvs-server}
shift 3
work=$(mktemp -d "${TMPDIR:-/tmp}/kvs-scenarios.XXXXXX")
cluster=("$root/scripts/cluster")
conf=$work/target.conf

cleanup() {
    if [ "$target" = redis ]; then
        bash "$here/run.sh" _redis stop "$work/redis" 0 || true
    elif [ -f "$work/c/cluster.env" ]; then
        "${cluster[@]}" stop --dir "$work/c" >/dev/null || true
    fi
    [ -n "${KVS_SCENARIO_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

case $target in
kvs | lmdb | mem | cluster)
    if [ "$target" = cluster ]; then
        "${cluster[@]}" start 3 --engine kvs,lmdb --dir "$work/c" --bin "$server" >/dev/null
        port=$(sed -n 's/^PROXY_PORT=//p' "$work/c/cluster.env")
    else
        "${cluster[@]}" start 1 --no-proxy --engine "$target" --dir "$work/c" --bin "$server" >/dev/null
        port=$(sed -n 's/^NODE_1_PORT=//p' "$work/c/cluster.env")
    fi
    restart="${cluster[*]} restart all --dir $work/c >/dev/null"
    {
        echo "target 127.0.0.1:$port"
        echo "restart $restart"
        echo "crash ${cluster[*]} kill all --dir $work/c >/dev/null && $restart"
        [ "$target" = mem ] || echo "tags durable"
    } >"$conf"
    ;;
redis)
    port=$(bash -c 'for _ in $(seq 200); do p=$((20000 + RANDOM % 12000)); (: <>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; exit; }; done')
    mkdir -p "$work/redis"
    bash "$here/run.sh" _redis start "$work/redis" "$port"
    {
        echo "target 127.0.0.1:$port"
        echo "restart bash $here/run.sh _redis restart $work/redis $port"
        echo "crash bash $here/run.sh _redis crash $work/redis $port"
        echo "tags durable"
    } >"$conf"
    ;;
*)
    echo "run.sh: unknown target '$target'" >&2
    exit 2
    ;;
esac

echo "== scenarios against $target (127.0.0.1:$port)"
"$runner" -c "$conf" "$@" "$here"/*.test
