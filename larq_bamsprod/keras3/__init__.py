"""BAMSProd and Bop for Keras 3, on every backend (JAX, TensorFlow, PyTorch).

``pip install 'larq-bamsprod[keras3]'`` (Keras 3 and no TensorFlow; install your backend).
Nothing here imports TensorFlow unless it is Keras' backend.

* :class:`BAMSProd` and :class:`Bop`: ``keras.optimizers.Optimizer`` subclasses written
  with ``keras.ops``;
* :func:`is_binary_variable` and :class:`BinaryRouter`: route binary kernels to Bop (or
  any optimizer) in ``keras.optimizers.MultiOptimizer``, as Larq's ``CaseOptimizer`` did;
"""

from larq_bamsprod.keras3.optimizers import BAMSProd, Bop
from larq_bamsprod.keras3.routing import BinaryRouter, is_binary_variable

__all__ = ["BAMSProd", "BinaryRouter", "Bop", "is_binary_variable"]
