# Everyday commands. `make test` is the README's full test command (the one .ci/run runs), `make check` the quick
# gate before a commit: lint and the tests not marked slow.
PYTHON := $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: check lint typecheck fast test bench

check: lint typecheck fast

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# annotations of estimators/ and advisor/, the wizard included (pyproject.toml [tool.mypy] files; the heavy libraries skipped)
typecheck:
	$(PYTHON) -m mypy

# PYTHONDONTWRITEBYTECODE (set in some CI images) makes every run re-compile and re-rewrite all test modules
fast:
	env -u PYTHONDONTWRITEBYTECODE $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow"

test:
	$(PYTHON) -m pytest -q -p no:cacheprovider

bench:
	$(PYTHON) bench/speed.py
