# One entry point for set-up, tests, the demo comparison and benchmarks.
# `make demo` and `make test` do all set-up on a fresh machine (Python 3.9-3.12 + pip).
PYTHON ?= python3
STACK ?= tf219
VENV ?= .venv
ifneq ($(STACK),tf219)
VENV := .venv-$(STACK)
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(STACK)
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=

.PHONY: install test test-tf215 demo data bench lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints/$(STACK).txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=23"
	$(BIN)/python -m pip install -q -c constraints/$(STACK).txt -e ".[test,lint,examples]"
	touch $@

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-tf215:
	$(MAKE) test STACK=tf215

# Fashion-MNIST from Debian's package (offline); TFDS builds it from these files.
data:
	@test -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz || \
	  { echo "Installing Debian's dataset-fashion-mnist (needs root and apt)"; \
	    (apt-get update -q && apt-get install -y -q dataset-fashion-mnist) >/dev/null; }
	@test -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz || \
	  { echo "Fashion-MNIST not found in $(FMNIST_DIR); see README 'Data'"; exit 1; }

demo: install data
	$(BIN)/larq-bamsprod compare --dataset fashion_mnist --model BinaryCNN \
	  --optimizers bamsprod,bop,adam,amsgrad,adabound,sgdm --epochs 3 --seeds 0 \
	  --train-subset 12000 --batch-size 128 --output $(DEMO_OUT)

bench: install
	$(BIN)/python benchmarks/update_step.py --output runs/bench.json

lint: install
	$(BIN)/ruff check larq_bamsprod tests examples benchmarks

clean:
	rm -rf .venv .venv-* runs build *.egg-info
