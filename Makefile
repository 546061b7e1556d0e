# Two set-up commands for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-slow bench docs gallery notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/bayesreg demo --out bayesreg-demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m slow || [ $$? -eq 5 ]

$(VENV)/.installed-docs: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

# the site, strictly; then the rendered pages in a headless browser with no network
# (tests/test_docs_render.py: formulas drawn, no raw TeX, no remote script or font; it skips
# where chromium is not installed)
docs: $(VENV)/.installed-docs $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site
	$(BIN)/python -m pytest -q -p no:cacheprovider -o addopts="" tests/test_docs_render.py

# Every example at full size, one at a time: figures and printed numbers into docs/figures/
# (NAME.png, NAME.txt with the wall time); `make gallery NAMES="bagging dropout"` for a few.
gallery: $(VENV)/.installed
	$(BIN)/python examples/_gallery.py $(NAMES)

$(VENV)/.installed-notebooks: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	touch $@

# The book's ten notebooks (notebooks/*.py, jupytext percent scripts) at quick sizes
# (BAYESREG_QUICK=1), each converted to .ipynb and executed into build/notebooks/; any cell
# error fails the target. Full sizes: `make notebooks QUICK=0`.
QUICK ?= 1
notebooks: $(VENV)/.installed-notebooks
	mkdir -p build/notebooks
	set -e; for nb in notebooks/*.py; do \
		echo "$$nb"; \
		BAYESREG_QUICK=$(QUICK) \
		$(BIN)/jupytext --to ipynb --execute \
			--output build/notebooks/$$(basename $$nb .py).ipynb $$nb; \
	done

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) bayesreg-demo build *.egg-info
