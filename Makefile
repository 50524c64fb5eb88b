# The two commands of the README:
#   make demo   – create .venv, install, build the Cython extension, run the demo
#   make test   – the same install, then the whole test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.padet-installed

.PHONY: install test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# Editable install builds padet_sdk._native from native/*.pyx; torch comes from the [train] extra.
$(STAMP): pyproject.toml setup.py native/padet_native.pyx | $(BIN)/python
	$(BIN)/python -m pip install -e ".[train,export,dev]"
	$(BIN)/python -c "import padet_sdk.native as n; assert n.BACKEND == 'cython', n.BACKEND"
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest

demo: install
	$(BIN)/python examples/demo.py

clean:
	rm -rf $(VENV) build *.egg-info padet_sdk/_native*.so native/*.c
