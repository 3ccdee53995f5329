r"""Online convex problems on which Adam does not converge, and a runner for real optimizers.

Section 3 of Liu et al. (CVPRW 2020), Theorems 1-2, claims that Adam training a binary
weight through the straight-through estimator (STE) can converge to the *worst* point of
``F = [-1, 1]``, as Reddi et al. (ICLR 2018) showed for a real weight. This module defines
both problems exactly, runs the library's and Keras' real optimizer classes on them (one
scalar ``tf.Variable``, the whole loop compiled), and measures the average regret

.. math::

    R_T / T = \frac{1}{T}\Big(\sum_{t=1}^T f_t(x_t) - \min_{x \in F} \sum_{t=1}^T f_t(x)\Big),

where ``x_t`` is the point played at step ``t`` (the weight before the ``t``-th update; for
the binary problem, the binary weight). Both problems are linear, ``f_t(x) = c_t x`` with a
periodic coefficient ``c_t``, so the best fixed point is an end of the interval and
``min_x sum_t f_t(x) = -r |sum_t c_t|`` (``r`` the radius of the comparison set).

**(a) Reddi et al. (2018), Theorem 1** (:func:`reddi_problem`): ``F = [-1, 1]`` and

.. code-block:: text

    f_t(x) = C x   if t mod 3 == 1,
             -x    otherwise,                    C = 3 (the classic choice)

Over a period the sum is ``(C - 2) x``, so the optimum is ``x = -1``. With ``beta_1 = 0``
and ``beta_2 = 1 / (1 + C^2) = 0.1``, Adam's second moment forgets the rare large gradient
within a step: its steps per period are about ``-C/sqrt(8.2) + 1/sqrt(1.7) + 1/sqrt(1.07)
= +0.68`` learning rates, so it climbs to ``x = +1``, the worst point, and ``R_T/T ->
2(C - 2)/3``. AMSGrad keeps ``v_hat ~ 8.2``: ``(-3 + 1 + 1)/sqrt(8.2) = -0.35`` per period,
so it goes to ``-1`` and ``R_T/T -> 0``. Each step is followed by the projection onto ``F``
(clipping; in one dimension the weighted projection of Reddi et al. is the same).

**(b) The binary form of the paper** (:func:`binary_problem`): a latent weight
``w in [-1, 1]`` (clipped after each step, as BinaryConnect and Larq's ``weight_clip`` do,
which also keeps the STE gradient alive) plays the binary weight
``w~ = alpha * sign(w)`` (Larq's ``ste_sign``: ``sign(0) = +1``, gradient passed where
``|w| <= 1``), and

.. code-block:: text

    f_t(w~) = C w~   if t mod K == 1,
              -w~    if t mod K in {2, ..., 1 + n},        (n = n_small)
              0      otherwise                              K = 5, C = 3, n = 2

The best fixed binary point is ``w~ = -alpha`` (per period the sum is ``(C - n) w~``);
the comparison set is ``{-alpha, +alpha}``, which for ``alpha = 1`` holds the optimum of
``F = [-1, 1]``. The STE gradient reaching ``w`` is ``alpha * c_t``.

Note:
  The paper's own sequence (its section 3) is ``f_t = w~`` if ``t mod C == 1``, ``-w~`` if
  ``t mod C == 2``, ``0`` otherwise, and ``f_t(-1) = -1``. Taken literally it cannot show
  the claimed failure, so (b) is a *scaled variant*, chosen as Reddi's construction is:

  * With one push each way per period, a gradient ``a`` then ``-b`` then ``K - 2`` zeros,
    Adam with ``beta_1 = 0`` has (stationary second moments) a net upward push iff
    ``(b/a)^4 > beta_2^-(K-2)``, which needs ``b > a``. But then the linear pieces favour
    ``+1`` themselves: SGD and AMSGrad go there too. In a NumPy simulation (step
    ``0.1/sqrt(t)``, 20000 steps, ``b = 1``) over ``beta_1 in {0, 0.5, 0.9}``,
    ``beta_2 in {0.5, 0.9, 0.99, 0.999}``, ``K in {3, 5, 10, 20}``, ``a in {1.2, 2, 3}``,
    Adam never ended above ``0.5``; the tests check two settings with Keras' Adam.
  * The clause ``f_t(-1) = -1`` makes ``f_t`` discontinuous, hence not convex (the
    theorems assume convexity), and gives no gradient at ``-1``; with it, ``-1`` is optimal
    even when the linear pieces point to ``+1``, and then every optimizer that follows
    them fails, not only Adam.

  Hence: the right-direction gradient is made rare and large (``C = 3`` on one phase) and
  the wrong-direction one small and repeated (``-1`` on ``n = 2`` phases), keeping the
  paper's period ``K`` with zero phases and dropping the ``f_t(-1) = -1`` clause (``f_t``
  is linear on ``F``). With ``beta_1 = 0, beta_2 = 0.1`` the per-period pushes are those
  of (a) (the zero phases do not matter once ``v`` has forgotten), so Adam climbs to
  ``+alpha``; AMSGrad, SGD and BAMSProd descend to ``-alpha``.

Example:

>>> import larq_bamsprod
>>> import tensorflow as tf
>>> from larq_bamsprod import convex
>>> problem = convex.reddi_problem()
>>> adam = convex.default_optimizers(beta_2=problem.beta_2)["adam"]
>>> result = convex.run(problem, adam, steps=3000)
>>> round(result.final_iterate, 2), round(float(result.average_regret()[-1]), 2)
(1.0, 0.64)

References:
  - Liu et al., 2020, "BAMSProd: A Step towards Generalizing the Adaptive Optimization
    Methods to Deep Binary Model", CVPR workshops, section 3.
  - Reddi, Kale and Kumar, 2018, "On the Convergence of Adam and Beyond", ICLR, Theorem 1.
  - Luo et al., 2019, "Adaptive Gradient Methods with Dynamic Bound of Learning Rate".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tensorflow as tf

from larq_bamsprod.compat import LegacyOptimizer
from larq_bamsprod.schedules import InverseSqrtDecay

__all__ = [
    "FULL_STEPS",
    "QUICK_STEPS",
    "InverseSqrtDecay",
    "OnlineLinearProblem",
    "RunResult",
    "binary_problem",
    "default_optimizers",
    "reddi_problem",
    "run",
]


QUICK_STEPS = 3000
"""Steps of ``examples/nonconvergence.py --quick`` and of the tests: Adam has reached +1."""

FULL_STEPS = 1_000_000
"""Steps of the full run of ``examples/nonconvergence.py``."""


@dataclass(frozen=True)
class OnlineLinearProblem:
    """``f_t(x) = c_t * x`` with ``c_t = coefficients[(t - 1) mod period]``, ``t >= 1``.

    ``binary=False``: the optimizer's variable ``x in [-1, 1]`` is the played point.
    ``binary=True``: the variable is a latent ``w in [-1, 1]`` and the played point is
    ``alpha * sign(w)`` through Larq's ``ste_sign``. Regret is measured against the best
    fixed point of ``[-radius, radius]``: ``radius = 1`` for a real ``x``, ``alpha`` for a
    binary one. ``beta_2`` is the second-moment decay the construction is made for.
    """

    name: str
    coefficients: tuple[float, ...]
    beta_2: float
    binary: bool = False
    alpha: float = 1.0
    x0: float = 0.0
    description: str = ""

    @property
    def period(self) -> int:
        return len(self.coefficients)

    @property
    def radius(self) -> float:
        return self.alpha if self.binary else 1.0

    def coefficient(self, t: np.ndarray) -> np.ndarray:
        """``c_t`` for steps ``t >= 1`` (NumPy)."""
        return np.asarray(self.coefficients, np.float64)[(np.asarray(t) - 1) % self.period]

    @property
    def worst_point_average_regret(self) -> float:
        """``lim R_T/T`` of playing the worst fixed point (``-optimum``) at every step."""
        return 2.0 * self.radius * abs(sum(self.coefficients)) / self.period

    @property
    def optimum(self) -> float:
        """The best fixed point: ``-radius`` if the coefficients sum to more than 0."""
        return -self.radius if sum(self.coefficients) > 0 else self.radius

    def best_fixed_loss(self, steps: int) -> np.ndarray:
        """``min_{x} sum_{s <= t} f_s(x)`` for ``t = 1..steps`` over ``[-radius, radius]``."""
        return -self.radius * np.abs(np.cumsum(self.coefficient(np.arange(1, steps + 1))))

    def play(self, variable: tf.Variable) -> tf.Tensor:
        """The point played by ``variable`` (its binary weight if ``binary``)."""
        if not self.binary:
            return tf.convert_to_tensor(variable)
        import larq as lq  # only the binary problem needs Larq

        return self.alpha * lq.quantizers.ste_sign(tf.convert_to_tensor(variable), clip_value=1.0)


def reddi_problem(C: float = 3.0) -> OnlineLinearProblem:
    """Reddi et al. (2018), Theorem 1: ``C x`` if ``t mod 3 == 1`` else ``-x`` on [-1, 1].

    Args:
      C: the rare large gradient, ``> 2`` so that ``x = -1`` is optimal. ``beta_2`` is set
        to ``1 / (1 + C^2)`` as in the theorem. Defaults to `3.0`.
    """
    if not C > 2:
        raise ValueError(f"C must be > 2 for x = -1 to be optimal, received C={C}.")
    return OnlineLinearProblem(
        name="reddi",
        coefficients=(float(C), -1.0, -1.0),
        beta_2=1.0 / (1.0 + C * C),
        description=f"f_t(x) = {C:g}x if t mod 3 == 1 else -x, x in [-1, 1]",
    )


def binary_problem(
    C: float = 3.0, period: int = 5, n_small: int = 2, alpha: float = 1.0, beta_2: float = 0.1
) -> OnlineLinearProblem:
    """The paper's binary sequence, scaled as Reddi's (see the module docstring).

    Args:
      C: coefficient of phase 1 (``t mod period == 1``), ``> n_small``. Defaults to `3.0`.
      period: the paper's cycle length ``K``, ``>= n_small + 1``. Defaults to `5`.
      n_small: how many phases after the first carry ``-w~``; the rest carry 0.
        Defaults to `2`.
      alpha: the scaling factor of the binary weight, ``> 0``. Defaults to `1.0`.
      beta_2: second-moment decay the construction is run with. Defaults to `0.1`.
    """
    if not (n_small >= 1 and period >= n_small + 1 and C > n_small and alpha > 0):
        raise ValueError(
            "need n_small >= 1, period >= n_small + 1, C > n_small and alpha > 0, received "
            f"C={C}, period={period}, n_small={n_small}, alpha={alpha}."
        )
    coefficients = (float(C),) + (-1.0,) * n_small + (0.0,) * (period - 1 - n_small)
    return OnlineLinearProblem(
        name="binary",
        coefficients=coefficients,
        beta_2=beta_2,
        binary=True,
        alpha=alpha,
        description=(
            f"f_t(w~) = {C:g}w~ if t mod {period} == 1, -w~ if t mod {period} in "
            f"{{2..{1 + n_small}}}, else 0; w~ = {alpha:g}*sign(w), STE"
        ),
    )


def default_optimizers(
    beta_2: float, learning_rate: float = 0.1
) -> dict[str, Callable[[], LegacyOptimizer]]:
    """Factories of the optimizers compared, all with ``beta_1 = 0`` and ``lr / sqrt(t)``.

    Each is :func:`larq_bamsprod.harness.catalogue.registry.make_optimizer` with the problem's
    settings, so the names mean what they mean in ``larq-bamsprod compare``. Every adaptive
    method gets the problem's ``beta_2``; the step is ``learning_rate / sqrt(t)`` for all
    (Keras classes through :class:`~larq_bamsprod.schedules.InverseSqrtDecay`, BAMSProd
    through its own ``lr_decay="sqrt"``). ``bamsprod`` is the default
    ``bound_target="mean"``: on a scalar variable ``mean(v_hat) = v_hat`` and the
    projection is the identity, so it is AMSGrad with bias correction. ``bamsprod_c1``
    (registry name ``bamsprod@c1``) projects onto a fixed target ``c = 1``.
    AdaBound/AMSBound use the registry's ``final_lr=0.1``, ``gamma=1e-3``; their
    ``final_lr`` decays with the schedule.
    """
    from larq_bamsprod.harness.catalogue import registry

    adaptive = {"learning_rate": learning_rate, "beta_1": 0.0, "beta_2": beta_2}
    bamsprod = {**adaptive, "lr_decay": "sqrt"}
    decay = InverseSqrtDecay(1.0)

    def build(name, overrides, shape=decay):
        return lambda: registry.make_optimizer(name, overrides, shape)

    return {
        "sgd": build("sgd", {"learning_rate": learning_rate}),
        "adam": build("adam", adaptive),
        "amsgrad": build("amsgrad", adaptive),
        "bamsprod": build("bamsprod", {**bamsprod, "bound_target": "mean"}, None),
        "bamsprod_c1": build("bamsprod@c1", {**bamsprod, "bound_target": 1.0}, None),
        "adabound": build("adabound", adaptive),
        "amsbound": build("amsbound", adaptive),
    }


@dataclass
class RunResult:
    """What one optimizer did on one problem: arrays indexed by ``t - 1``."""

    problem: OnlineLinearProblem
    played: np.ndarray  # x_t, the point played at step t (binary: alpha * sign(w_t))
    latent: np.ndarray  # the optimizer's variable at step t (= played unless binary)
    losses: np.ndarray  # f_t(x_t) as TensorFlow computed it, the loss differentiated
    final_latent: float  # the variable after the last step
    seconds: float
    jit_compiled: bool
    optimizer_config: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def final_iterate(self) -> float:
        """The point the optimizer would play next (after ``T`` steps)."""
        if not self.problem.binary:
            return self.final_latent
        return self.problem.alpha * (1.0 if self.final_latent >= 0 else -1.0)

    def regret(self) -> np.ndarray:
        """``R_t`` for ``t = 1..T`` from the recorded losses, in float64."""
        return np.cumsum(self.losses.astype(np.float64)) - self.problem.best_fixed_loss(
            len(self.losses)
        )

    def average_regret(self) -> np.ndarray:
        """``R_t / t`` for ``t = 1..T``."""
        return self.regret() / np.arange(1, len(self.losses) + 1)


def _compiled_loop(problem: OnlineLinearProblem, optimizer, variable, jit_compile: bool):
    coefficients = tf.constant(problem.coefficients, tf.float32)
    period = problem.period

    @tf.function(jit_compile=jit_compile)
    def loop(t0, n):
        played = tf.TensorArray(tf.float32, size=n)
        latent = tf.TensorArray(tf.float32, size=n)
        losses = tf.TensorArray(tf.float32, size=n)

        def body(i, played, latent, losses):
            t = t0 + i
            c = tf.gather(coefficients, tf.math.floormod(t - 1, period))
            with tf.GradientTape() as tape:
                point = problem.play(variable)
                loss = c * point
            grad = tape.gradient(loss, variable)
            played = played.write(i, point)
            latent = latent.write(i, variable.read_value())
            losses = losses.write(i, loss)
            optimizer.apply_gradients([(grad, variable)])
            variable.assign(tf.clip_by_value(variable, -1.0, 1.0))  # projection onto F
            return i + 1, played, latent, losses

        _, played, latent, losses = tf.while_loop(
            lambda i, *_: i < n, body, (tf.constant(0), played, latent, losses)
        )
        return played.stack(), latent.stack(), losses.stack()

    return loop


def run(
    problem: OnlineLinearProblem,
    make_optimizer: Callable[[], LegacyOptimizer],
    steps: int,
    *,
    chunk: int = 100_000,
    jit_compile: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Run a fresh optimizer for ``steps`` steps on ``problem`` and record every step.

    Args:
      problem: the online problem.
      make_optimizer: returns a fresh ``tf.keras.optimizers.legacy`` optimizer.
      steps: number of steps ``T``, ``>= 1``.
      chunk: steps per call of the compiled loop (progress is reported between calls).
        Defaults to `100_000`.
      jit_compile: compile the loop with XLA (about 10x faster here). Optimizers whose
        kernels XLA lacks (legacy Adam with ``amsgrad=True`` uses the fused
        ``ResourceApplyAdamWithAmsgrad``) fall back to a plain graph, noted in
        ``RunResult.notes``. Defaults to `False`.
      progress: called with the number of steps done after each chunk. Defaults to `None`.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, received steps={steps}.")
    optimizer = make_optimizer()
    variable = tf.Variable(problem.x0, dtype=tf.float32, name="x")
    notes = []
    loop = _compiled_loop(problem, optimizer, variable, jit_compile)
    jit_used = jit_compile
    parts = []
    start = time.perf_counter()
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        args = (tf.constant(done + 1), tf.constant(n))
        try:
            parts.append(loop(*args))
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
            if not jit_used or done:
                raise
            # Nothing ran: XLA rejects the whole function before executing it.
            notes.append(f"XLA unavailable, plain graph used: {str(error).splitlines()[0][:160]}")
            jit_used = False
            loop = _compiled_loop(problem, optimizer, variable, jit_compile=False)
            parts.append(loop(*args))
        done += n
        if progress is not None:
            progress(done)
    seconds = time.perf_counter() - start
    played, latent, losses = (np.concatenate([p[k].numpy() for p in parts]) for k in range(3))
    return RunResult(
        problem=problem,
        played=played,
        latent=latent,
        losses=losses,
        final_latent=float(variable.numpy()),
        seconds=seconds,
        jit_compiled=jit_used,
        optimizer_config={"class_name": type(optimizer).__name__, **optimizer.get_config()},
        notes=notes,
    )
