#!/usr/bin/env bash
# ratios.sh prints the dnx/ONNX Runtime latency table of the speed issue: for each model, the median
# of per-round ratios from ../shared/tools/ort/compare.sh (ORT and dnx alternating, same threads, same
# input), with both medians and both peak RSS (ORT's is the node process that runs ort_bench.js;
# the header gives an empty node process's RSS, the part that is node's, not ORT's). Run by hand, not by CI (it takes minutes and needs
# ORT: ../shared/tools/ort/setup.sh):
#
#     bench/ratios.sh [--threads 2] [--rounds 3] [--iters 20] [--json] [--zoo /tmp/zoo] [--zoo-batch 1] [FILTER...]
#
# Cases: the shared DenseNet-121 export at batch 1 and 8 and CIFAR DenseNet-BC-100 at batch 64, then
# every model of the torchvision zoo that bench/zoo/export_zoo.py wrote (/tmp/zoo by default; skipped
# when absent) at batch 1, or --zoo-batch N (batches of N run in lanes, one per thread). FILTER words keep only the cases whose label contains one of them. The
# machine's CPU model and dnx's kernel level (`dnx inspect --devices`) head the table: ratios from
# different CPUs or ISA levels do not compare. --json prints one JSON object per case instead.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${DNX_SHARED:-$ROOT/../shared}
COMPARE=$SHARED/tools/ort/compare.sh
THREADS=2 ROUNDS=3 ITERS=20 JSON=0 ZOO=/tmp/zoo ZOOBATCH=1 FILTERS=()
while [ $# -gt 0 ]; do
	case $1 in
	--threads) THREADS=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--iters) ITERS=$2; shift 2 ;;
	--zoo) ZOO=$2; shift 2 ;;
	--zoo-batch) ZOOBATCH=$2; shift 2 ;;
	--json) JSON=1; shift ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	-*) echo "ratios.sh: unknown option $1" >&2; exit 2 ;;
	*) FILTERS+=("$1"); shift ;;
	esac
done
[ -x "$COMPARE" ] || [ -f "$COMPARE" ] || { echo "ratios.sh: $COMPARE not found (set DNX_SHARED)" >&2; exit 2; }
command -v jq >/dev/null || { echo "ratios.sh: needs jq" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$ROOT" && go build -o "$TMP/dnx" ./cli/dnx) || exit 2
DNX=$TMP/dnx

# label model input batch
cases=()
M=$SHARED/models
cases+=("densenet121_b1 $M/densenet121/model.onnx $M/densenet121/test_data_set_0/input_0.pb 1")
cases+=("densenet121_b8 $M/densenet121/model.onnx $M/densenet121/test_data_set_0/input_0.pb 8")
cases+=("bc100_cifar_b64 $M/densenet_bc100_k12_cifar/model.onnx $M/densenet_bc100_k12_cifar/test_data_set_0/input_0.pb 64")
if [ -d "$ZOO" ]; then
	for d in "$ZOO"/*/; do
		d=${d%/}
		[ -f "$d/model.onnx" ] && cases+=("$(basename "$d")_b$ZOOBATCH $d/model.onnx $d/input_0.pb $ZOOBATCH")
	done
fi

keep() {
	[ ${#FILTERS[@]} -eq 0 ] && return 0
	for f in "${FILTERS[@]}"; do [[ $1 == *"$f"* ]] && return 0; done
	return 1
}

if [ "$JSON" = 0 ]; then
	echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1) (family $(lscpu | sed -n 's/^CPU family: *//p' | head -1)); dnx kernels: $($DNX inspect --devices --json 2>/dev/null | jq -r '.devices[] | select(.kind == "cpu") | .details.kernels' 2>/dev/null); threads $THREADS"
	echo "peak RSS of an empty node process (part of ort_rss_mb): $(/usr/bin/time -f %M node -e '' 2>&1 | awk '{ printf "%d", $1 / 1024 }') MiB"
	printf "%-28s %8s %10s %10s %10s %10s\n" case ratio dnx_ms ort_ms dnx_rss_mb ort_rss_mb
fi
for c in "${cases[@]}"; do
	read -r label model input batch <<<"$c"
	keep "$label" || continue
	out=$(bash "$COMPARE" "$model" "$input" --threads "$THREADS" --rounds "$ROUNDS" --iters "$ITERS" --batch "$batch" -- \
		sh -c '"$0" bench "$COMPARE_MODEL" --input "$COMPARE_INPUT" --threads "$COMPARE_THREADS" --iters "$COMPARE_ITERS" --warmup "$COMPARE_WARMUP" --batch "$COMPARE_BATCH" --json' "$DNX" 2>"$TMP/err")
	ratio=$(printf '%s\n' "$out" | sed -n 's/^ratio dnx\/ort = \([0-9.]*\).*/\1/p')
	# compare.sh's table ends with "median  ORT_MS  DNX_MS  RATIO".
	ort=$(printf '%s\n' "$out" | awk '$1 == "median" { print $2 }')
	dnx=$(printf '%s\n' "$out" | awk '$1 == "median" { print $3 }')
	rss=$("$DNX" bench "$model" --input "$input" --threads "$THREADS" --iters 3 --warmup 1 --batch "$batch" --json 2>/dev/null | jq -r '.peak_rss_bytes / 1048576 | floor' 2>/dev/null)
	# GNU time's %M: the node process's peak RSS in KiB, on its own line after ort_bench.js's output.
	ort_rss=$(/usr/bin/time -f 'maxrss %M' node "$SHARED/tools/ort/ort_bench.js" "$model" --input "$input" --threads "$THREADS" --iters 3 --warmup 1 --batch "$batch" 2>&1 >/dev/null | awk '$1 == "maxrss" { printf "%d", $2 / 1024 }')
	if [ -z "$ratio" ]; then
		ratio=error
		echo "ratios.sh: $label: $(tail -n 1 "$TMP/err")" >&2
	fi
	if [ "$JSON" = 1 ]; then
		jq -cn --arg case "$label" --arg ratio "$ratio" --arg dnx "$dnx" --arg ort "$ort" --arg rss "$rss" --arg ortrss "$ort_rss" --arg threads "$THREADS" \
			'{case: $case, ratio: ($ratio | tonumber? // null), dnx_ms: ($dnx | tonumber? // null), ort_ms: ($ort | tonumber? // null), dnx_peak_rss_mib: ($rss | tonumber? // null), ort_peak_rss_mib: ($ortrss | tonumber? // null), threads: ($threads | tonumber)}'
	else
		printf "%-28s %8s %10s %10s %10s %10s\n" "$label" "$ratio" "$dnx" "$ort" "$rss" "$ort_rss"
	fi
done
