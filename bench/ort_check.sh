#!/usr/bin/env bash
# ort_check.sh: checks that the models dnx writes run in ONNX Runtime and that dnx and ORT compute
# the same logits. Run by hand (not by CI) from anywhere in a dnx checkout with ../shared beside it:
#
#   bench/ort_check.sh [--quick] [--reference | --reference-all] [--tol T] [FILTER...]
#
# For every case it writes the model, lets ORT (../shared/tools/ort/ort_bench.js) draw a random
# batch-1 input, run the model and save input and output, runs `dnx run` on the same input, and
# has ORT compare its output with dnx's. Cases:
#
#   preset/<name>          every preset of `dnx models`, training and inference form, opset 13
#   variant/<v>_<stem>     small plain/B/C/BC configs with both stems, both forms
#   opset/tiny             the tiny preset at opsets 11, 13, 17 and 21, both forms
#   convert/checkpoint     `dnx convert` of converters/pytorch/testdata/densenet_ckpt.pth (both forms)
#   convert/opset          `dnx convert IN.onnx --opset 11|21` of a built model and of the PyTorch
#                          exports shared/models/densenet_tiny and densenet_bc100_k12_cifar
#
# --quick skips the presets above 1 GMAC; --reference also runs dnx's reference kernels
# (`dnx bench --reference`) on the cases below 1 GMAC, --reference-all on every case (tens of
# seconds per large preset on a 2-vCPU machine); FILTER words keep only the cases whose
# label contains one of them. A case fails when ORT rejects the model, dnx fails, or
# max |dnx - ORT| > T * max(1, max |logit|) (T defaults to 1e-4). The table goes to stdout; the
# exit status is 1 if any case failed.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
SHARED=${DNX_SHARED:-$(cd .. && pwd)/shared}
ORT_TOOLS=$SHARED/tools/ort
[ -f "$ORT_TOOLS/ort_bench.js" ] || { echo "ort_check: $ORT_TOOLS/ort_bench.js not found (set DNX_SHARED)" >&2; exit 2; }

quick=0 reference=0 refmacs=1000000000 tol=1e-4 filters=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --reference) reference=1 ;;
    --reference-all) reference=1 refmacs=999999999999999 ;;
    --tol) tol=$2; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    -*) echo "ort_check: unknown option $1" >&2; exit 2 ;;
    *) filters+=("$1") ;;
  esac
  shift
done

DNX_ORT_DIR=$("$ORT_TOOLS/setup.sh" | tail -n 1)
export DNX_ORT_DIR
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ort_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
go build -o "$WORK/dnx" ./cli/dnx
DNX=$WORK/dnx
ORT=(node "$ORT_TOOLS/ort_bench.js")

# json KEY reads one key (a dotted path) of the JSON object on stdin.
json() { node -e 'let o=JSON.parse(require("fs").readFileSync(0,"utf8"));for(const k of process.argv[1].split("."))o=o==null?o:o[k];console.log(o===undefined||o===null?"":o)' "$1"; }

