# backprop-tricks. Every target creates .venv and installs the project when it is missing.
#   make ablation   the study (benchmarks/backprop_tricks.toml), 5 seeds, on whatever device there is
#   make figures    regenerate figures, tables and REPORT.md from stored runs (no training)
#   make test       the test suite
# Pass-through variables: SPEC SEEDS EPOCHS DATASET DATA_DIR TRAIN_SUBSET WORKERS DEVICE PRECISION OUT RESULTS

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

SPEC      ?= benchmarks/backprop_tricks.toml
SEEDS     ?= 0,1,2,3,4
DATASET   ?= cifar10
DEVICE    ?= auto
PRECISION ?= fp32
RESULTS   ?= results/backprop_tricks

ABLATION_ARGS = --spec $(SPEC) --seeds $(SEEDS) --dataset $(DATASET) --device $(DEVICE) --precision $(PRECISION) \
	$(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
	$(if $(TRAIN_SUBSET),--train-subset $(TRAIN_SUBSET)) $(if $(WORKERS),--workers $(WORKERS)) \
	$(if $(OUT),--out $(OUT))

.PHONY: venv ablation one-at-a-time figures test clean-venv

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

figures: $(STAMP)
	$(PY) -m tricks figures --results $(RESULTS)

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
