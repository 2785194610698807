#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The install test: cmake --install BUILD into a staging prefix; every file
# a user needs is there; the man pages render without warnings; the systemd
# unit passes systemd-analyze (when it can run here); a program built with
# pkg-config against the installed libkvs-client (shared, then static) links
# no LMDB and talks to the installed kvs-server, started from a
# configuration file; SIGTERM stops that server with exit 0.
#   run.sh BUILD_DIR APP_C [SANITIZERS]
set -euo pipefail
build=$1
app=$2
sanitize=${3:-}
stage=$(mktemp -d /tmp/kvs-install-XXXXXX)
server_pid=
cleanup() {
    [ -z "$server_pid" ] || kill -9 "$server_pid" 2>/dev/null || true
    rm -rf "$stage"
}
trap cleanup EXIT
fail() {
    echo "test_install: $*" >&2
    [ ! -f "$stage/kvs.log" ] || sed 's/^/  log: /' "$stage/kvs.log" >&2
    exit 1
}

prefix=$stage/usr
cmake --install "$build" --prefix "$prefix" >"$stage/install.log" || fail "cmake --install failed"
for f in bin/kvs-server bin/kvs-client bin/kvs-check bin/kvs-convert \
    include/kvs/client.h include/kvs/error.h include/kvs/slice.h include/kvs/version.h \
    share/man/man1/kvs-server.1 share/man/man1/kvs-client.1 share/man/man1/kvs-check.1 \
    share/man/man1/kvs-convert.1 etc/kvs/kvs.conf lib/systemd/system/kvs-server.service \
    lib/sysusers.d/kvs.conf share/doc/kvs/LICENSE share/doc/kvs/CHANGELOG.md; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
pc=$(find "$prefix" -name kvs-client.pc | head -1)
[ -n "$pc" ] || fail "no kvs-client.pc"
libdir=$(dirname "$(dirname "$pc")")
for f in libkvs-client.so libkvs-client.a; do
    [ -e "$libdir/$f" ] || fail "not installed: $libdir/$f"
done
for m in "$prefix"/share/man/man1/*.1; do
    out=$(groff -man -Tutf8 -ww -z "$m" 2>&1) || fail "$m: groff failed"
    [ -z "$out" ] || fail "$m: $out"
done
if command -v systemd-analyze >/dev/null; then
    # The unit as installed names the configured prefix: check it with the
    # staged paths instead.
    sed "s|/usr/local|$prefix|g; s|ExecStart=/usr/bin|ExecStart=$prefix/bin|" \
        "$prefix/lib/systemd/system/kvs-server.service" >"$stage/kvs-server.service"
    if out=$(systemd-analyze verify --man=no "$stage/kvs-server.service" 2>&1); then
        # It exits 0 over unknown keys: any line it prints is a finding.
        [ -z "$out" ] || fail "systemd-analyze verify: $out"
    elif grep -q "Failed to\|Cannot\|not supported\|System has not been booted" <<<"$out"; then
        echo "test_install: systemd-analyze cannot run here: $out" >&2
    else
        fail "systemd-analyze verify: $out"
    fi
fi

# The program, through pkg-config only.
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
cflags=$(pkg-config --cflags kvs-client)
libs=$(pkg-config --libs kvs-client)
extra=()
[ -z "$sanitize" ] || extra=(-fsanitize="$sanitize")
# shellcheck disable=SC2086
cc "${extra[@]}" -Wall -Werror -o "$stage/app" "$app" $cflags $libs -Wl,-rpath,"$libdir" ||
    fail "cannot build against the installed library"
# shellcheck disable=SC2086
cc "${extra[@]}" -Wall -Werror -static-libgcc -o "$stage/app-static" "$app" $cflags \
    "$libdir/libkvs-client.a" || fail "cannot build against the static library"
deps=$(ldd "$stage/app") # (grep -q on a pipe would SIGPIPE ldd under pipefail)
if grep -q 'lmdb\|libevent' <<<"$deps"; then
    fail "libkvs-client pulls in LMDB or libevent: $deps"
fi
grep -q "libkvs-client.so.0 => $libdir/" <<<"$deps" || fail "the app does not use the shared library"

# The installed server, from a configuration file.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$stage/kvs.conf" <<CONF
# written by tests/install/run.sh
bind 127.0.0.1
port $port
dir "$stage/data"
logfile "$stage/kvs.log"
pidfile "$stage/kvs.pid"
CONF
"$prefix/bin/kvs-server" "$stage/kvs.conf" &
server_pid=$!
for _ in $(seq 200); do
    "$prefix/bin/kvs-client" get probe --addr "127.0.0.1:$port" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || fail "kvs-server exited"
    sleep 0.05
done
[ "$(cat "$stage/kvs.pid")" = "$server_pid" ] || fail "pidfile does not hold $server_pid"
out=$("$stage/app" "127.0.0.1:$port") || fail "app (shared): $out"
[ "$out" = "libkvs-client $(sed -n 's/.*KVS_VERSION "\(.*\)"/\1/p' "$prefix/include/kvs/version.h"): ok" ] ||
    fail "app printed: $out"
out=$("$stage/app-static" "127.0.0.1:$port") || fail "app (static): $out"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[ "$status" -eq 0 ] || fail "kvs-server exited $status after SIGTERM"
grep -q "ready: engine kvs" "$stage/kvs.log" || fail "no ready line in the log file"
echo "test_install: ok ($prefix)"
