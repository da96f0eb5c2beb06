# Set-up is idempotent: the virtual environment is (re)built only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the release the build machines hold on local disk; override on other machines.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.evalsuite-installed

.PHONY: setup demo test clean-demo

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[all,test]'
	touch $(STAMP)

demo: setup
	HF_HUB_OFFLINE=1 $(PY) -m evalsuite run --backends flux-tiny,reference --prompts smoke --run-dir results/demo

# The HTML-report test drives headless Chromium (Debian packages chromium, chromium-driver).
test: setup
	sh scripts/ensure_chromium.sh
	$(PY) -m pytest -q

clean-demo:
	rm -rf results/demo
