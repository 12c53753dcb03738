# backprop-tricks. Every target creates .venv and installs the project when it is missing.
#   make ablation   the study (benchmarks/backprop_tricks.toml), 5 seeds, on whatever device there is,
#                   into results/local/backprop_tricks/ (OUT=DIR for another folder)
#   make studies    the follow-up studies (lr_schedules, lecun_lecture, factorial, ...: STUDIES), resumable
#   make figures    regenerate figures, tables and REPORT.md of every committed study from stored runs
#                   (no training); OUT=DIR: only that study
#   make confirm    the pre-registered claims (benchmarks/claims.toml) on fresh seeds into results/confirm,
#                   from a worktree of its registered revision (docs/confirmation.md); resumable
#   make test       the test suite
#   make regression the CI regression check on accuracy deltas (needs REG_DATA or CIFAR10_JPEG_DIR)
#   make bench      throughput levers and short studies, side by side (benchmarks/; writes results/bench/)
#   make bench-short  only the short studies, whole processes (AGAINST=REV: also time revision REV)
# Pass-through variables: SPEC SEEDS EPOCHS DATASET DATA_DIR TRAIN_SUBSET VALIDATION WORKERS THREADS EXECUTOR
# RAY_ADDRESS DEVICE PRECISION OUT REPLACE (make studies: STUDIES STUDIES_PRECISION; make figures: OUT)
# A study goes to results/local/<spec name>/ unless OUT names a folder (OUT=results/<name> extends a
# committed study); stored runs made with other settings are never replaced unless REPLACE=1.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

SPEC      ?= benchmarks/backprop_tricks.toml
DATASET   ?= cifar10
DEVICE    ?= auto
PRECISION ?= auto

# SEEDS, EPOCHS, ...: the spec's own unless given.
ABLATION_ARGS = --spec $(SPEC) $(if $(SEEDS),--seeds $(SEEDS)) --dataset $(DATASET) --device $(DEVICE) --precision $(PRECISION) \
	$(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
	$(if $(TRAIN_SUBSET),--train-subset $(TRAIN_SUBSET)) $(if $(VALIDATION),--validation $(VALIDATION)) \
	$(if $(WORKERS),--workers $(WORKERS)) $(if $(THREADS),--threads $(THREADS)) $(if $(EXECUTOR),--executor $(EXECUTOR)) \
	$(if $(RAY_ADDRESS),--ray-address $(RAY_ADDRESS)) \
	$(if $(OUT),--out $(OUT)) $(if $(REPLACE),--replace)

REG_DATA  ?= $(CIFAR10_JPEG_DIR)
REG_OUT   ?= results/ci_profile
# Precision of the check: bf16 where the CPU has it natively (the committed ci_profile.json), else fp32
# (ci_profile_fp32.json): emulated bf16 is ~10x slower and would make the check take an hour.
REG_PRECISION ?= $(shell $(PY) -c "import torch; from tricks.running.device import bf16_is_native; print('bf16' if bf16_is_native(torch.device('cpu')) else 'fp32')" 2>/dev/null || echo bf16)
REG_REF   ?= $(if $(filter fp32,$(REG_PRECISION)),results/reference/ci_profile_fp32.json,results/reference/ci_profile.json)

.PHONY: venv ablation one-at-a-time studies confirm figures factorial-vs-cumulative test bench bench-short regression regression-update regression-run clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

ablation: $(STAMP)
	$(PY) -m tricks ablation $(ABLATION_ARGS)

one-at-a-time: $(STAMP)
	$(MAKE) ablation SPEC=benchmarks/one_at_a_time.toml

# The follow-up studies, one after the other, each with its spec's own seeds and epochs (10), into
# its committed folder; they resume where they stopped. Each 10-epoch full-data fp32 run takes about
# 5-6 minutes of one core on the 2-core machine: about 3.5 h (lr_schedules, 5 seeds), 2.5 h
# (lecun_lecture, 5 seeds), 2.4 h (factorial), 1.5 h (modern_tricks) and 3.5 h (factorial_followup,
# 5 seeds) on 2 cores; tuned_tricks (84 runs, bf16: 150 min of compute, about 75 min on 2 workers)
# and transfer (63 runs on three models, bf16: 75 min). Needs DATASET/DATA_DIR like ablation.
# Not run yet (issue 35): lecun_lecture's fixed_order variant (5 fp32 runs: about 15 min on 2 workers,
# the other variants' stored runs are reused), modern_tricks_annealed (the seven modern tricks on a
# one-cycle recipe, 40 fp32 runs: about 1.2 h on 2 workers, up to 2.5 h on a slower 2-core machine) and
# transfer_v2 (transfer at one budget for every network, 5 seeds, 105 bf16 runs: about 1.8 h on 2 workers).
# One of them alone: make studies STUDIES=transfer_v2 DATASET=imagefolder DATA_DIR=...
STUDIES ?= lr_schedules lecun_lecture factorial modern_tricks factorial_followup tuned_tricks transfer \
	modern_tricks_annealed transfer_v2
# Each study in the precision it is stored in, whatever the hardware (precision is part of every run's
# settings key; `auto` would also follow a folder's stored precision, but a new folder has none):
# fp32, except the studies in BF16_STUDIES, started in bf16 on a CPU with native bf16.
STUDIES_PRECISION ?= fp32
BF16_STUDIES ?= tuned_tricks transfer transfer_v2
studies: $(STAMP)
	@for s in $(STUDIES); do \
	  p=$(STUDIES_PRECISION); case " $(BF16_STUDIES) " in *" $$s "*) p=bf16;; esac; \
	  echo "== $$s ($$p)"; \
	  $(PY) -m tricks ablation --spec benchmarks/$$s.toml --out results/$$s --dataset $(DATASET) --device $(DEVICE) \
	    --precision $$p $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(WORKERS),--workers $(WORKERS)) \
	    || exit $$?; \
	done