wanted() {
  [ ${#filters[@]} -eq 0 ] && return 0
  local f
  for f in "${filters[@]}"; do [[ $1 == *"$f"* ]] && return 0; done
  return 1
}

failures=0
printf '%-40s %-9s %5s %8s %12s %10s %12s  %s\n' case form opset input "max|dnx-ORT|" "max|logit|" "ref|dnx-ORT|" status
# check LABEL FORM OPSET SIZE MACS MODEL: compares dnx with ORT on one random [1,3,SIZE,SIZE] input.
check() {
  local label=$1 form=$2 opset=$3 size=$4 macs=$5 model=$6
  local d="$WORK/case" ortjson diff scale refdiff=- status=ok
  rm -rf "$d" && mkdir -p "$d"
  if ! "${ORT[@]}" "$model" --random --shape "1,3,$size,$size" --seed 1 --iters 1 --warmup 0 \
      --save-input "$d/in.pb" --save-output "$d/ort.pb" >"$d/ort1.json" 2>"$d/ort1.err"; then
    status="ORT REJECTED: $(tr '\n' ' ' <"$d/ort1.err" | cut -c1-200)"
    printf '%-40s %-9s %5s %8s %12s %10s %12s  %s\n' "$label" "$form" "$opset" "${size}x$size" - - - "$status"
    failures=$((failures + 1))
    return
  fi
  if ! "$DNX" run "$model" --input "$d/in.pb" --output "$d/dnx.pb" --top 0 >"$d/dnx.out" 2>"$d/dnx.err"; then
    status="DNX FAILED: $(tr '\n' ' ' <"$d/dnx.err" | cut -c1-200)"
    printf '%-40s %-9s %5s %8s %12s %10s %12s  %s\n' "$label" "$form" "$opset" "${size}x$size" - - - "$status"
    failures=$((failures + 1))
    return
  fi
  # ORT runs again on the same input and compares its output with dnx's: max_abs_expected is
  # then max |dnx logit|.
  ortjson=$("${ORT[@]}" "$model" --input "$d/in.pb" --expect "$d/dnx.pb" --iters 1 --warmup 0)
  diff=$(json max_abs_diff <<<"$ortjson")
  scale=$(json max_abs_expected <<<"$ortjson")
  if [ "$reference" = 1 ] && [ "$macs" -lt "$refmacs" ]; then
    refdiff=$("$DNX" bench "$model" --reference --input "$d/in.pb" --expect "$d/ort.pb" --iters 1 --warmup 0 --json | json max_abs_diff)
    refdiff=$(printf '%.3g' "$refdiff")
  fi
  local r=$refdiff
  [ "$r" = - ] && r=NaN
  if ! node -e 'const [d,s,r,t]=process.argv.slice(1).map(Number);const lim=t*Math.max(1,s);process.exit(d<=lim&&(isNaN(r)||r<=lim)?0:1)' \
      "$diff" "$scale" "$r" "$tol"; then
    status="DIFFERS (tol $tol)"
    failures=$((failures + 1))
  fi
  printf '%-40s %-9s %5s %8s %12.3g %10.3g %12s  %s\n' "$label" "$form" "$opset" "${size}x$size" "$diff" "$scale" "$refdiff" "$status"
}

# build_check LABEL OPSET BUILD-ARGS...: builds both forms with dnx build and checks them.
build_check() {
  local label=$1 opset=$2 form rep size macs
  shift 2
  wanted "$label" || return 0
  for form in training inference; do
    local flags=(--opset "$opset" --seed 1 -o "$WORK/model.onnx" --json)
    [ "$form" = inference ] && flags+=(--inference)
    rep=$("$DNX" build "$@" "${flags[@]}")
    size=$(json config.input_size <<<"$rep")
    macs=$(json macs <<<"$rep")
    if [ "$quick" = 1 ] && [ "$macs" -ge 1000000000 ]; then
      printf '%-40s %-9s %5s %8s %12s %10s %12s  %s\n' "$label" "$form" "$opset" "${size}x$size" - - - "skipped (--quick)"
      continue
    fi
    check "$label" "$form" "$opset" "$size" "$macs" "$WORK/model.onnx"
  done
}

for name in $("$DNX" models --json | node -e 'for (const p of JSON.parse(require("fs").readFileSync(0,"utf8"))) console.log(p.name)'); do
  build_check "preset/$name" 13 --preset "$name"
done

for stem in cifar imagenet; do
  size=33
  [ $stem = imagenet ] && size=67
  for v in plain B C BC; do
    extra=()
    case $v in C|BC) extra=(--compression 0.5) ;; esac
    build_check "variant/${v}_$stem" 13 --variant "$v" --blocks 2,1,3 --growth 3 --init-features 5 \
      --stem "$stem" --input-size "$size" --classes 4 "${extra[@]}"
  done
done

for opset in 11 13 17 21; do
  build_check "opset/tiny" "$opset" --preset tiny
done

# A PyTorch checkpoint converted by dnx (ImageNet stem, randomized BN statistics).
if wanted convert/checkpoint; then
  for form in training inference; do
    flags=()
    [ "$form" = inference ] && flags=(--inference)
    "$DNX" convert converters/pytorch/testdata/densenet_ckpt.pth --input-size 32 "${flags[@]}" -o "$WORK/ckpt.onnx" >/dev/null
    check convert/checkpoint "$form" 13 32 0 "$WORK/ckpt.onnx"
  done
fi

# Opset rewrites by dnx convert: a model dnx built, and PyTorch 1.13 exports (Constant + Pad).
if wanted convert/opset; then
  "$DNX" build --preset tiny --seed 1 -o "$WORK/tiny13.onnx" >/dev/null
  for src in "built_tiny:$WORK/tiny13.onnx:16" "densenet_tiny:$SHARED/models/densenet_tiny/model.onnx:16" \
      "densenet_bc100_k12_cifar:$SHARED/models/densenet_bc100_k12_cifar/model.onnx:32"; do
    IFS=: read -r what path size <<<"$src"
    [ -f "$path" ] || continue
    for opset in 11 21; do
      "$DNX" convert "$path" --opset "$opset" -o "$WORK/conv.onnx" >/dev/null
      check "convert/opset:$what" "-" "$opset" "$size" 0 "$WORK/conv.onnx"
    done
  done
fi

if [ "$failures" -gt 0 ]; then
  echo "ort_check: $failures case(s) failed" >&2
  exit 1
fi
echo "ort_check: all cases agree within $tol x max(1, max|logit|)"
