# `make test`, `make lint`: create or refresh .venv (when missing or the requirements changed),
# then run. Pins for this project's machines are in requirements/constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := setup.py requirements/runtime.txt requirements/tests.txt requirements/constraints.txt
# -qq hides the warnings this machine's pip config prints for absent mirror folders; errors show.
PIP := $(BIN)/python -m pip install -qq --disable-pip-version-check -c requirements/constraints.txt
PYTEST_ARGS ?=

.PHONY: venv test test-fast test-torch2.1 test-torch2.15 lint demo clean jpeg-roi

venv: $(STAMP) jpeg-roi

# The JPEG region decoder (resnest_mm/datasets/jpeg_roi.py), against the system libjpeg-turbo
# (Debian/Ubuntu: libjpeg62-turbo-dev or libjpeg-turbo8-dev). Optional: without it crops decode
# the whole image; a failed build says so and goes on.
JPEG_ROI := resnest_mm/datasets/_jpeg_roi.so
CC ?= cc
jpeg-roi: $(JPEG_ROI)

$(JPEG_ROI): csrc/jpeg_roi.c
	-$(CC) -O2 -shared -fPIC -Wall -o $@ $< -ljpeg || \
		echo "jpeg-roi not built (needs a C compiler and libjpeg-turbo headers); crops decode whole images"

$(STAMP): $(REQUIREMENTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned stack into $(VENV) (first time: a few minutes)"
	$(PIP) 'setuptools<82' wheel
	$(PIP) -r requirements/runtime.txt -r requirements/tests.txt mmcv-lite
	$(PIP) --no-deps --no-build-isolation -e .
	@touch $@

test: $(STAMP) jpeg-roi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: everything not marked slow (a few minutes on 2 cores).
test-fast: $(STAMP) jpeg-roi
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

# The oldest and the newest supported torch, each in a venv of its own (.venv-torch2.1,
# .venv-torch2.15: built once and reused, a few GB of downloads). The user's stack goes in first
# (requirements/constraints-torch<V>.txt), then `pip install .` with no constraints at all must
# add resnest_mm and change nothing else; then the tests marked `compat` run there. PIP_CONSTRAINT
# replaces any constraint file a pip config sets (/dev/null: none; an empty value does not).
TORCH_VENV_DEPS := setup.py requirements/runtime.txt requirements/tests.txt

.venv-torch%/.installed: requirements/constraints-torch%.txt $(TORCH_VENV_DEPS)
	@test -x $(@D)/bin/python || $(PYTHON) -m venv $(@D)
	@echo "installing torch $* and the stack into $(@D) (first time: a few minutes)"
	PIP_CONSTRAINT=$< $(@D)/bin/python -m pip install -qq --disable-pip-version-check \
		torch torchvision 'setuptools<82' wheel -r requirements/runtime.txt \
		-r requirements/tests.txt mmcv-lite
	$(@D)/bin/python -m pip uninstall -qq -y resnest_mm 2>/dev/null || true
	$(@D)/bin/python -m pip freeze --exclude resnest_mm > $(@D)/before.txt
	PIP_CONSTRAINT=/dev/null $(@D)/bin/python -m pip install -qq --disable-pip-version-check \
		--no-build-isolation .
	$(@D)/bin/python -m pip freeze --exclude resnest_mm > $(@D)/after.txt
	@diff $(@D)/before.txt $(@D)/after.txt || \
		{ echo "pip install . changed the installed stack (above)"; exit 1; }
	@touch $@

test-torch2.1 test-torch2.15: test-torch%: .venv-torch%/.installed
	.venv-torch$*/bin/python -c 'import torch; print("torch", torch.__version__)'
	.venv-torch$*/bin/python -m pytest -m compat -p no:cacheprovider $(PYTEST_ARGS)

# ruff, then the layering of .importlinter (docs/architecture.md): no upward import, no circle.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# The demo: ResNeSt-50 learns scikit-learn's digits on whatever device is present, then the final
# checkpoint is evaluated by tools/test.py.
DEMO_CONFIG := configs/resnest50_1xb32_digits.py
DEMO_DIR := work_dirs/demo

data/digits/.complete: tools/dataset_converters/make_digits.py | $(STAMP)
	$(BIN)/python tools/dataset_converters/make_digits.py data/digits
	@touch $@

demo: $(STAMP) data/digits/.complete
	$(BIN)/python tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)
	$(BIN)/python tools/test.py $(DEMO_CONFIG) "$$(cat $(DEMO_DIR)/last_checkpoint)" \
		--work-dir $(DEMO_DIR)/test
	@$(BIN)/python -c "import json; s = json.load(open('$(DEMO_DIR)/test/summary.json')); \
		print(f\"accuracy/top1: {s['accuracy/top1']:.2f}  accuracy/top5: {s['accuracy/top5']:.2f}\")"
	@echo "checkpoint: $$(cat $(DEMO_DIR)/last_checkpoint)"
	@echo "logs: $(DEMO_DIR)/ (training) and $(DEMO_DIR)/test/ (evaluation), summary.json in each"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache $(JPEG_ROI)
