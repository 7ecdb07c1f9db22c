# kmt-harness: `make demo` runs a full top-up on the embedded stack; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench system-deps pcscd-start pcscd-stop clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	@if [ "$$(id -u)" = "0" ]; then scripts/install-system-deps.sh; fi
	$(PY) -m pip install --quiet --no-binary pyscard -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kmt demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	scripts/with-pcscd.sh $(PY) -m pytest

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) -P $$b || exit 1; done

system-deps:
	scripts/install-system-deps.sh

pcscd-start:
	scripts/pcscd.sh start

pcscd-stop:
	scripts/pcscd.sh stop

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
