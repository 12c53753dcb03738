#!/usr/bin/env bash
# One prepared check of the CUDA path, for the short time a GPU is lent (docs/gpu.md):
#
#   benchmarks/gpu_check.sh OUT_DIR DATA        (or: make gpu-check GPU_OUT=DIR DATA_DIR=DATA)
#   benchmarks/gpu_check.sh --plan              (each stage's time limit and grace, and their sum)
#
# DATA: the CIFAR-10 JPEG copy as its tarball (cifar10-jpeg.tar.gz) or unpacked (a folder with train/
# and test/, or one holding such a folder), or torchvision's CIFAR-10 (cifar-10-python.tar.gz, or a
# folder with it or cifar-10-batches-py/); default $CIFAR10_JPEG_DIR. Checked before anything runs:
# without usable data the check says so in one line and exits 2 (a lent GPU is not spent on half a
# check). Without CUDA: one line, exit 2. GPU_CHECK_DEVICE=cpu runs the same stages on the CPU, only
# to try this script on a machine without a GPU (its numbers mean nothing for the GPU).
#
# Within its budget by construction: every stage below runs under `timeout -k GRACE LIMIT` (the
# limit, then SIGINT, then SIGKILL after the grace), every stage's LIMIT + GRACE sums to WORST (465 s),
# and nothing else the script does takes measurable time; the two study stages may use the seconds
# that earlier stages left unused, never more, so the whole check ends within BUDGET (470 s: under
# 8 minutes). Stages, in order, and what each writes under OUT_DIR:
#   probe      whether torch sees CUDA (before anything is written)
#   env        env.txt: the GPU, driver, torch, CUDA and cuDNN versions, the git revision
#   data       work/data/: the tarball unpacked (only when DATA is a tarball other than torchvision's)
#   tests      tests.txt: the tests marked `cuda` (benchmarks/cuda_tests.py: pytest, or without it a stand-in)
#   peak       peak.json: the device's measured bf16 and IEEE-fp32 matmul peaks (benchmarks/gpu_flops.py)
#   decode     the dataset decoded and cached once (work/cache/)
#   slice, slice_population   a study slice (8 variants x 2 seeds x 2 epochs, 10,000 images, fp32),
#              solo and in populations of 16: per-run accuracies in */runs.csv
#   study_solo, study_population   the full 8 x 5 x 10 study, solo (4 workers per GPU) and in
#              populations of 40: wall time, or what finished in the time given
#   flops_solo, flops_population   flops_*.json: each study's achieved FLOP/s and share of the bf16 peak
#   verdict    verdict.json: solo against population (model-epochs per second, slice accuracies), and
#              the default for --population on CUDA that these numbers support (benchmarks/gpu_verdict.py)
#   cleanup    the decoded cache deleted (work/cache/; the unpacked images, work/data/, in the background
#              once the check has ended)
#   summary.txt: one line per stage.
set -u

# name limit grace (seconds): the stage may run LIMIT, then gets SIGINT, then SIGKILL GRACE later
STAGES="probe 15 5
env 10 5
data 20 5
tests 75 10
peak 20 5
decode 35 5
slice 35 10
slice_population 30 10
study_solo 55 10
flops_solo 8 2
study_population 55 10
flops_population 8 2
verdict 8 2
cleanup 8 2"
WORST=$(echo "$STAGES" | awk '{s += $2 + $3} END {print s}')
BUDGET=470          # WORST plus the study stages' share of unused seconds; under 480 s (8 minutes)
SHARED="study_solo study_population"   # the stages that may use seconds left unused before them

if [ "${1:-}" = "--plan" ]; then
  echo "$STAGES" | awk '{printf "%-18s limit %3d s  grace %2d s  worst %3d s\n", $1, $2, $3, $2 + $3}'
  echo "worst case $WORST s; budget $BUDGET s"
  exit 0
