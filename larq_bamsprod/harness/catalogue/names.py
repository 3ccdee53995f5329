"""The catalogue's names, readable without importing it (nor TensorFlow).

``larq-bamsprod --help`` lists them: :mod:`larq_bamsprod_cli` builds the parser without
importing the library, which imports TensorFlow (seconds). ``registry.REGISTRY`` and
``data.DATASETS`` hold exactly these names (``tests/harness/test_cli.py`` checks it).
"""

OPTIMIZERS = ("bamsprod", "bop", "adam", "amsgrad", "adabound", "amsbound", "sgdm", "sgd")
"""Every built-in optimizer, in the registry's order."""

COMPARED_BY_DEFAULT = OPTIMIZERS[:-1]
"""What ``compare`` runs without ``--optimizers`` (plain ``sgd`` is for the convex problems)."""

DATASETS = ("cifar10", "cifar100", "fashion_mnist", "imagenet2012", "mnist", "ptb",
            "svhn_cropped")
"""Every built-in dataset; ``ptb`` is the text corpus (for ``BinaryLSTM``)."""

SCHEDULES = ("constant", "cosine", "step")
"""Schedule shapes of ``compare --schedule``."""
