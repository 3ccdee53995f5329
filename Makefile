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

.PHONY: install test test-tf215 demo data kernels bench bench-train lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints/$(STACK).txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=23"
	$(BIN)/python -m pip install -q -c constraints/$(STACK).txt -e ".[test,lint,examples]"
	$(BIN)/python -m larq_bamsprod.kernels build
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
	  --optimizers bamsprod,bop,adam,amsgrad,adabound,amsbound,sgdm --epochs 3 --seeds 0 \
	  --train-subset 12000 --batch-size 128 --output $(DEMO_OUT)

# BAMSProd's compiled CPU kernel (also built by `install`, and on first use otherwise). A
# failed build only warns: the optimizers then use the pure-TensorFlow update.
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
