#!/usr/bin/env bash
# make confirm: train the pre-registered claims (benchmarks/claims.toml) on fresh seeds into
# results/confirm, always from a clean checkout of one revision: the one registered in
# results/confirm/preregistration.json, else (first start) HEAD, which must then be committed and clean.
# The checkout is a git worktree under $TMPDIR, so main can move on while the confirmation resumes
# across sessions at its own revision.
# usage: confirm.sh PYTHON CLAIMS SEEDS OUT DATASET DATA_DIR [WORKERS]
set -euo pipefail
py=$1 claims=$2 seeds=$3 out=$4 dataset=$5 data_dir=$6 workers=${7:-}
root=$(git rev-parse --show-toplevel)
reg="$out/preregistration.json"
if [ -f "$reg" ]; then
  rev=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['revision'] or '')" "$reg")
  [ -n "$rev" ] || { echo "confirm: $reg has no revision (a --allow-dirty trial?); use a new OUT" >&2; exit 2; }
else
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "confirm: the tree has uncommitted changes; commit them first (a confirmation registers one revision)" >&2
    exit 2
  fi
  rev=$(git rev-parse HEAD)
fi
wt="${TMPDIR:-/tmp}/backprop-tricks-confirm-${rev:0:12}"
if [ ! -d "$wt/tricks" ]; then
  git worktree prune
  git worktree add --force --detach "$wt" "$rev" >/dev/null
fi
case "$out" in /*) abs_out=$out ;; *) abs_out="$root/$out" ;; esac
case "$claims" in /*) abs_claims=$claims ;; *) abs_claims="$wt/$claims" ;; esac
case "$data_dir" in ""|/*) abs_data=$data_dir ;; *) abs_data="$root/$data_dir" ;; esac
echo "confirm: training at revision ${rev:0:12} from $wt into $abs_out"
cd "$wt"
exec env PYTHONPATH="$wt" "$py" -m tricks confirm --claims "$abs_claims" --seeds "$seeds" --out "$abs_out" \
  --dataset "$dataset" ${abs_data:+--data-dir "$abs_data"} ${workers:+--workers "$workers"}
