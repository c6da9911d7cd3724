#!/usr/bin/env bash
# Checks contrib/ratelimmqd.service with "systemd-analyze verify".
#
# verify insists that ExecStart names an existing executable, so the check
# runs on a copy of the unit whose ExecStart is the daemon just built.
# Documentation= is not followed (--man=no): the page need not be
# installed for the unit to be right. Exits 77 (skipped) without
# systemd-analyze.
#
# usage: check_unit.sh UNIT DAEMON SCRATCH_DIR
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 UNIT DAEMON SCRATCH_DIR" >&2
    exit 2
fi
unit=$1
daemon=$2
scratch=$3

if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze not found; skipped"
    exit 77
fi

rm -rf "$scratch"
mkdir -p "$scratch"
copy=$scratch/$(basename "$unit")
sed "s|^ExecStart=/usr/bin/ratelimmqd\\b|ExecStart=$daemon|" "$unit" >"$copy"
if ! grep -qx "ExecStart=$daemon.*" "$copy"; then
    echo "$unit: no 'ExecStart=/usr/bin/ratelimmqd' line to check" >&2
    exit 1
fi

# verify prints its complaints and exits non-zero on any of them; some
# versions only print, so any output counts as a failure too.
out=$(systemd-analyze verify --man=no "$copy" 2>&1) || {
    printf '%s\n' "$out" >&2
    exit 1
}
if [[ -n $out ]]; then
    printf '%s\n' "$out" >&2
    exit 1
fi
echo "$(basename "$unit"): systemd-analyze verify passed"
