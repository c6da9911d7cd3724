#!/usr/bin/env bash
# Builds the Debian package with CPack into a scratch directory of the
# build tree and fails unless it holds every file an operator needs: the
# programs, their manual pages and the systemd unit. The measuring tool
# ratelimmq-compare must not be in it. Exits 77 (skipped) where dpkg-deb
# is missing, as on a system that is not Debian.
#
# usage: check_deb.sh CPACK BUILD_DIR SCRATCH_DIR EXPECTED_PATH...
#   EXPECTED_PATH is relative to the package root, e.g. usr/bin/ratelimmqd;
#   a manual page may also be found compressed (.gz).
set -euo pipefail

if [[ $# -lt 4 ]]; then
    echo "usage: $0 CPACK BUILD_DIR SCRATCH_DIR EXPECTED_PATH..." >&2
    exit 2
fi
cpack=$1
build=$2
scratch=$3
shift 3

if ! command -v dpkg-deb >/dev/null; then
    echo "dpkg-deb not found; skipped"
    exit 77
fi

rm -rf "$scratch"
mkdir -p "$scratch"
# CPack writes its staging tree under the directory it runs in.
if ! (cd "$build" && "$cpack" -G DEB -B "$scratch" --config CPackConfig.cmake \
    >"$scratch/cpack.log" 2>&1); then
    cat "$scratch/cpack.log" >&2
    exit 1
fi
shopt -s nullglob
debs=("$scratch"/*.deb)
if [[ ${#debs[@]} -ne 1 ]]; then
    echo "expected one .deb in $scratch, found ${#debs[@]}" >&2
    cat "$scratch/cpack.log" >&2
    exit 1
fi

# "./usr/bin/ratelimmqd" and so on, one path a line.
listing=$(dpkg-deb -c "${debs[0]}" | awk '{ print $6 }' | sed 's|^\./||')
status=0
for want in "$@"; do
    if ! grep -qxF -e "$want" -e "$want.gz" <<<"$listing"; then
        echo "missing from ${debs[0]##*/}: $want" >&2
        status=1
    fi
done
if grep -q 'ratelimmq-compare' <<<"$listing"; then
    echo "ratelimmq-compare must not be packaged" >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    printf 'the package holds:\n%s\n' "$listing" >&2
    exit 1
fi
dpkg-deb -f "${debs[0]}" Package Version Section Depends
echo "${debs[0]##*/}: all $# expected files present"
