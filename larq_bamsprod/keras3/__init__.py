"""BAMSProd and Bop for Keras 3, on every backend (JAX, TensorFlow, PyTorch).

``pip install 'larq-bamsprod[keras3]'`` (Keras 3 and no TensorFlow; install your backend).
Nothing here imports TensorFlow unless it is Keras' backend.

* :class:`BAMSProd` and :class:`Bop`: ``keras.optimizers.Optimizer`` subclasses written
  with ``keras.ops``;
* :func:`is_binary_variable` and :class:`BinaryRouter`: route binary kernels to Bop (or
  any optimizer) in ``keras.optimizers.MultiOptimizer``, as Larq's ``CaseOptimizer`` did;
* :mod:`~larq_bamsprod.keras3.layers` (``QuantDense``, ``QuantConv2D``), with the
  ``"ste_sign"`` quantizer and the ``"weight_clip"`` constraint, Larq's names.
"""

from larq_bamsprod.keras3 import constraints, layers, quantizers
from larq_bamsprod.keras3.optimizers import BAMSProd, Bop
from larq_bamsprod.keras3.routing import BinaryRouter, is_binary_variable

__all__ = ["BAMSProd", "BinaryRouter", "Bop", "constraints", "is_binary_variable", "layers",
           "quantizers"]
