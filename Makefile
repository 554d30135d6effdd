# Two entry points: `make demo` (the main job) and `make test` (the whole suite, as CI runs it).
# Both create .venv when missing; installing torch==2.13.0 first keeps pip from pulling a CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint bench setup

setup: $(STAMP)

$(STAMP): pyproject.toml plugins/llm/pyproject.toml plugins/gfm/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[torch,cli,test]' -e plugins/llm -e plugins/gfm
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m registry_core plugins
	$(BIN)/python -m registry_core list
	$(BIN)/python -m registry_core check examples/gpt-tiny.toml
	$(BIN)/python -m registry_core run examples/gpt-tiny.toml --out runs/gpt-tiny
	$(BIN)/python -m registry_core generate runs/gpt-tiny --prompt "The with statement" --max-tokens 48
	$(BIN)/python -m registry_core ingest examples/lsat7-ingest.toml
	$(BIN)/python -m registry_core run examples/mae-tiny.toml --out runs/mae-tiny
	$(BIN)/python -m registry_core run examples/seg-tiny.toml --out runs/seg-tiny
	$(BIN)/python -m registry_core predict runs/seg-tiny --input runs/lsat7/datacube.zarr --output runs/landcover.tif --overwrite
	$(BIN)/python -m registry_core report runs/gpt-tiny runs/mae-tiny runs/seg-tiny --artifact runs/landcover.tif --out runs/report

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
