# eoe_nb: `make reproduce` (set up + run the main job) and `make test` (the whole test suite); `make docs` (HTML pages
# of the notebooks in _docs/), `make index` (nbs/index.ipynb from README.md), `make lab` (JupyterLab with the venv's kernel).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# Where data sets live (EOE_DATA). Default: ./data, filled from ../shared/data when that folder exists.
EOE_DATA ?= $(CURDIR)/data
SHARED ?= $(CURDIR)/../shared
# Size of the experiments of `make reproduce`: paper, cpu or smoke (eoe_nb.paper_items.SCALES).
SCALE ?= cpu
OUT ?= $(CURDIR)/outputs
export EOE_DATA
export HF_HUB_OFFLINE ?= 1

.PHONY: install data reproduce test test-notebooks test-pytest test-long sync clean-venv index docs kernel lab

install: $(VENV)/.installed

# torch is pinned to the build this project is tested with; pip takes it from the local disk where it lies there.
$(VENV)/.installed: setup.py settings.ini
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# Unpack the JPEG copy of CIFAR-10 into $(EOE_DATA) when it is available beside the checkout and not yet unpacked.
data:
	@mkdir -p "$(EOE_DATA)"
	@if [ ! -d "$(EOE_DATA)/cifar10-jpg" ] && [ -f "$(SHARED)/data/cifar10-jpg.tar.gz" ]; then \
	  echo "unpacking $(SHARED)/data/cifar10-jpg.tar.gz into $(EOE_DATA)"; \
	  tar xzf "$(SHARED)/data/cifar10-jpg.tar.gz" -C "$(EOE_DATA)"; fi

# The main job: every table and figure of the paper, next to the published numbers (OUT/report.md).
reproduce: install data
	$(BIN)/eoe-figures --scale $(SCALE) --out "$(OUT)"

# Notebook tests: plain cells always; cells flagged `data` too when CIFAR-10 is under $(EOE_DATA).
test-notebooks: install data
	@flags=""; if [ -d "$(EOE_DATA)/cifar10-jpg" ] || [ -d "$(EOE_DATA)/cifar-10-batches-py" ]; then flags="--flags data"; fi; \
	echo "nbdev_test $$flags (EOE_DATA=$(EOE_DATA))"; \
	$(BIN)/nbdev_test --n_workers 2 --timing $$flags

test-pytest: install data
	$(BIN)/python -m pytest -q --durations=10 -m "not long" tests

# Tests of minutes of real training that `make test` (and CI) leave out.
test-long: install data
	$(BIN)/python -m pytest -q --durations=10 -m long tests

test: test-notebooks test-pytest

clean-venv:
	rm -rf $(VENV)

# README.md is the file to edit; nbs/index.ipynb repeats it (nbdev's readme_nb, the docs' front page).
index: install
	$(BIN)/python tools/docs.py index

# Every notebook of nbs/ and papers_figures/ as HTML (not executed), offline: open $(DOCS)/index.html.
DOCS ?= $(CURDIR)/_docs
docs: install
	$(BIN)/python tools/docs.py html "$(DOCS)"

# The venv as a Jupyter kernel named eoe_nb; KERNEL_FLAGS="--prefix DIR" registers it elsewhere than the user's folder.
KERNEL_FLAGS ?= --user
kernel: install
	$(BIN)/python -m ipykernel install $(KERNEL_FLAGS) --name eoe_nb --display-name "eoe_nb (.venv)"

lab: kernel
	$(BIN)/jupyter lab --notebook-dir="$(CURDIR)"
