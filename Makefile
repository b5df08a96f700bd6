# burstsr developer commands. `make test` is what CI runs; `make demo` merges the example burst.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PIN ?= torch==2.13.0

.PHONY: install test lint demo data bench example docs-figures clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned: it is the CPU build on machines that have it locally, so pip never pulls a
# multi-GB CUDA build as a side effect of installing burstsr.
install: $(BIN)/python
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev]"

lint: install
	$(BIN)/ruff check burstsr tests benchmarks examples
	$(BIN)/ruff format --check burstsr tests benchmarks examples

test: install lint
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/burstsr run examples/burst -o result_x4.png --keep-merge --overwrite
	@echo "wrote result_x4.png (merged on the x4 grid, then restored) and result_grid4.png (that merge)"

# The public image sets of the benchmarks, figures and training recipes, into data/
# (python benchmarks/datasets.py list says what and from where). Offline: make data FROM=DIR
# copies them from a folder laid out alike.
data: install
	$(BIN)/python benchmarks/datasets.py fetch $(if $(FROM),--from $(FROM))

# Every benchmark behind docs/benchmarks.md (needs `make data`; hours on 2 CPU cores).
bench: install
	$(BIN)/python benchmarks/bench_merge.py
	$(BIN)/python benchmarks/bench_align.py
	$(BIN)/python benchmarks/bench_sr.py
	$(BIN)/python benchmarks/bench_estimate.py --full
	$(BIN)/python benchmarks/bench_bound.py --model burst --ablations
	$(BIN)/python benchmarks/bench_raw.py --run
	$(BIN)/python benchmarks/bench_real.py
	$(BIN)/python benchmarks/bench_real.py --camera --jpeg 90
	$(BIN)/python benchmarks/bench_anyscale.py

# Re-create examples/burst from the Kodak image (needs `make data`).
example: install
	$(BIN)/python examples/make_example_burst.py

docs-figures: install
	$(BIN)/python docs/make_figures.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info result_grid4.png result_x4.png
