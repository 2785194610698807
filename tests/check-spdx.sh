#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Every source file and script (tracked, or new and not ignored) names its
# licence in its first lines: "SPDX-License-Identifier: BSD-3-Clause".
# Run from the repository root (ctest's "spdx" test does).
missing=$(git ls-files -co --exclude-standard | while read -r f; do
    [ -f "$f" ] || continue
    case $f in
    tests/fuzz/corpus/* | tests/fuzz/regressions/*) continue ;;
    *.c | *.h | *.h.in | *.sh | *.py) ;;
    *) head -c 2 "$f" | grep -q '#!' || continue ;;
    esac
    head -3 "$f" | grep -q 'SPDX-License-Identifier: BSD-3-Clause' || echo "$f"
done)
[ -z "$missing" ] && exit 0
echo "no SPDX-License-Identifier line in:" >&2
echo "$missing" >&2
exit 1
