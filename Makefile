# `make install` then `make test` is the whole set-up (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# CPU-only TensorFlow keeps the install small and fast; GPU users install
# the `gpu` extra themselves (README: Installing).
EXTRAS ?= cpu,dev,onnx,tune

.PHONY: install test test-fast test-apps fuzz lint golden catalog schema bench clean

install: $(BIN)/kgraph
	@# Graphviz's `dot` draws `kgraph plot` .png/.svg/.pdf (.dot/.mmd need nothing).
	@# Installed as root where apt-get exists (CI, containers); otherwise a warning.
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make install: installing Graphviz (apt-get install graphviz) for kgraph plot"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; } \
	      || echo "make install: warning: could not install Graphviz; kgraph plot writes .dot/.mmd only"; \
	  else \
	    echo "make install: warning: Graphviz is missing; for kgraph plot .png/.svg/.pdf run" \
	      "'sudo apt-get install graphviz' (Debian/Ubuntu) or 'brew install graphviz' (macOS)"; \
	  fi; }

$(BIN)/kgraph: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make install: $(PYTHON) not found (kgraph needs Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

# On every core (pytest-xdist), a test file per worker (the README's commands
# run in order in one folder); the slowest tests are listed at the end.
test: install
	$(BIN)/pytest -q -n auto --dist loadfile --durations=15

# Pure-Python tests only: no TensorFlow import in the tests themselves (20-30 s;
# a few of them start kgraph in a subprocess to prove it stays TensorFlow-free).
test-fast: install
	$(BIN)/pytest -q -m "not tf"

# Every keras.applications constructor through `kgraph import` and back (80
# cases, with and without the top, and the sample from .h5 files; about 14 minutes
# on 2 cores): what `make test` samples.
test-apps: install
	$(BIN)/pytest -q -m apps --durations=5 tests/test_import.py

# Property-based fuzzing (tests/test_fuzz.py) at a large budget: FUZZ_EXAMPLES
# generated specs, overrides and command lines in all, with random seeds, and
# builds and summaries besides structural checks (about 15 minutes here). It
# lists every distinct failure with the smallest input that showed it, also in
# build/fuzz-report.txt (each input whole in build/fuzz-report.txt.cases/).
# `make test` runs the same tests on a fixed seed and a small budget.
FUZZ_EXAMPLES ?= 20000
fuzz: install
	@mkdir -p build && rm -rf build/fuzz-report.txt build/fuzz-report.txt.cases
	KGRAPH_FUZZ_PROFILE=fuzz KGRAPH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  KGRAPH_FUZZ_REPORT=build/fuzz-report.txt $(BIN)/pytest -q -p no:cacheprovider tests/test_fuzz.py

lint: install
	$(BIN)/ruff check kgraph_cli tests benchmarks
	$(BIN)/ruff format --check kgraph_cli tests benchmarks

# Regenerate the expected diagnostics of tests/invalid/*.yaml; review the diff.
golden: install
	$(BIN)/python -m tests.golden

# Regenerate the Keras layer catalog after a Keras upgrade; review the diff.
catalog: install
	$(BIN)/python -m kgraph_cli.catalog_gen

# Regenerate the JSON Schema that specs/ point editors at.
schema: install
	$(BIN)/kgraph schema -o schema/kgraph.schema.json --force

bench: install
	$(BIN)/python benchmarks/build_speed.py
	$(BIN)/python benchmarks/train_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
