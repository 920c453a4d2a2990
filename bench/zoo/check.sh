#!/usr/bin/env bash
# check.sh runs dnx on the torchvision zoo that export_zoo.py wrote and compares every output with
# PyTorch's. Run by hand, not by CI (the zoo is about 400 MB under /tmp and needs PyTorch to make):
#
#     /usr/bin/python3 bench/zoo/export_zoo.py          # writes /tmp/zoo/<model>/
#     bench/zoo/check.sh [ZOO_DIR]                      # correctness table
#     TIMING=1 bench/zoo/check.sh [ZOO_DIR]             # plus dnx and ONNX Runtime latency
#
# For each model it runs `dnx bench MODEL --input input_0.pb --expect output_0.pb --iters 1 --warmup 0
# --json` twice: on the default path (the planned executor with the fast kernels and graph passes)
# and with --reference (reference kernels, no planning), and reads max_abs_diff, the largest
# |dnx - PyTorch| over the [2,1000] logits. A third run, planned with --batch 1 (the first image,
# checked against the first row), exercises the dynamic batch axis ("b1" column).
#
# Pass criterion: max_abs_diff <= 1e-4 * max(1, max|PyTorch output|). That is 1e-4 absolute when the
# logits are at most 1 in magnitude, and 1e-4 relative to the largest logit when they are larger
# (float32 error grows with the magnitude of the sums). The "rel" column is max_abs_diff / max|y|;
# mobilenet_v3_small's random-weight logits are small (max|y| ~0.09), so read it next to the absolute
# one. The "y0-y1" column is max|y[0] - y[1]| between the two images' logits: how much the logits
# depend on the input, i.e. how much of the network the comparison actually exercises.
# The "plan" column is fast/total steps of the plan; "unplanned" means the default path fell back to
# the reference executor (data-dependent shapes), which the check reports as a failure of the
# planned path.
#
# With TIMING=1 it also times dnx (--threads 2 --iters 5 --warmup 1) and ONNX Runtime
# (../shared/tools/ort/ort_bench.js --iters 3, 2 threads) on the same input. Timings are for
# information only: on a shared, loaded machine they are noisy.
#
# DNX overrides the dnx command (default: a binary built once from ./cli/dnx, which is what
# `go run ./cli/dnx` runs). Exits 1 if any model fails.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ZOO=${1:-/tmp/zoo}
TOL=1e-4
SHARED=${DNX_SHARED:-$ROOT/../shared}
ORT_BENCH=$SHARED/tools/ort/ort_bench.js
export DNX_ORT_DIR=${DNX_ORT_DIR:-$HOME/.cache/dnx-ort}

command -v jq >/dev/null || { echo "check.sh: needs jq" >&2; exit 2; }
[ -d "$ZOO" ] || { echo "check.sh: no zoo at $ZOO; run /usr/bin/python3 bench/zoo/export_zoo.py first" >&2; exit 2; }

if [ -z "${DNX:-}" ]; then
	TMP=$(mktemp -d)
	trap 'rm -rf "$TMP"' EXIT
	(cd "$ROOT" && go build -o "$TMP/dnx" ./cli/dnx) || exit 2
	DNX=$TMP/dnx
fi

# bench_json runs dnx bench with the given flags and prints its JSON line, or {"error": "..."}.
bench_json() {
	local out
	if out=$($DNX bench "$@" --json 2>&1); then
		printf '%s\n' "$out" | tail -n 1
	else
		jq -cn --arg e "$(printf '%s' "$out" | tail -n 1)" '{error: $e}'
	fi
}

# verdict prints "pass" or "FAIL" for a diff (maybe null) against the limit.
verdict() {
	awk -v d="$1" -v lim="$2" 'BEGIN { if (d == "null" || d == "" || d + 0 > lim + 0) print "FAIL"; else print "pass" }'
}

hdr="%-24s %-5s %-7s %-7s %-9s %-9s %-9s %-9s %-9s %-8s %-6s"
printf "$hdr" model opset "max|y|" "y0-y1" planned reference b1 rel plan limit result
[ -n "${TIMING:-}" ] && printf " %9s %9s %9s" dnx_ms ort_ms ort_diff
printf "  ops\n"

