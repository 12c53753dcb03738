#!/usr/bin/env bash
# One prepared check of the CUDA path, for the short time a GPU is lent (docs/gpu.md):
#
#   benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]        (or: make gpu-check GPU_OUT=DIR DATA_DIR=DIR)
#
# Writes everything under OUT_DIR, in this order, each stage with its own time limit so that the
# whole check ends within CHECK_SECONDS (default 420 s: under 8 minutes with each stage's grace period):
#   env.txt          the GPU, driver, torch and CUDA versions
#   tests.txt        the tests that exercise CUDA (pytest -m cuda, TRICKS_TEST_CUDA=1)
#   peak.json        the device's measured bf16 and IEEE-fp32 matmul peaks (benchmarks/gpu_flops.py)
#   slice/           a study slice on CUDA (8 variants x 2 seeds x 2 epochs on 10,000 images, fp32):
#                    per-run accuracies in slice/runs.csv (and slice_population/ when --population exists)
#   study_solo/      the full 8 x 5 x 10 study, solo runs (several per GPU), fp32: its wall time, or how
#                    many runs finished in the time given (runs.csv); study_population/ the same as
#                    populations when the engine has --population
#   flops_*.json     each study's achieved FLOP/s and its share of the bf16 matmul peak
#   summary.txt      one line per stage
# DATA_DIR: the CIFAR-10 JPEG copy (train/ and test/) or a folder with torchvision's CIFAR-10
# (cifar-10-batches-py/ or cifar-10-python.tar.gz); default $CIFAR10_JPEG_DIR. Without data, the
# study stages are skipped (the tests use synthetic images). Without CUDA: one line, exit 2.
# GPU_CHECK_DEVICE=cpu runs the same stages on the CPU: only to try this script on a machine without
# a GPU (its numbers mean nothing for the GPU).
set -u

OUT=${1:-}
if [ -z "$OUT" ]; then
  echo "usage: benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]" >&2
  exit 2
fi
DATA=${2:-${CIFAR10_JPEG_DIR:-}}
REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then PY=$REPO/.venv/bin/python
else PY=python3; fi
case $PY in /*) ;; */*) PY=$PWD/$PY ;; esac     # the stages run from the repository's root

DEV=${GPU_CHECK_DEVICE:-cuda}
if [ "$DEV" = cuda ] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False or torch is missing for $PY); nothing was checked" >&2
  exit 2
fi

START=$(date +%s)
BUDGET=${CHECK_SECONDS:-420}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export TRICKS_CACHE_DIR=${TRICKS_CACHE_DIR:-$OUT/cache}
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# the seconds a stage may take: its own limit, never more than what is left minus a reserve
limit() { local l; l=$(left); l=$(( l - $2 )); [ "$1" -lt "$l" ] && echo "$1" || echo $(( l > 0 ? l : 0 )); }
now() { date +%s.%N; }

say "gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ), budget ${BUDGET} s, python $PY"
{ nvidia-smi 2>&1 | head -20
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version());
print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0), "count", torch.cuda.device_count())'
  git -C "$REPO" rev-parse HEAD 2>/dev/null; git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | head -20
} > "$OUT/env.txt" 2>&1
say "env: $(grep '^device' "$OUT/env.txt")"

# 1. the tests that exercise CUDA
t=$(limit 90 310)
if [ "$t" -le 0 ]; then
  say "tests: skipped, no time left"
elif "$PY" -c 'import pytest' 2>/dev/null; then
  TRICKS_TEST_CUDA=1 timeout -s INT -k 15 "$t" "$PY" -m pytest -q -p no:cacheprovider -m cuda -rs \
    $(ls tests/test_device.py tests/test_population*.py 2>/dev/null) > "$OUT/tests.txt" 2>&1
  say "tests (rc $?): $(tail -1 "$OUT/tests.txt")"
else
  say "tests: skipped, pytest is not installed for $PY (docs/gpu.md: the wheels to bring)"
fi

# 2. the device's matmul peaks
timeout -k 5 "$(( $(limit 20 290) + 1 ))" "$PY" benchmarks/gpu_flops.py peak --out "$OUT/peak.json" > /dev/null 2> "$OUT/peak.err"
say "peak: $("$PY" -c "import json; d=json.load(open('$OUT/peak.json')); print(f\"bf16 {d['bf16_matmul_flops_per_s']/1e12:.0f} TFLOP/s, fp32 {d['fp32_ieee_matmul_flops_per_s']/1e12:.0f} TFLOP/s\")" 2>/dev/null || echo failed)"

