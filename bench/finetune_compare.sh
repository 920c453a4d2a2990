#!/usr/bin/env bash
# finetune_compare.sh: puts `dnx finetune` next to PyTorch on one training step of the CIFAR
# DenseNet-BC (L=100, k=12) at batch 64 with 2 threads, in the memory-efficient mode and without it.
# Run by hand (not by CI) from anywhere in a dnx checkout with ../shared beside it, with Debian's
# /usr/bin/python3 and python3-torch 1.13 (python3-numpy for the data):
#
#   bench/finetune_compare.sh [--steps N] [--batch B] [--threads T] [--model FILE]
#
# PyTorch runs bench/pytorch/train_step.py (torchvision's _DenseBlock, torch.utils.checkpoint for
# the memory-efficient mode); dnx runs `dnx finetune MODEL --x X --y Y --steps N --batch B` on
# random N(0,1) images and labels written to a temporary folder, with --no-augment --no-shuffle and
# SGD like the PyTorch script (lr 0.1, momentum 0.9, weight decay 1e-4). Each engine and mode runs
# in its own process, so peak RSS (VmHWM / ru_maxrss) belongs to that run alone. A step's time is
# the median over the timed steps (dnx: the --log-json step_s of every step but the first; PyTorch:
# --steps timed steps after one warm-up). The table goes to stdout; ratios are dnx / PyTorch.
#
# DNX=path/to/dnx uses a prebuilt binary instead of building ./cli/dnx. Every timed run holds
# /tmp/bench.lock (BENCH_LOCK=path picks another file, BENCH_LOCK=none turns it off), the lock
# timed runs on these machines share.
#
# The machines are shared and noisy (see ../shared/tools/ort/README.md): compare ratios from one
# run, never absolute times from different runs.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
SHARED=${DNX_SHARED:-$(cd .. && pwd)/shared}
MODEL=$SHARED/models/densenet_bc100_k12_cifar_train/model.onnx
STEPS=5
BATCH=64
THREADS=2
PY=${PYTHON:-/usr/bin/python3}
while [ $# -gt 0 ]; do
	case $1 in
	--steps) STEPS=$2; shift 2 ;;
	--batch) BATCH=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--model) MODEL=$2; shift 2 ;;
	-h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "finetune_compare: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[ -f "$MODEL" ] || { echo "finetune_compare: $MODEL not found (set DNX_SHARED or --model)" >&2; exit 2; }
"$PY" -c 'import torch, torchvision, numpy' 2>/dev/null || { echo "finetune_compare: $PY lacks torch, torchvision or numpy (apt install python3-torch python3-torchvision python3-numpy)" >&2; exit 2; }

LOCK=${BENCH_LOCK:-/tmp/bench.lock}
locked() {
	if [ "$LOCK" = none ] || ! command -v flock >/dev/null; then
		"$@"
	else
		flock "$LOCK" "$@"
	fi
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/finetune_compare.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
if [ -n "${DNX:-}" ]; then
	cp "$DNX" "$TMP/dnx"
else
	echo "building dnx..." >&2
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$TMP/dnx" ./cli/dnx)
fi
# Enough images for warm-up + timed steps without wrapping into a second epoch.
N=$((BATCH * (STEPS + 1)))
"$PY" - "$TMP" "$N" <<'PYEOF'
import sys
import numpy as np
d, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
np.save(f"{d}/x.npy", rng.standard_normal((n, 3, 32, 32), dtype=np.float32))
np.save(f"{d}/y.npy", rng.integers(0, 10, n, dtype=np.int64))
PYEOF

# dnx_run MODE: runs dnx finetune and prints "s_per_step peak_rss_bytes activation_bytes".
dnx_run() {
	local me=$1 log=$TMP/log_$1.jsonl
	GOMAXPROCS=$THREADS locked "$TMP/dnx" finetune "$MODEL" --x "$TMP/x.npy" --y "$TMP/y.npy" --steps $((STEPS + 1)) \
		--batch "$BATCH" --threads "$THREADS" --optimizer sgd --lr 0.1 --momentum 0.9 --weight-decay 1e-4 \
		--no-augment --no-shuffle --memory-efficient="$me" --log-json "$log" --json -o "$TMP/out_$me.onnx" >"$TMP/sum_$me.json"
	"$PY" - "$log" "$TMP/sum_$me.json" <<'PYEOF'
import json, statistics, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"step_s"' in l]
s = json.load(open(sys.argv[2]))
t = [x["step_s"] for x in steps[1:]] or [steps[0]["step_s"]]
print(statistics.median(t), s["peak_rss_bytes"], s["activation_bytes"])
PYEOF
}

# torch_run MODE: runs train_step.py and prints "s_per_step peak_rss_bytes".
torch_run() {
	locked "$PY" bench/pytorch/train_step.py --memory-efficient "$1" --batch "$BATCH" --threads "$THREADS" --steps "$STEPS" --warmup 1 |
		"$PY" -c 'import json,sys; r=json.loads(sys.stdin.read().splitlines()[-1]); print(r["s_per_step"], r["peak_rss_bytes"])'
}

printf '%s, batch %d, %d threads, %d timed steps\n' "$(basename "$(dirname "$MODEL")")" "$BATCH" "$THREADS" "$STEPS"
printf '%-17s %10s %10s %14s %14s %12s %9s %9s\n' mode dnx_s torch_s dnx_rss_MiB torch_rss_MiB dnx_act_MiB time_x rss_x
for me in true false; do
	tm=1; [ $me = false ] && tm=0
	echo "memory_efficient=$me: dnx..." >&2
	read -r ds drss dact < <(dnx_run $me)
	echo "memory_efficient=$me: pytorch..." >&2
	read -r ts trss < <(torch_run $tm)
	"$PY" -c "
me, ds, ts, drss, trss, dact = '$me', $ds, $ts, $drss, $trss, $dact
M = 2**20
print(f'{\"efficient=\" + me:<17} {ds:10.3f} {ts:10.3f} {drss/M:14.1f} {trss/M:14.1f} {dact/M:12.1f} {ds/ts:9.2f} {drss/trss:9.2f}')
"
done
echo "time_x and rss_x are dnx / PyTorch (below 1: dnx is faster / smaller)."
