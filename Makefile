# One entry point for set-up, tests, the demo comparison and benchmarks.
# `make demo` and `make test` do all set-up on a fresh machine (Python 3.9-3.12 + pip).
#
# Three stacks (README, "Supported versions"):
#   .venv             STACK=tf219: TF 2.19.1, the library and the harness (larq-zoo allows < 2.20)
#   .venv-tf221       the library alone on the newest TensorFlow (2.21.0), no harness extra;
#                     also Keras 3's TensorFlow backend for tests/keras3
#   .venv-keras3-jax  larq_bamsprod.keras3 on Keras 3 + JAX, without TensorFlow
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
KERAS3_VENV := .venv-keras3-jax
KERAS3_STAMP := $(KERAS3_VENV)/.installed-keras3
# tests/keras3 without tests/conftest.py (it imports TensorFlow, which the JAX stack lacks).
KERAS3_PYTEST := -m pytest tests/keras3 --confcutdir=tests/keras3
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=

.PHONY: install install-lib install-keras3 test test-full test-lib test-keras3 test-tf215 \
	demo data kernels bench bench-train bench-keras3 lint clean

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
	$(LIB_VENV)/bin/python -m pip install -q -c constraints/tf221.txt -e ".[tensorflow,test]"
	$(LIB_VENV)/bin/python -m larq_bamsprod.kernels build --require
	touch $@

# larq_bamsprod.keras3 as a Keras 3 + JAX user installs it: Keras and JAX first, then this
# project with the keras3 extra; tests/keras3/test_install.py checks no TensorFlow came.
install-keras3: $(KERAS3_STAMP)

$(KERAS3_STAMP): setup.cfg pyproject.toml constraints/keras3.txt
	test -x $(KERAS3_VENV)/bin/python || $(PYTHON) -m venv $(KERAS3_VENV)
	$(KERAS3_VENV)/bin/python -m pip install -q --upgrade "pip>=23"
	$(KERAS3_VENV)/bin/python -m pip install -q -c constraints/keras3.txt keras jax jaxlib pytest
	$(KERAS3_VENV)/bin/python -m pip install -q -c constraints/keras3.txt -e ".[keras3]"
	touch $@

# What CI runs (.ci/run): the whole suite on the primary stack (tests/keras3 excepted), the
# library's own tests and tests/keras3 on Keras 3's TensorFlow backend on the newest stack
# (where the harness is not installed, and tests check that it is not), then tests/keras3
# on JAX without TensorFlow.
test: test-full test-lib test-keras3

test-full: install data
	$(BIN)/python -m pytest --ignore=tests/keras3 $(PYTEST_ARGS)

test-lib: install-lib
	LARQ_BAMSPROD_LIGHT_INSTALL=tensorflow==2.21.0 \
	  $(LIB_VENV)/bin/python -m pytest tests/library $(PYTEST_ARGS)
	KERAS_BACKEND=tensorflow $(LIB_VENV)/bin/python $(KERAS3_PYTEST) $(PYTEST_ARGS)

test-keras3: install-keras3 data
	KERAS_BACKEND=jax LARQ_BAMSPROD_KERAS3_INSTALL=1 \
	  $(KERAS3_VENV)/bin/python $(KERAS3_PYTEST) $(PYTEST_ARGS)

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

bench-keras3: install-keras3
	KERAS_BACKEND=jax $(KERAS3_VENV)/bin/python benchmarks/keras3_update.py

lint: install
	$(BIN)/ruff check larq_bamsprod tests examples benchmarks

clean:
	rm -rf .venv .venv-* runs build *.egg-info
