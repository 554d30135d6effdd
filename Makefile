# Two entry points: `make demo` (the main job) and `make test` (the whole suite, as CI runs it).
# Both create .venv when missing; installing torch==2.13.0 first keeps pip from pulling a CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint bench setup lock plugin-example

setup: $(STAMP)

# constraints.txt pins every package to the version the suite passed with (refresh it with `make lock`).
# The demo needs only the run-time packages ($(RUN_STAMP): with serve's and the openai client for its last step);
# the tests add the test extra on top ($(STAMP)).
# Our three packages build with the venv's own setuptools (--no-build-isolation: no throw-away build env each).
$(RUN_STAMP): pyproject.toml plugins/llm/pyproject.toml plugins/gfm/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0 'setuptools>=64'
	$(BIN)/python -m pip install -q --no-build-isolation -c constraints.txt -e '.[torch,cli,serve]' -e plugins/llm -e plugins/gfm 'openai>=1.40'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install -q --no-build-isolation -c constraints.txt -e '.[torch,cli,test]' -e plugins/llm -e plugins/gfm
	touch $(STAMP)

# Rewrite constraints.txt from .venv (after upgrading packages there and passing `make test`): every installed
# distribution but our three editable ones, torch without its local build tag (+cpu) so any build matches.
lock:
	test -x $(BIN)/python || { echo "error: no $(BIN)/python; run make setup first" >&2; exit 1; }
	{ echo "# Versions the suite passed with; written by make lock (do not edit by hand)."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -Eiv '^registry[-_](core|llm|gfm)[=@ ]' \
	  | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > constraints.tmp && mv constraints.tmp constraints.txt

demo: $(RUN_STAMP)
	$(BIN)/python -m registry_core plugins
	$(BIN)/python -m registry_core list
	$(BIN)/python -m registry_core check examples/gpt-tiny.toml
	$(BIN)/python -m registry_core run examples/gpt-tiny.toml --out runs/gpt-tiny --overwrite
	$(BIN)/python -m registry_core generate runs/gpt-tiny --prompt "The with statement" --max-tokens 48
	$(BIN)/python -m registry_core run examples/cls-tiny.toml --out runs/cls-tiny --overwrite
	$(BIN)/python -m registry_core run examples/sft-tiny.toml --out runs/sft-tiny --overwrite
	$(BIN)/python -m registry_core ingest examples/lsat7-ingest.toml
	$(BIN)/python -m registry_core run examples/mae-tiny.toml --out runs/mae-tiny --overwrite
	$(BIN)/python -m registry_core run examples/seg-tiny.toml --out runs/seg-tiny --overwrite
	$(BIN)/python -m registry_core predict runs/seg-tiny --input runs/lsat7/datacube.zarr --output runs/landcover.tif --overwrite
	$(BIN)/python -m registry_core predict runs/seg-tiny --input runs/lsat7/datacube.zarr --output runs/landcover.gpkg --overwrite
	$(BIN)/python -m registry_core report runs/gpt-tiny runs/cls-tiny runs/sft-tiny runs/mae-tiny runs/seg-tiny --artifact runs/landcover.tif --artifact runs/landcover.gpkg --out runs/report
	$(BIN)/python examples/serve_smoke.py runs/sft-tiny

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(MAKE) plugin-example

# Install the third-party example plugin, run its tests and pipeline, uninstall it, check the registry is as before.
plugin-example: $(STAMP)
	PYTHON=$(BIN)/python bash examples/thirdparty-plugin/ci.sh

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
