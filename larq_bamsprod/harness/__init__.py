"""The comparison harness: BAMSProd vs Bop and the adaptive optimizers on the same graphs.

Everything here trains models and writes reports; the optimizer library
(:mod:`larq_bamsprod`) never imports it. Its dependencies (larq, larq-zoo,
tensorflow-datasets, zookeeper, matplotlib, optuna, ...) come with the ``harness`` extra::

    pip install 'larq-bamsprod[harness]'

The question on your own graph::

    from larq_bamsprod import harness

    workload = harness.Workload(name="my-bnn", model=build_model,
                                train=(x_train, y_train), test=(x_test, y_test))
    rows = harness.compare(workload, optimizers=["bamsprod", "bop", "adam"], seeds=[0, 1, 2])
    harness.tune(workload, optimizers=["bamsprod", "bop"], trials=8, output="runs/tune")

Layers, each a folder or a module, each importing only the layers above it
(``tests/harness/test_layout.py``):

* :mod:`~larq_bamsprod.harness.metrics`, :mod:`~larq_bamsprod.harness.files`: the scores
  (which way is better); atomic writes of results.
* :mod:`~larq_bamsprod.harness.workload`: :class:`Workload`, the one object every stage
  takes (model, data, loss, score, batch size).
* :mod:`~larq_bamsprod.harness.catalogue`: what can be compared. ``registry``: the
  optimizers, one entry each (builder, recommended settings, search space, layout);
  ``search_space``: spaces and the edge rule; ``adabound``; ``models``, ``rnn``: the binary
  graphs; ``data``: datasets, offline first; ``workloads``: the built-in workloads.
* :mod:`~larq_bamsprod.harness.runner`: one (optimizer, seed) run. ``training``;
  ``distribute``: ``tf.distribute``; ``progress``: what a long run shows.
* :mod:`~larq_bamsprod.harness.experiments`: many runs. ``config`` (what a comparison runs,
  what a rerun must match), ``compare``, ``studies`` (Optuna storage, exact budgets, stale
  trials), ``tune``, ``zoo`` (larq-zoo's recipes), ``convex`` (the paper's convex problems).
* :mod:`~larq_bamsprod.harness.reports`: ``stats`` (time to target, intervals, verdicts),
  ``summary``, ``tables``, ``plots``, ``evidence`` (RESULTS' generated tables).
* :mod:`~larq_bamsprod.harness.api` (:func:`compare`, :func:`tune`) and
  :mod:`~larq_bamsprod.harness.cli` (the ``larq-bamsprod`` command): the two front doors.
"""

__all__ = ["OptimizerEntry", "Workload", "compare", "load_workload", "tune"]

_EXPORTS = {"Workload": "workload", "load_workload": "workload", "compare": "api",
            "tune": "api", "OptimizerEntry": "api"}


def __getattr__(name: str):
    # Lazy: ``larq-bamsprod --help`` and the reports need none of TensorFlow's model code.
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f"larq_bamsprod.harness.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'larq_bamsprod.harness' has no attribute {name!r}")
