# shellcheck shell=bash
# SPDX-License-Identifier: BSD-3-Clause
# servers.sh: starting and stopping kvs-server and redis-server for the
# benchmark scripts (server-vs-redis, cli-hyperfine). Sourced, not run.
#
# A server is known by a name: "redis" or "kvs:<engine>". The caller sets
# PROG (for messages), LOGDIR, KVS_SERVER (the binary, see kvs_binary) and
# optionally KVS_THREADS, then fills PORT[name] (free_port) and DIR[name]
# (a fresh data directory) before starting a server. PID[name] holds the
# process of every running server; stop_all stops them (call it from an
# EXIT trap).

declare -A PID=() PORT=() DIR=()
# Extra options for the next kvs-server launched.
KVS_EXTRA=()

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# kvs_binary ROOT BUILD TARGET: path of the built TARGET (kvs-server or
# kvs-client) in BUILD, configuring and building it (Release) if missing.
kvs_binary() {
    local root=$1 build=$2 target=$3 path
    case $target in
    kvs-server) path=$build/server/kvs-server ;;
    kvs-client) path=$build/client/kvs-client ;;
    *) die "unknown target $target" ;;
    esac
    if [[ ! -x $path ]]; then
        echo "$PROG: building $target in $build (Release)" >&2
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKVS_TESTS=OFF >&2
        cmake --build "$build" -j2 --target "$target" >&2
    fi
    [[ -x $path ]] || die "no $target at $path"
    echo "$path"
}

# A loopback port nothing listens on, below the ephemeral range (32768 up)
# that the benchmark clients' own connections use, and not given out before.
free_port() {
    local p q used
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        used=0
        for q in "${PORT[@]}"; do
            [[ $q == "$p" ]] && used=1
        done
        [[ $used == 0 ]] || continue
        if ! (: <>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# A server's name as it may appear in a file name.
file_name() {
    echo "${1//:/-}"
}

# launch NAME FSYNC: start the server on PORT[NAME] with DIR[NAME] and fsync
# policy FSYNC (always, everysec or no; redis's appendfsync), not waiting.
# FSYNC "memory": redis-server without persistence (no AOF, no RDB saves),
# kvs-server with its in-memory engine's own defaults (snapshots).
launch_server() {
    local name=$1 fsync=$2 log persist
    log=$LOGDIR/$(file_name "$name")-$fsync.log
    if [[ $name == redis ]]; then
        if [[ $fsync == memory ]]; then
            persist=(--appendonly no)
        else
            persist=(--appendonly yes --appendfsync "$fsync")
        fi
        redis-server --port "${PORT[$name]}" --bind 127.0.0.1 --dir "${DIR[$name]}" \
            "${persist[@]}" --save '' --daemonize no \
            --logfile "$log" >/dev/null 2>&1 &
    else
        [[ $fsync == memory ]] && persist=() || persist=(--fsync "$fsync")
        "$KVS_SERVER" --addr "127.0.0.1:${PORT[$name]}" --engine "${name#kvs:}" \
            --data-dir "${DIR[$name]}" "${persist[@]}" "${KVS_EXTRA[@]}" \
            ${KVS_THREADS:+--threads "$KVS_THREADS"} >>"$log" 2>&1 &
    fi
    PID[$name]=$!
}

# start NAME FSYNC: launch, then wait up to 60 s for it to answer PING.
start_server() {
    local name=$1 fsync=$2
    launch_server "$name" "$fsync"
    for _ in $(seq 3000); do
        kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited at start; see $LOGDIR"
        [[ $(redis-cli -p "${PORT[$name]}" PING 2>/dev/null) == PONG ]] && return 0
        sleep 0.02
    done
    die "$name did not answer PING within 60 s; see $LOGDIR"
}

# stop NAME: SIGTERM, wait up to 30 s for a clean exit, then SIGKILL.
stop_server() {
    local name=$1 pid=${PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$PROG: $name did not stop within 30 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset "PID[$name]"
}

stop_all() {
    local name
    for name in "${!PID[@]}"; do
        stop_server "$name"
    done
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# rss_split_kb PID: the resident memory of PID as "anon,file" in kB
# (RssAnon: heap, stacks, anonymous maps; RssFile: pages of mapped files,
# such as segments or data.mdb, which the kernel can drop and read again).
rss_split_kb() {
    awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print a "," f }' "/proc/$1/status"
}

# cpu_ticks PID: the user + system CPU time PID (all its threads) has used
# so far, in clock ticks (getconf CLK_TCK a second): fields 14 and 15 of
# /proc/PID/stat, counted after the ")" closing the command name.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086 # split the fields on purpose
    set -- $stat
    echo $((${12} + ${13}))
}