# Every committed study (each results/<name>/ with a study.json), or only OUT=DIR.
FIGURES ?= $(or $(OUT),$(RESULTS),$(filter-out results/ci_profile results/local,$(patsubst %/study.json,%,$(wildcard results/*/study.json))))
figures: $(STAMP)
	@for d in $(FIGURES); do $(PY) -m tricks figures --results $$d || exit $$?; done
	@$(if $(OUT),,if [ -f $(CONFIRM_OUT)/preregistration.json ]; then $(PY) -m tricks confirm --report-only --out $(CONFIRM_OUT); fi)

# The factorial study's main effects beside the cumulative study's step deltas, from their stored
# tables (effects.csv, deltas.csv): results/factorial/vs_cumulative.csv and .png. No training.
factorial-vs-cumulative: $(STAMP)
	$(PY) benchmarks/factorial_vs_cumulative.py

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/throughput.py $(if $(REG_DATA),--data-dir $(REG_DATA))
	$(PY) benchmarks/short_studies.py $(if $(REG_DATA),--data-dir $(REG_DATA))

bench-short: $(STAMP)
	$(PY) benchmarks/short_studies.py $(if $(REG_DATA),--data-dir $(REG_DATA)) $(if $(AGAINST),--against $(AGAINST))

regression-run: $(STAMP)
	@if [ -z "$(REG_DATA)" ] || [ ! -d "$(REG_DATA)/train" ]; then \
	  echo "regression check cannot run: no image data. Unpack cifar10-jpeg.tar.gz and pass" >&2; \
	  echo "  make regression REG_DATA=/path/to/cifar10-jpeg   (or set CIFAR10_JPEG_DIR)" >&2; exit 2; fi
	rm -rf $(REG_OUT)
	$(PY) -m tricks ablation --spec benchmarks/ci_profile.toml --dataset imagefolder --data-dir $(REG_DATA) \
	  --device cpu --precision $(REG_PRECISION) --out $(REG_OUT) --no-progress --no-report

regression: regression-run
	$(PY) -m tricks check --results $(REG_OUT) --reference $(REG_REF)

regression-update: regression-run
	$(PY) -m tricks check --results $(REG_OUT) --reference $(REG_REF) --update

# The confirmation (issue 34): benchmarks/claims.toml's claims on fresh seeds 5-14, seed by seed, into
# results/confirm, always from a clean worktree of the revision it registered (benchmarks/confirm.sh);
# resumable. Needs DATASET/DATA_DIR like ablation. About 34 runs a seed (bf16: ~35 min a seed on 2 cores).
CLAIMS ?= benchmarks/claims.toml
CONFIRM_SEEDS ?= 5-14
CONFIRM_OUT ?= results/confirm
confirm: $(STAMP)
	bash benchmarks/confirm.sh $(abspath $(PY)) $(CLAIMS) $(CONFIRM_SEEDS) $(CONFIRM_OUT) $(DATASET) "$(DATA_DIR)" $(WORKERS)

clean-venv:
	rm -rf $(VENV)

# One prepared check of the CUDA path (benchmarks/gpu_check.sh; docs/gpu.md): under 8 minutes on an
# H100/H200-class GPU, everything under GPU_OUT (DATA_DIR: the CIFAR-10 data for its study stages).
# Without CUDA it says so in one line and exits 2. It needs no .venv: where .venv is missing (a lent GPU
# machine with torch & co installed) it runs with $(PYTHON).
GPU_OUT ?= results/local/gpu_check
.PHONY: gpu-check
gpu-check:
	PYTHON=$(if $(wildcard $(PY)),$(PY),$(PYTHON)) bash benchmarks/gpu_check.sh $(GPU_OUT) $(DATA_DIR)
