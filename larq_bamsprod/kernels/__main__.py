"""``python -m larq_bamsprod.kernels [build|status]``."""

import sys

import larq_bamsprod  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from larq_bamsprod.kernels import main

sys.exit(main())
