# Shared by the bench scripts: one row of make bench's closing table.
# bench_row FIGURE VALUE CEILING_NAME CEILING_VALUE GOAL SPREAD
#   VALUE and CEILING_VALUE in the same unit (MB/s unless the figure says);
#   the ratio is VALUE / CEILING_VALUE; GOAL "0.9" means ratio >= 0.9,
#   "<=0.1" ratio <= 0.1, "-" no goal; SPREAD how far the runs spread
#   (e.g. "12%"), "-" when there was one run.
# Rows go to $BENCH_TABLE (set by scripts/bench-all.sh); without it, nothing.
bench_row() {
	[ -n "${BENCH_TABLE:-}" ] || return 0
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$BENCH_TABLE"
}
