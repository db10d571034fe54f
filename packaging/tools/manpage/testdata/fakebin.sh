#!/bin/sh
# Prints the help of a kong CLI (captured from kong v1.17.0) the way the
# real binary would: `--help`, `rewrite --help`, `doctor --help`.
d=$(dirname "$(readlink -f "$0")")
case "$*" in
--help) cat "$d/top.txt" ;;
"rewrite --help") cat "$d/rewrite.txt" ;;
"doctor --help") cat "$d/doctor.txt" ;;
*) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