# the data
if [ -n "$DATA" ] && [ -d "$DATA/train" ]; then DATASET=(--dataset imagefolder --data-dir "$DATA")
elif [ -n "$DATA" ] && { [ -d "$DATA/cifar-10-batches-py" ] || [ -f "$DATA/cifar-10-python.tar.gz" ]; }; then
  DATASET=(--dataset cifar10 --data-dir "$DATA")
else
  say "study stages: skipped, no data (pass DATA_DIR: the cifar10-jpeg folder or torchvision's CIFAR-10)"
  say "done in $(( $(date +%s) - START )) s -> $OUT"
  exit 0
fi
POP=0; "$PY" -m tricks ablation --help 2>/dev/null | grep -q -- '--population' && POP=1
solo_flag() { [ "$POP" = 1 ] && echo "--population 0"; }

# ablation NAME SECONDS ARGS...: a study into $OUT/NAME, stopped (Ctrl-C: finished runs kept) at SECONDS
ablation() {
  local name=$1 secs=$2; shift 2
  local t0 t1
  if [ "$secs" -le 0 ]; then WALL=0; say "$name: skipped, no time left"; return; fi
  t0=$(now)
  timeout -s INT -k 30 "$secs" "$PY" -m tricks ablation --spec benchmarks/backprop_tricks.toml "${DATASET[@]}" \
    --device "$DEV" --precision fp32 --no-progress --no-report --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  t1=$(now)
  WALL=$("$PY" -c "print(f'{$t1 - $t0:.1f}')")
  RUNS=$(ls "$OUT/$name/runs" 2>/dev/null | wc -l)
  say "$name (rc $rc): $RUNS runs in $WALL s (limit $secs s)"
}
accuracies() {   # per-run accuracies of a study, one line per run
  "$PY" -c "import csv,sys; [print(f\"  {r['variant']:<16} seed {r['seed']}  {float(r['accuracy'])*100:.2f}%\") for r in csv.DictReader(open(sys.argv[1]))]" \
    "$1/runs.csv" 2>/dev/null | tee -a "$SUMMARY"
}

# 3. a study slice on CUDA with its per-run accuracies (the data is decoded and cached here first)
ablation slice "$(limit 100 200)" --seeds 0,1 --epochs 2 --train-subset 10000 $(solo_flag)
accuracies "$OUT/slice"
if [ "$POP" = 1 ]; then
  ablation slice_population "$(limit 40 160)" --seeds 0,1 --epochs 2 --train-subset 10000 --population 16
  accuracies "$OUT/slice_population"
fi

# 4. the full 8 x 5 x 10 study: solo runs, then populations
ablation study_solo "$(limit 150 $([ "$POP" = 1 ] && echo 100 || echo 10))" $(solo_flag)
timeout 60 "$PY" benchmarks/gpu_flops.py achieved --results "$OUT/study_solo" --wall "$WALL" --peak "$OUT/peak.json" \
  --out "$OUT/flops_solo.json" > /dev/null 2>&1
say "  achieved: $("$PY" -c "import json; d=json.load(open('$OUT/flops_solo.json')); print(f\"{d['achieved_flops_per_s']/1e12:.3f} TFLOP/s, {100*(d.get('share_of_bf16_peak') or 0):.2f}% of the bf16 peak\")" 2>/dev/null || echo n/a)"
if [ "$POP" = 1 ]; then
  ablation study_population "$(limit 100 10)" --population 40
  timeout 60 "$PY" benchmarks/gpu_flops.py achieved --results "$OUT/study_population" --wall "$WALL" \
    --peak "$OUT/peak.json" --out "$OUT/flops_population.json" > /dev/null 2>&1
  say "  achieved: $("$PY" -c "import json; d=json.load(open('$OUT/flops_population.json')); print(f\"{d['achieved_flops_per_s']/1e12:.3f} TFLOP/s, {100*(d.get('share_of_bf16_peak') or 0):.2f}% of the bf16 peak\")" 2>/dev/null || echo n/a)"
fi
rm -rf "$OUT/cache"
say "done in $(( $(date +%s) - START )) s -> $OUT"