fi
OUT=${1:-}
if [ -z "$OUT" ]; then
  echo "usage: benchmarks/gpu_check.sh OUT_DIR DATA   (DATA: cifar10-jpeg.tar.gz or a CIFAR-10 folder; --plan: the stages' limits)" >&2
  exit 2
fi
DATA=${2:-${CIFAR10_JPEG_DIR:-}}
REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then PY=$REPO/.venv/bin/python
else PY=python3; fi
case $PY in /*) ;; */*) PY=$PWD/$PY ;; esac     # the stages run from the repository's root

START=$(date +%s)
field() { echo "$STAGES" | awk -v n="$1" -v f="$2" '$1 == n {print $f}'; }
# seconds not yet spent of what the stages from NAME on may take at worst: the unused ones
slack() {
  local later
  later=$(echo "$STAGES" | awk -v n="$1" '$1 == n {on = 1} on {s += $2 + $3} END {print s}')
  echo $(( BUDGET - ($(date +%s) - START) - later ))
}
# stage NAME CMD...: run CMD within NAME's limit (a study stage: plus its share of the unused seconds)
# and grace; STAGE_RC and STAGE_SECS say how it went
stage() {
  local name=$1 limit grace extra t0; shift
  limit=$(field "$name" 2); grace=$(field "$name" 3)
  case " $SHARED " in *" $name "*)
    extra=$(slack "$name"); [ "$name" = study_solo ] && extra=$(( extra / 2 ))
    [ "$extra" -gt 0 ] && limit=$(( limit + extra )) ;;
  esac
  t0=$(date +%s)
  timeout -s INT -k "$grace" "$limit" "$@"
  STAGE_RC=$?
  STAGE_SECS=$(( $(date +%s) - t0 ))
  STAGE_LIMIT=$limit
  return $STAGE_RC
}

DEV=${GPU_CHECK_DEVICE:-cuda}
if [ "$DEV" = cuda ] && ! stage probe "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False or torch is missing for $PY); nothing was checked" >&2
  exit 2
fi
if [ -z "$DATA" ] || [ ! -e "$DATA" ]; then
  echo "gpu_check: no data at '${DATA}' (pass DATA: cifar10-jpeg.tar.gz, the cifar10-jpeg folder or torchvision's CIFAR-10); nothing was checked" >&2
  exit 2
fi
case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
WORK=$OUT/work        # the unpacked data and the decoded cache, deleted at the end
export TRICKS_CACHE_DIR=${TRICKS_CACHE_DIR:-$WORK/cache}
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
say "gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ), worst case $WORST s of a $BUDGET s budget, python $PY, data $DATA"
stage env bash -c '{ nvidia-smi 2>&1 | head -20
  "$0" -c "import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version());
print(\"device\", torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"cpu\", torch.cuda.get_device_capability(0) if torch.cuda.is_available() else \"\")"
  git -C "$1" rev-parse HEAD 2>/dev/null; git -C "$1" status --porcelain --untracked-files=no 2>/dev/null | head -20; }' \
  "$PY" "$REPO" > "$OUT/env.txt" 2>&1
say "env: $(grep '^device' "$OUT/env.txt" || echo unknown) ($(grep '^torch' "$OUT/env.txt"))"

