#!/usr/bin/env bash
# Fails when a program's --help and its manual page disagree on the long
# flags: a flag that --help prints must have an entry (".It Fl \-name")
# in the page, and every such entry must be a flag --help prints. The
# differences are listed, one per line.
#
# usage: check_manpage.sh BINARY PAGE
set -euo pipefail
export LC_ALL=C

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BINARY PAGE" >&2
    exit 2
fi
binary=$1
page=$2

# Flags --help defines: lines that begin (after indentation) with the flag,
# optionally after a short form ("  -h, --help").
help_text=$("$binary" --help)
flag_line='^[[:space:]]+(-[A-Za-z0-9], )?--([A-Za-z0-9][A-Za-z0-9-]*).*'
help_flags=$(printf '%s\n' "$help_text" | sed -nE "s/$flag_line/\\2/p" |
    sort -u)

# Flags the page documents: every long Fl argument on an ".It Fl" line.
# Fl prints one hyphen itself, so a long flag is written "\-name" (or
# "-name"); a word that does not start with a hyphen is a short flag, and a
# word that starts with an upper-case letter is the next macro.
page_flags=$(awk '
    /^\.It[ \t]+Fl[ \t]/ {
        in_fl = 0
        for (i = 2; i <= NF; i++) {
            w = $i
            if (w == "Fl") { in_fl = 1; continue }
            if (w ~ /^[A-Z][a-z][a-z]?$/) { in_fl = 0; continue }
            if (!in_fl) continue
            sub(/^\\-/, "-", w)
            if (w ~ /^-[A-Za-z0-9]/) print substr(w, 2)
        }
    }' "$page" | sort -u)

if [[ -z $help_flags ]]; then
    echo "no flags found in the output of $binary --help" >&2
    exit 1
fi

missing=$(comm -23 <(echo "$help_flags") <(echo "$page_flags"))
extra=$(comm -13 <(echo "$help_flags") <(echo "$page_flags"))
status=0
for f in $missing; do
    echo "--$f: in $binary --help but not documented in $page" >&2
    status=1
done
for f in $extra; do
    echo "--$f: documented in $page but not in $binary --help" >&2
    status=1
done
if [[ $status -eq 0 ]]; then
    count=$(echo "$help_flags" | wc -l)
    echo "$(basename "$page"): the $count long flags match"
fi
exit $status
