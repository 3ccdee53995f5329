"""One progress count for a whole comparison (or tuning): runs, steps, evaluations, time.

Keras' own progress bar is off (``model.fit(verbose=0)``): its per-``fit`` ``Epoch 3/3``
counted something else than the harness does. Here every message counts the same things:
which run of how many, which step of the run and which evaluation point, time elapsed and
an estimate of the time left (steps still to do at the rate measured in this process since
its first step, evaluations included; none before the second step, as the first one
includes tracing).
"""

from __future__ import annotations

import sys
import time
from typing import Callable


def format_seconds(seconds: float | None) -> str:
    """``75`` -> ``"1m15s"``; ``None`` -> ``"?"``."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Counts steps over ``runs`` runs of ``steps_per_run`` steps each.

    ``verbose``: 0 prints only one line per run, 2 one line per evaluation point, 1 a
    progress bar (tqdm) over the run's steps with the same counts in its text.
    """

    def __init__(self, runs: int, steps_per_run: int, log: Callable[[str], None] = print,
                 verbose: int | None = None, tag: str | None = None):
        self.runs = runs
        self.steps_per_run = steps_per_run
        self.log = log
        self.verbose = verbose if verbose is not None else (1 if sys.stdout.isatty() else 2)
        self.started = time.perf_counter()
        self.done_before = 0  # steps finished in earlier processes (not timed here)
        self.done_here = 0
        self._first_step_done = self.started
        self.run_index = 0
        self.label = ""
        self.evals = 0
        self._bar = None
        self.tag = tag  # replaces "run i/n" in messages (e.g. "tune bop trial 3")

    @property
    def total_steps(self) -> int:
        return self.runs * self.steps_per_run

    def remaining_seconds(self) -> float | None:
        """Steps left at the rate measured since the end of this process' first step (the
        set-up and the first step's tracing are not a rate); None before a second step."""
        if self.done_here < 2:
            return None
        rate = (time.perf_counter() - self._first_step_done) / (self.done_here - 1)
        return rate * (self.total_steps - self.done_before - self.done_here)

    def status(self) -> str:
        elapsed = time.perf_counter() - self.started
        done = self.done_before + self.done_here
        percent = 100 * done / max(self.total_steps, 1)
        return (f"{percent:.0f}% of all steps, {format_seconds(elapsed)} elapsed, "
                f"~{format_seconds(self.remaining_seconds())} left")

    @property
    def prefix(self) -> str:
        return f"[{self.tag}]" if self.tag else f"[run {self.run_index}/{self.runs}]"

    def start_run(self, label: str, step: int, evals: int) -> None:
        """Begin run ``label`` (the next of ``runs``) at ``step`` (> 0 when resumed)."""
        self.run_index += 1
        self.label = label
        self.evals = evals
        self.done_before += step
        self.log(f"{self.prefix} {label} ({self.status()})")
        if self.verbose == 1 and step < self.steps_per_run:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.steps_per_run, initial=step, unit="step",
                             desc=f"{self.prefix} {label}", leave=False,
                             dynamic_ncols=True)

    def skip_run(self, label: str) -> None:
        self.run_index += 1
        self.done_before += self.steps_per_run
        self.log(f"{self.prefix} {label}: finished earlier, skipped")

    def step(self) -> None:
        self.done_here += 1
        if self.done_here == 1:
            self._first_step_done = time.perf_counter()
        if self._bar is not None:
            self._bar.update(1)

    def evaluated(self, step: int, index: int, text: str) -> None:
        """Evaluation point ``index`` (1-based, of ``evals``) at ``step`` reported ``text``."""
        message = (f"{self.prefix} {self.label}: step "
                   f"{step}/{self.steps_per_run}, eval {index}/{self.evals}: {text} "
                   f"({self.status()})")
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.write(message)
        elif self.verbose == 2:
            self.log(message)

    def end_run(self, text: str) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.log(f"{self.prefix} {self.label}: {text} ({self.status()})")
