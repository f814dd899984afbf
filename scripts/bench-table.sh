#!/bin/bash
# Print make bench's closing table from the rows the bench scripts wrote
# (scripts/bench-lib.sh): each figure, its ceiling or peer measured in the
# same run, the ratio, the goal and whether it is met.
set -eu
table=$1
[ -s "$table" ] || { echo "bench: no figures"; exit 0; }
echo
echo "== make bench: every figure against its ceiling or peer, measured in this run =="
awk -F'\t' '
BEGIN {
	printf "%-44s %9s  %-28s %9s %7s %6s  %-8s %s\n", "figure", "value", "ceiling / peer", "value", "ratio", "goal", "", "spread"
}
{
	ratio = ($4 + 0 > 0) ? $2 / $4 : 0
	met = ""
	if ($5 ~ /^<=/) { g = substr($5, 3) + 0; met = (ratio <= g) ? "met" : "NOT met" }
	else if ($5 != "-") { g = $5 + 0; met = (ratio >= g) ? "met" : "NOT met" }
	if (met == "NOT met") missed++
	if (met != "") goals++
	printf "%-44s %9s  %-28s %9s %6.2fx %6s  %-8s %s\n", $1, $2, $3, $4, ratio, $5, met, $6
}
END { printf "\n%d goals: %d met, %d NOT met\n", goals, goals - missed, missed }' "$table"