# the data: a folder as it is; torchvision's archive where it lies; any other tarball unpacked first
layout() {   # DIR -> the --dataset/--data-dir arguments for the CIFAR-10 found in DIR, or nothing
  local d
  for d in "$1" "$1"/*/; do
    d=${d%/}
    if [ -d "$d/train" ] && [ -d "$d/test" ]; then echo "imagefolder $d"; return; fi
    if [ -d "$d/cifar-10-batches-py" ] || [ -f "$d/cifar-10-python.tar.gz" ]; then echo "cifar10 $d"; return; fi
  done
}
if [ -d "$DATA" ]; then FOUND=$(layout "$DATA")
elif [ "$(basename "$DATA")" = cifar-10-python.tar.gz ]; then FOUND="cifar10 $(dirname "$DATA")"
else
  mkdir -p "$WORK/data"
  stage data tar -xzf "$DATA" -C "$WORK/data"
  say "data: unpacked $DATA (rc $STAGE_RC, ${STAGE_SECS} s)"
  FOUND=$(layout "$WORK/data")
fi
if [ -z "$FOUND" ]; then
  say "gpu_check: no CIFAR-10 in $DATA (want train/ and test/, cifar-10-batches-py/ or cifar-10-python.tar.gz); stopped"
  exit 2
fi
DATASET=(--dataset "${FOUND%% *}" --data-dir "${FOUND#* }")
say "data: ${DATASET[*]}"

# 1. the tests that exercise CUDA (with pytest where it is installed, else its stand-in)
TRICKS_TEST_CUDA=1 stage tests "$PY" benchmarks/cuda_tests.py > "$OUT/tests.txt" 2>&1
say "tests (rc $STAGE_RC, ${STAGE_SECS} s): $(tail -1 "$OUT/tests.txt")"

# 2. the device's matmul peaks
stage peak "$PY" benchmarks/gpu_flops.py peak --out "$OUT/peak.json" > "$OUT/peak.txt" 2>&1
say "peak (rc $STAGE_RC): $(tail -1 "$OUT/peak.txt")"

# 3. the dataset, decoded and cached once (the studies below map the cache)
stage decode "$PY" -c 'import sys; from tricks.training.data import DataSource, load_dataset
d = load_dataset(DataSource(sys.argv[1], sys.argv[2]), progress=False); print(d.train_y.numel(), d.test_y.numel())' \
  "${DATASET[1]}" "${DATASET[3]}" > "$OUT/decode.txt" 2>&1
say "decode (rc $STAGE_RC, ${STAGE_SECS} s): $(tail -1 "$OUT/decode.txt") training and test images"

# ablation NAME ARGS...: a study into $OUT/NAME, stopped at its stage's limit (Ctrl-C: finished runs kept)
ablation() {
  local name=$1; shift
  stage "$name" "$PY" -m tricks ablation --spec benchmarks/backprop_tricks.toml "${DATASET[@]}" --device "$DEV" \
    --precision fp32 --no-progress --no-report --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "$STAGE_SECS" > "$OUT/$name.seconds"
  say "$name (rc $STAGE_RC): $(ls "$OUT/$name/runs" 2>/dev/null | wc -l) runs in $STAGE_SECS s (limit $STAGE_LIMIT s)"
}

# 4. a study slice, solo and in populations, with per-run accuracies (in the verdict)
ablation slice --seeds 0,1 --epochs 2 --train-subset 10000 --population 0
ablation slice_population --seeds 0,1 --epochs 2 --train-subset 10000 --population 16

# 5. the full 8 x 5 x 10 study: solo runs, then populations; what each achieved against the peak
flops() {   # flops NAME: the study $OUT/study_NAME's achieved FLOP/s
  stage "flops_$1" "$PY" benchmarks/gpu_flops.py achieved --results "$OUT/study_$1" --wall "$(cat "$OUT/study_$1.seconds")" \
    --peak "$OUT/peak.json" --out "$OUT/flops_$1.json" > "$OUT/flops_$1.txt" 2>&1
  say "  achieved (rc $STAGE_RC): $(tail -1 "$OUT/flops_$1.txt")"
}
ablation study_solo --population 0
flops solo
ablation study_population --population 40
flops population

# 6. what the numbers support as the default on CUDA
stage verdict "$PY" benchmarks/gpu_verdict.py "$OUT" > "$OUT/verdict.txt" 2>&1
tee -a "$SUMMARY" < "$OUT/verdict.txt"
stage cleanup rm -rf "$WORK/cache"
say "done in $(( $(date +%s) - START )) s (worst case $WORST s) -> $OUT"
nohup rm -rf "$WORK" > /dev/null 2>&1 &     # the unpacked images (60,000 files), after the check's end
