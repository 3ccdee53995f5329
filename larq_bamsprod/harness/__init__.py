"""The comparison harness: BAMSProd vs Bop and the adaptive optimizers on the same graphs.

Everything here trains models and writes reports; the optimizer library
(:mod:`larq_bamsprod`) never imports it. Its dependencies (larq, larq-zoo,
tensorflow-datasets, zookeeper, matplotlib, ...) come with the ``harness`` extra::

    pip install 'larq-bamsprod[harness]'

Modules, one job each:

* :mod:`~larq_bamsprod.harness.cli`: the ``larq-bamsprod`` command.
* :mod:`~larq_bamsprod.harness.registry`: the optimizers compared and their settings.
* :mod:`~larq_bamsprod.harness.adabound`: AdaBound/AMSBound for ``tf.keras`` (legacy).
* :mod:`~larq_bamsprod.harness.models`, :mod:`~larq_bamsprod.harness.rnn`: the graphs.
* :mod:`~larq_bamsprod.harness.data`: datasets through tensorflow-datasets, offline first.
* :mod:`~larq_bamsprod.harness.config`: what a comparison runs and what a rerun must match.
* :mod:`~larq_bamsprod.harness.distribute`: ``tf.distribute`` strategies.
* :mod:`~larq_bamsprod.harness.training`: one (optimizer, seed) run, resumable.
* :mod:`~larq_bamsprod.harness.summary`, :mod:`~larq_bamsprod.harness.report`: tables, plots.
* :mod:`~larq_bamsprod.harness.compare`: the driver of a comparison.
* :mod:`~larq_bamsprod.harness.zoo`: larq-zoo's own recipes with BAMSProd or Bop.
* :mod:`~larq_bamsprod.harness.convex`: the paper's convex non-convergence problems.
* :mod:`~larq_bamsprod.harness.files`: atomic writes of results.
"""
