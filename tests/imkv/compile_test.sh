#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# test_imkv_compile: install libimkv (cmake --install, component imkv) into
# a fresh prefix, build compile_app.c with exactly the README's command
# against the installed header and libimkv.a, run it; then the same against
# libimkv.so, and check that the shared library exports the ht_* functions
# and nothing else.
#   compile_test.sh CMAKE BUILD_DIR SOURCE_DIR WORK_DIR
set -eu
cmake=$1 build=$2 src=$3 work=$4
rm -rf "$work"
mkdir -p "$work"
"$cmake" --install "$build" --component imkv --prefix "$work/prefix" >/dev/null
inc=$work/prefix/include lib=$work/prefix/lib
for f in "$inc/imkv.h" "$lib/libimkv.a" "$lib/libimkv.so"; do
    test -f "$f" || { echo "not installed: $f" >&2; exit 1; }
done

cp "$src/tests/imkv/compile_app.c" "$work/app.c"
cd "$work"
echo "+ cc -Wall -Werror -pthread -O app.c -I$inc $lib/libimkv.a"
cc -Wall -Werror -pthread -O app.c -I"$inc" "$lib/libimkv.a"
./a.out

cc -Wall -Werror -pthread -O app.c -I"$inc" -L"$lib" -Wl,-rpath,"$lib" -limkv -o app_so
./app_so

exports=$(nm -D --defined-only "$lib/libimkv.so" | awk '$2 ~ /^[TDBRV]$/ { print $3 }' | sort)
expected=$(printf '%s\n' ht_delete ht_destroy ht_init ht_insert ht_lookup)
if [ "$exports" != "$expected" ]; then
    echo "libimkv.so exports:" $exports >&2
    exit 1
fi
echo "compile_test: ok"
