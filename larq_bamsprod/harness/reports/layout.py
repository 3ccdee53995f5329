"""Which weights of a model are binary, and which optimizer trains which.

A weight is binary when Larq marks its variable ``precision == 1`` (the latent kernels of
quantized layers with ``ste_sign``-type quantizers), the test
``larq.optimizers.Bop.is_binary_variable`` applies, so the split here is the one a
``CaseOptimizer`` makes. Everything else that is trainable (batch norm, biases, the
real-valued first and last layers, embeddings) is real. Bop only updates the binary
weights; its recipe trains the real ones with Adam, so where most weights are real a
"Bop vs X" comparison is mostly "Bop's Adam vs X" there.
"""

from __future__ import annotations


def weight_layout(model) -> dict:
    """Trainable weights of ``model``: ``binary`` and ``real`` counts, ``total`` and the
    binary share (0 for a model without trainable weights)."""
    binary = real = 0
    for variable in model.trainable_variables:
        size = int(variable.shape.num_elements())
        if getattr(variable, "precision", 32) == 1:  # larq's Bop.is_binary_variable
            binary += size
        else:
            real += size
    total = binary + real
    return {"binary": binary, "real": real, "total": total,
            "binary_share": binary / total if total else 0.0}


def trained_by(name: str, hyperparameters: dict) -> str:
    """Who updates which weights under optimizer ``name`` with ``hyperparameters`` (as
    ``config.json`` records them): with an ``fp_learning_rate`` (Bop; BAMSProd in Bop's
    layout) ``name`` the binary weights and Adam at that rate the real ones; otherwise
    ``name`` every weight."""
    rate = hyperparameters.get("fp_learning_rate")
    if rate is None:
        return f"{name} every weight"
    return f"{name} the binary weights, Adam({rate:.3g}) the real ones"


def layout_text(layout: dict, trained: list[str]) -> str:
    """One sentence: the counts and the binary share, then who trains what (``trained``:
    :func:`trained_by`'s phrases)."""
    return (f"Trainable weights: {layout['binary']:,} binary and {layout['real']:,} "
            f"real-valued ({100 * layout['binary_share']:.1f}% binary). Who trains them: "
            f"{'; '.join(trained)}.")
