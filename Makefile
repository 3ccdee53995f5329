# One entry point for set-up, tests, the demo comparison and benchmarks.
# `make demo` and `make test` do all set-up on a fresh machine (Python 3.9-3.12 + pip).
#
# Two stacks (README, "Supported versions"):
#   .venv        STACK=tf219: TF 2.19.1, the library and the harness (larq-zoo allows < 2.20)
#   .venv-tf221  the library alone on the newest TensorFlow (2.21.0), no harness extra
PYTHON ?= python3
STACK ?= tf219
VENV ?= .venv
ifneq ($(STACK),tf219)
VENV := .venv-$(STACK)
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(STACK)
LIB_VENV := .venv-tf221
LIB_STAMP := $(LIB_VENV)/.installed-tf221
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=

.PHONY: install install-lib test test-full test-lib test-tf215 demo data kernels bench \
	bench-train lint clean

install: $(STAMP)

# The whole project: library + harness + test/lint/example extras. The kernel must build:
# `make test` is what CI runs, and the kernel is the default CPU path.
$(STAMP): setup.cfg pyproject.toml constraints/$(STACK).txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=23"
	$(BIN)/python -m pip install -q -c constraints/$(STACK).txt -e ".[harness,test,lint,examples]"
	$(BIN)/python -m larq_bamsprod.kernels build --require
	touch $@

# The optimizer library alone, as a Larq user on the newest TensorFlow installs it:
# TensorFlow, tf-keras and Larq first, then this project without the harness extra.
install-lib: $(LIB_STAMP)

$(LIB_STAMP): setup.cfg pyproject.toml constraints/tf221.txt
	test -x $(LIB_VENV)/bin/python || $(PYTHON) -m venv $(LIB_VENV)
	$(LIB_VENV)/bin/python -m pip install -q --upgrade "pip>=23"
	$(LIB_VENV)/bin/python -m pip install -q -c constraints/tf221.txt tensorflow tf-keras larq
	$(LIB_VENV)/bin/python -m pip install -q -c constraints/tf221.txt -e ".[test]"
	$(LIB_VENV)/bin/python -m larq_bamsprod.kernels build --require
	touch $@

# What CI runs (.ci/run): the whole suite on the primary stack, then the library's own tests
# on the newest stack (where the harness is not installed, and tests check that it is not).
test: test-full test-lib

test-full: install data
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-lib: install-lib
	LARQ_BAMSPROD_LIGHT_INSTALL=tensorflow==2.21.0 \
	  $(LIB_VENV)/bin/python -m pytest tests/library $(PYTEST_ARGS)

test-tf215:
	$(MAKE) test-full STACK=tf215

# Fashion-MNIST from Debian's package (offline); TFDS builds it from these files.
data:
	@test -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz || \
	  { echo "Installing Debian's dataset-fashion-mnist (needs root and apt)"; \
	    (apt-get update -q && apt-get install -y -q dataset-fashion-mnist) >/dev/null; }
	@test -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz || \
	  { echo "Fashion-MNIST not found in $(FMNIST_DIR); see README 'Data'"; exit 1; }

demo: install data
	$(BIN)/larq-bamsprod compare --dataset fashion_mnist --model BinaryCNN \
	  --optimizers bamsprod,bop,adam,amsgrad,adabound,amsbound,sgdm --epochs 3 --seeds 0 \
	  --train-subset 12000 --batch-size 128 --validation-size 2000 --eval-every 28 \
	  --output $(DEMO_OUT)

# BAMSProd's compiled CPU kernel (also built by `install`, and on first use otherwise).
kernels: install
	$(BIN)/python -m larq_bamsprod.kernels build

bench: install
	$(BIN)/python benchmarks/update_step.py --output runs/bench.json

bench-train: install
	$(BIN)/python benchmarks/train_step.py --output runs/bench_train.json

lint: install
	$(BIN)/ruff check larq_bamsprod tests examples benchmarks

clean:
	rm -rf .venv .venv-* runs build *.egg-info
