# The two commands of the README:
#   make demo   – create .venv-demo with the runtime only (`pip install .`: numpy, OpenCV,
#                 OpenVINO, onnxruntime, the Cython extension; no torch), run the demo
#   make test   – create .venv with everything (`pip install -e ".[train,export,dev]"`),
#                 then the whole test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.padet-installed

DEMO_VENV  ?= .venv-demo
DEMO_BIN   := $(DEMO_VENV)/bin
DEMO_STAMP := $(DEMO_VENV)/.padet-installed
# The demo env holds a copy of the package (not an editable install), so it is reinstalled
# whenever a packaged file changes.
PACKAGED := pyproject.toml setup.py native/padet_native.pyx \
	$(wildcard padet_sdk/*.py padet_sdk/backends/*.py padet_sdk/models/* training/*.py training/data/*.py export/*.py)

.PHONY: install test demo demo-env clean

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

$(DEMO_BIN)/python:
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_BIN)/python -m pip install --upgrade pip

# `pip install .` builds in this tree: drop what an earlier build (or the editable install of
# `make test`) left in build/ and *.egg-info, so that stale files cannot get into the wheel.
# pycocotools (numpy only) is there for the demo's AP50, motmetrics (numpy, pandas) for its
# MOTA/IDF1. The checks run with -I, so that they import the installed package and not the
# checkout in the current directory.
$(DEMO_STAMP): $(PACKAGED) | $(DEMO_BIN)/python
	rm -rf build *.egg-info
	$(DEMO_BIN)/python -m pip install . pycocotools motmetrics
	$(DEMO_BIN)/python -I -c "import padet_sdk.native as n, pathlib, sys; \
		assert n.BACKEND == 'cython', n.BACKEND; \
		assert pathlib.Path(n.__file__).is_relative_to(sys.prefix), n.__file__"
	$(DEMO_BIN)/python -I -c "import importlib.util as u; \
		bad = [m for m in ('torch', 'onnx', 'nncf') if u.find_spec(m)]; \
		assert not bad, f'the runtime install pulled in {bad}'"
	touch $(DEMO_STAMP)

demo-env: $(DEMO_STAMP)

demo: demo-env
	$(DEMO_BIN)/python examples/demo.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) build *.egg-info padet_sdk/_native*.so native/*.c