fail=0
errors=()
for dir in "$ZOO"/*/; do
	dir=${dir%/}
	name=$(basename "$dir")
	[ -f "$dir/model.onnx" ] || continue
	model=$dir/model.onnx in=$dir/input_0.pb want=$dir/output_0.pb
	maxy=$(jq -r '.max_abs_output // empty' "$dir/meta.json" 2>/dev/null)
	maxy=${maxy:-1}
	sig=$(jq -r '.max_abs_row_diff // "?"' "$dir/meta.json" 2>/dev/null || echo "?")
	limit=$(awk -v t=$TOL -v m="$maxy" 'BEGIN { if (m < 1) m = 1; printf "%.3g", t * m }')
	info=$($DNX inspect "$model" --json 2>&1)
	if ops=$(printf '%s' "$info" | jq -r '.ops | keys | join(",")' 2>/dev/null); then
		opset=$(printf '%s' "$info" | jq -r '.opsets["ai.onnx"] // .opsets[""] // "?"')
	else
		ops="inspect failed: $(printf '%s' "$info" | tail -n 1)" opset="?"
	fi

	p=$(bench_json "$model" --input "$in" --expect "$want" --iters 1 --warmup 0)
	r=$(bench_json "$model" --input "$in" --expect "$want" --iters 1 --warmup 0 --reference)
	b=$(bench_json "$model" --input "$in" --expect "$want" --iters 1 --warmup 0 --batch 1)
	pd=$(printf '%s' "$p" | jq -r '.max_abs_diff // "null"')
	bd=$(printf '%s' "$b" | jq -r '.max_abs_diff // "null"')
	rd=$(printf '%s' "$r" | jq -r '.max_abs_diff // "null"')
	plan=$(printf '%s' "$p" | jq -r 'if .planned then "\(.fast_steps // 0)/\(.steps)" else "unplanned" end')
	result=pass
	for d in "$pd" "$rd" "$bd"; do
		[ "$(verdict "$d" "$limit")" = pass ] || result=FAIL
	done
	[ "$plan" = unplanned ] && result=FAIL
	for j in "$p" "$r" "$b"; do
		e=$(printf '%s' "$j" | jq -r '.error // empty')
		[ -n "$e" ] && errors+=("$name: $e")
	done
	[ "$result" = FAIL ] && fail=1
	rel=$(awk -v d="$pd" -v m="$maxy" 'BEGIN { if (d == "null") print "-"; else printf "%.2g", d / m }')
	fmt() { [ "$1" = null ] && echo "error" || awk -v d="$1" 'BEGIN { printf "%.2g", d }'; }
	printf "$hdr" "$name" "$opset" "$(awk -v m="$maxy" 'BEGIN { printf "%.3g", m }')" \
		"$(awk -v m="$sig" 'BEGIN { if (m == "?") print m; else printf "%.2g", m }')" \
		"$(fmt "$pd")" "$(fmt "$rd")" "$(fmt "$bd")" "$rel" "$plan" "$limit" "$result"

	if [ -n "${TIMING:-}" ]; then
		t=$(bench_json "$model" --input "$in" --threads 2 --iters 5 --warmup 1)
		dms=$(printf '%s' "$t" | jq -r '.median_ms // "error"')
		o=$(node "$ORT_BENCH" "$model" --input "$in" --expect "$want" --iters 3 2>/dev/null | tail -n 1)
		oms=$(printf '%s' "$o" | jq -r '.median_ms // "error"' 2>/dev/null || echo error)
		odiff=$(printf '%s' "$o" | jq -r '.max_abs_diff // "null"' 2>/dev/null || echo null)
		printf " %9s %9s %9s" "$dms" "$oms" "$(fmt "$odiff")"
	fi
	printf "  %s\n" "$ops"
done
for e in "${errors[@]+"${errors[@]}"}"; do
	echo "error: $e"
done
echo "criterion: max|dnx-PyTorch| <= ${TOL} * max(1, max|y|) on every run; rel = planned diff / max|y|"
exit $fail
