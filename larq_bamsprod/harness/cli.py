"""Command line: ``larq-bamsprod compare|recipe|list ...``.

The ``larq-bamsprod`` command starts in :mod:`larq_bamsprod_cli`, which hides TensorFlow's
start-up messages (``larq-bamsprod --tf-logs ...`` keeps them) and then calls :func:`main`.
``python -m larq_bamsprod.harness ...`` calls :func:`main` directly (TensorFlow's start-up
messages then show).

Every input is checked before anything is written to ``--output`` or trained; a bad one
ends the command with exit status 2 and one line ``larq-bamsprod COMMAND: error: ...``
naming the argument, the value and what to give instead. Ctrl-C ends it with exit status
130 and one line: the finished epochs are saved, and the same command resumes.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

# Import name -> distribution name of what the harness imports beyond the optimizer library.
HARNESS_PACKAGES = {
    "larq": "larq",
    "larq_zoo": "larq-zoo",
    "tensorflow_datasets": "tensorflow-datasets",
    "zookeeper": "zookeeper",
    "matplotlib": "matplotlib",
}


def missing_harness_packages() -> list[str]:
    """Distributions the harness needs that are not installed (found without importing)."""
    return [dist for module, dist in HARNESS_PACKAGES.items()
            if importlib.util.find_spec(module) is None]


def harness_install_hint() -> str:
    """How to install the harness extra, and what it needs: larq-zoo 2.4 pins
    protobuf < 3.21, so the extra brings TensorFlow < 2.20; over a newer TensorFlow pip
    would install TensorFlow 2.19 beside it, so that case is told to use a fresh venv."""
    from importlib import metadata

    hint = "install the harness extra: pip install 'larq-bamsprod[harness]'"
    for dist in ("tensorflow", "tensorflow-cpu"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        if tuple(int(p) for p in version.split(".")[:2]) >= (2, 20):
            return (f"{hint} in a fresh venv: it needs TensorFlow 2.15-2.19 and protobuf "
                    f"3.20 (larq-zoo 2.4 pins protobuf<3.21), and here {dist} is {version}")
    return hint


def _int_list(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``: integers >= 0, each once, no empty item."""
    parts = [part.strip() for part in text.split(",")]
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,1,2, received {text!r}"
        ) from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 0, received {text!r}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"{text!r} names {', '.join(map(str, repeated))} more than once; give each "
            "seed once, e.g. 0,1,2")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, pointing to ``--help``."""

    def error(self, message: str):
        if message.startswith("unrecognized arguments"):
            message += (" (options take --NAME VALUE, e.g. --optimizers bamsprod,bop or "
                        "--output DIR; nothing is given without a --NAME)")
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command. It imports no TensorFlow (only
    :mod:`~larq_bamsprod.harness.catalogue.names` and the evidence command's arguments), so
    that ``larq_bamsprod_cli`` can answer ``--help`` without importing the library."""
    from larq_bamsprod.harness.catalogue import names

    parser = _Parser(
        prog="larq-bamsprod",
        description="BAMSProd vs Bop and the adaptive optimizers on the same binary graphs.",
    )
    parser.add_argument(
        "--tf-logs", action="store_true", dest="tf_logs",
        help="show TensorFlow's start-up and C++ log messages (hidden by default); give it "
        "before the command: larq-bamsprod --tf-logs compare ... (a command's --verbose "
        "is its progress display)")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "compare",
        help="train one model with several optimizers, same data/seeds/init; table + plot",
        description="Train one binary model with several optimizers from identical initial "
        "weights on identical batches; write results.{md,csv,json}, curves.png and "
        "TensorBoard logs to --output. Re-running the same command resumes.",
    )
    _add_compare_arguments(c, output="runs/compare")
    r = sub.add_parser(
        "recipe",
        help="run one of larq-zoo's training recipes with BAMSProd, Bop or its own optimizer",
        description="Run a larq-zoo training recipe (zookeeper task, e.g. TrainQuickNet, "
        "TrainBinaryResNetE18) on any TFDS image dataset, its optimizer replaced; its model, "
        "epochs, batch size and schedule kept unless overridden. Checkpoints, TensorBoard "
        "logs, the saved model and history.json go to --output; re-running resumes. See "
        "docs/ZOO.md.",
    )
    r.add_argument("recipe", metavar="NAME",
                   help="larq-zoo task name, e.g. TrainQuickNet (a wrong name lists them all)")
    r.add_argument("--optimizer", default="bamsprod",
                   help="recipe (the recipe's own, as a legacy optimizer) or one of: "
                   + ",".join(names.OPTIMIZERS) + ". Default: bamsprod")
    r.add_argument("--dataset", default="fashion_mnist",
                   help="TFDS image classification dataset: one of "
                   + ", ".join(d for d in names.DATASETS if d != "ptb")
                   + ", or any other TFDS name already prepared in --data-dir. "
                   "Default: fashion_mnist")
    r.add_argument("--data-dir", default=None, help="TFDS data_dir (default: TFDS_DATA_DIR "
                   "or ~/tensorflow_datasets)")
    r.add_argument("--epochs", type=_positive_int, default=None, help="Default: the recipe's")
    r.add_argument("--batch-size", type=_positive_int, default=None,
                   help="Default: the recipe's")
    r.add_argument("--steps-per-epoch", type=_positive_int, default=None,
                   help="cap each epoch at N batches (quick runs)")
    r.add_argument("--validation-steps", type=_positive_int, default=None,
                   help="cap validation at N batches. Default: --steps-per-epoch if given")
    r.add_argument("--image-size", type=_positive_int, default=None,
                   help="model input SxSx3. Default: 224, the recipes' ImageNet size")
    r.add_argument("--schedule", choices=("recipe", "constant"), default="recipe",
                   help="scale the optimizer's base rates by the recipe's schedule shape, or "
                   "not. Default: recipe")
    r.add_argument("--hparam", action="append", default=[], metavar="OPT.NAME=VALUE",
                   help="override a hyperparameter of --optimizer, as in compare, e.g. "
                   "bamsprod.learning_rate=0.001 (repeatable; NAME=VALUE also works)")
    r.add_argument("--set", action="append", default=[], dest="config", metavar="KEY=VALUE",
                   help="zookeeper configuration of the recipe, e.g. "
                   "model.section_filters=[32,64,256,512] (repeatable)")
    r.add_argument("--output", default=None,
                   help="Default: runs/recipe/NAME-OPTIMIZER-DATASET")
    lst = sub.add_parser("list", help="list models (with their smallest input), datasets "
                         "(installed or how to get them), optimizers and recipes")
    lst.add_argument("--data-dir", default=None, help="TFDS data_dir to look in (default: "
                     "TFDS_DATA_DIR or ~/tensorflow_datasets)")
    _add_tune_parser(sub)
    from larq_bamsprod.harness.reports import evidence

    e = sub.add_parser("evidence", help="regenerate RESULTS.md's tables of the tuned "
                       "comparisons from the committed files (--check: compare only)",
                       description=evidence.DESCRIPTION)
    evidence.add_arguments(e)
    return parser


def _add_compare_arguments(p: argparse.ArgumentParser, output: str) -> None:
    """The graph, data, budget and report flags of ``compare``, which ``tune`` shares.

    Added to each parser anew, not through ``parents=``: argparse's parents share their
    action objects, and a child that redefines one (``tune``'s default ``--output``) takes
    its option string away from the parent's, where it becomes a positional that swallows
    a stray word (``compare bamsprod,bop`` trained into a folder named ``bamsprod,bop``).
    """
    from larq_bamsprod.harness.catalogue import names

    p.add_argument("--workload", default=None, metavar="MODULE:NAME",
                   help="your own graph: a larq_bamsprod.harness.Workload (or a zero-argument "
                   "function returning one) named NAME in module MODULE (importable from the "
                   "current folder or PYTHONPATH) or in a file (path/to/file.py:NAME); "
                   "replaces --model, --dataset and --model-arg. See README, 'Compare on "
                   "your own model'")
    p.add_argument("--model", default=None,
                   help="built-in model class name (see `larq-bamsprod list`). "
                   "Default: BinaryCNN")
    p.add_argument("--model-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="argument of the model's builder, e.g. width_multiplier=0.5 for "
                        "BinaryMobileNetV2, BinaryResNet34 or BinaryResNetE18 (repeatable)")
    images = [d for d in names.DATASETS if d != "ptb"]
    p.add_argument("--dataset", default=None,
                   help="one of: " + ", ".join(images) + " (TFDS image datasets; `larq-"
                   "bamsprod list` says which are installed), or ptb (Penn Treebank, for "
                   "--model BinaryLSTM). Default: fashion_mnist")
    p.add_argument("--optimizers", default=",".join(names.COMPARED_BY_DEFAULT),
                   help="comma list from: " + ",".join(names.OPTIMIZERS)
                   + " (case-insensitive). Default: " + ",".join(names.COMPARED_BY_DEFAULT))
    p.add_argument("--epochs", type=_positive_int, default=5, help="Default: 5")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="global batch size. Default: the workload's (128 for the built-in "
                   "ones)")
    p.add_argument("--seeds", type=_int_list, default=[0], help="e.g. 0,1,2. Default: 0")
    p.add_argument("--output", default=output, help=f"Default: {output}")
    p.add_argument("--steps-per-epoch", type=_positive_int, default=None,
                   help="cap each epoch at N batches (quick runs)")
    p.add_argument("--train-subset", type=_positive_int, default=None,
                   help="train on the first N training examples that are not held out "
                   "for validation")
    p.add_argument("--test-subset", type=_positive_int, default=None,
                   help="use the first N test examples")
    p.add_argument("--schedule", choices=names.SCHEDULES, default="cosine",
                   help="schedule shape applied to every optimizer's base rate. Default: cosine")
    p.add_argument("--hparam", action="append", default=[], metavar="OPT.NAME=VALUE",
                   help="override one hyperparameter, e.g. bamsprod.learning_rate=0.1 "
                   "(repeatable)")
    p.add_argument("--image-size", type=_positive_int, default=None,
                   help="resize images to SxS (for models that need larger inputs)")
    p.add_argument("--augment", action="store_true", help="random crop + flip (CIFAR style)")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    p.add_argument("--distribute", choices=("mirrored", "multiworker"), default=None,
                   help="mirrored: all local GPUs; multiworker: MultiWorkerMirroredStrategy "
                   "with TF_CONFIG")
    p.add_argument("--data-dir", default=None, help="TFDS data_dir (default: TFDS_DATA_DIR "
                   "or ~/tensorflow_datasets)")
    p.add_argument("--no-determinism", action="store_true",
                   help="do not enable TensorFlow op determinism (faster on GPU)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="progress: 0 one line per run, 1 a bar, 2 a line per evaluation "
                   "point. Default: 1 on a terminal, else 2")
    _add_fair_arguments(p)


def _add_tune_parser(sub) -> None:
    """``tune``: every flag of ``compare`` (same graph, data, budget), plus the tuning's."""
    t = sub.add_parser(
        "tune",
        help="tune every optimizer with the same number of trials (Optuna), then compare "
        "the best configurations over --seeds",
        description="Give every optimizer exactly --trials trials over one search space "
        "(each optimizer's entry in larq_bamsprod/harness/catalogue/registry.py), each "
        "trained for the comparison's "
        "step budget and scored on held-out validation accuracy (perplexity, minimized, for "
        "--dataset ptb); then run the best "
        "configuration of each over --seeds as `compare` does. Several processes may share "
        "one --storage; re-running resumes. Writes tune.md/tune.json and the comparison "
        "to --output.",
    )
    _add_compare_arguments(t, output="runs/tune")
    t.add_argument("--trials", type=_positive_int, default=20,
                   help="trials per study (the same for every optimizer). Default: 20")
    t.add_argument("--studies", type=_positive_int, default=1,
                   help="independent studies per optimizer (study names OPT/studyK, "
                   "quasi-random points seeded by workload, optimizer and study); the final "
                   "configuration is the best trial over all of them. Default: 1")
    t.add_argument("--storage", default=None,
                   help="Optuna storage: sqlite:///PATH, postgresql://..., mysql://... or "
                   "journal:PATH. Default: journal:OUTPUT/optuna.journal")
    t.add_argument("--space", action="append", default=[], metavar="OPT.NAME=SPEC",
                   help="replace or add one search-space entry: log:LOW:HIGH or "
                   "choice:A,B (e.g. bop.gamma=log:1e-6:1e-3; repeatable)")
    t.add_argument("--ablation", action="append", default=[], metavar="OPT.NAME",
                   help="add a named ablation to an optimizer's search space (e.g. "
                   "bamsprod.lr_decay: lr_decay 'sqrt' vs None; repeatable)")
    t.add_argument("--keep-edge", action="append", default=[], metavar="OPT=REASON",
                   help="why OPT's chosen value may stay in the outer 10%% (log) of its range; "
                   "recorded in tune.json (edge_kept_because). Repeatable")
    t.add_argument("--sampler-seed", type=_non_negative_int, default=0,
                   help="seed of the studies' quasi-random points (hashed with the "
                   "workload, optimizer and study). Default: 0")
    t.add_argument("--stale-after", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="a RUNNING trial without heartbeat for this long is run again "
                   "(trials of dead processes on this machine at once). Default: 120")
    t.add_argument("--no-rerun", action="store_true",
                   help="only run trials (e.g. extra workers); skip the final comparison")
    t.set_defaults(compare_argv=lambda args: _compare_argv(t, args))


_TUNE_ONLY = ("trials", "studies", "storage", "space", "ablation", "keep_edge",
              "sampler_seed", "stale_after", "no_rerun", "compare_argv", "command", "help",
              "optimizers")  # --optimizers: tune.md states the list it tuned


def _compare_argv(tune_parser: argparse.ArgumentParser, args) -> list[str]:
    """The ``compare`` arguments of a ``tune`` command line: every option given that is not
    the tuning's own (tune.md appends the chosen ``--hparam`` values)."""
    argv = ["--output", args.output]
    for action in tune_parser._actions:
        value = getattr(args, action.dest, None)
        if (action.dest in _TUNE_ONLY + ("output",) or not action.option_strings
                or value == action.default):
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:
            argv.append(flag)
        elif action.default == []:  # repeatable (action="append", default=[])
            argv += [part for item in value for part in (flag, str(item))]
        elif isinstance(value, list):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, received {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, received {text!r}")
    return value


def _score(text: str) -> float:
    """A target score: an accuracy in (0, 1], or a perplexity >= 1 (checked against the
    dataset by ``CompareConfig``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected an accuracy in (0, 1], e.g. 0.85 (or a perplexity >= 1 for --dataset "
            f"ptb), received {text!r}")
    return value


def _add_fair_arguments(p: argparse.ArgumentParser) -> None:
    """Validation split, evaluation points and the reference of ``compare`` (and ``tune``)."""
    p.add_argument("--validation-size", type=_positive_int, default=None,
                   help="examples held out of the training split for validation (a fixed "
                   "seeded choice, never trained on). Default: 10%% of the split, at most "
                   "5000")
    p.add_argument("--eval-every", type=_positive_int, default=None, metavar="STEPS",
                   help="evaluate on validation every STEPS training steps (and after the "
                   "last). Default: about 20 evaluations per run, fewer if the validation "
                   "set is large: evaluations x validation batches at most 0.3 x training "
                   "steps (an evaluation batch cost 0.3-0.5 of a training step on the "
                   "committed graphs, so evaluation stays under about 15%% of training "
                   "time). At most the run's steps")
    p.add_argument("--reference", default=None,
                   help="optimizer the others are measured against. Default: bop if "
                   "compared, else the first of --optimizers (of the folder's optimizers, "
                   "for a rerun naming only some)")
    p.add_argument("--target", type=_score, default=None,
                   help="validation accuracy for time-to-target (validation perplexity for "
                   "--dataset ptb: reached at or below it). Default: the workload's own "
                   "target if it records one, else the worst of the compared optimizers' "
                   "mean final validation scores (the same whatever --reference); speed is "
                   "also reported at a ladder of 4 levels up to it")


def _model_args(items: list[str]) -> dict:
    """``["width_multiplier=0.5", "stem=cifar"]`` -> ``{"width_multiplier": 0.5, ...}``."""
    import ast

    parsed = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--model-arg takes NAME=VALUE, received {item!r} "
                             "(e.g. --model-arg width_multiplier=0.5)")
        try:
            parsed[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[name] = value  # a bare word: a string, e.g. stem=cifar
    return parsed


def _workload(args):
    """The workload of ``compare``/``tune``: ``--workload``'s, or the built-in one of
    ``--model``/``--dataset``; the size flags applied to it."""
    sizes = {"batch_size": args.batch_size, "validation_size": args.validation_size,
             "train_subset": args.train_subset, "test_subset": args.test_subset}
    if args.workload is not None:
        given = [flag for flag, value in (
            ("--model", args.model), ("--dataset", args.dataset),
            ("--model-arg", args.model_arg), ("--image-size", args.image_size),
            ("--augment", args.augment), ("--data-dir", args.data_dir)) if value]
        if given:
            raise ValueError(f"--workload brings its own model and data; drop "
                             f"{', '.join(given)} (or drop --workload to use a built-in graph)")
        from larq_bamsprod.harness.workload import load_workload

        return load_workload(args.workload, "--workload").replace(**sizes)
    from larq_bamsprod.harness.catalogue.workloads import BuiltinWorkload

    return BuiltinWorkload(
        args.model or "BinaryCNN", args.dataset or "fashion_mnist",
        _model_args(args.model_arg), image_size=args.image_size, augment=args.augment,
        data_dir=args.data_dir, **{k: v for k, v in sizes.items() if v is not None})


def _compare_config(args, tuned: bool = False):
    """Check every input before anything is written or trained (ValueError names the bad one).

    ``tuned``: for ``tune``, whose final comparison trains the chosen hyperparameters, not
    the ones given here, so a folder holding its finished comparison is checked on the
    settings that must match and not on hyperparameters (the comparison checks those once
    the configuration is chosen).

    The settings themselves are checked here, the rest by :func:`compare.check`.
    """
    from larq_bamsprod.harness.catalogue import registry
    from larq_bamsprod.harness.experiments import compare

    cfg = compare.CompareConfig(
        workload=_workload(args),
        optimizers=registry.parse_optimizer_list(args.optimizers),
        epochs=args.epochs,
        seeds=args.seeds,
        output=args.output,
        steps_per_epoch=args.steps_per_epoch,
        schedule=args.schedule,
        hparams=registry.parse_overrides(args.hparam),
        mixed_precision=args.mixed_precision,
        distribute=args.distribute,
        deterministic=not args.no_determinism,
        verbose=args.verbose,
        eval_every=args.eval_every,
        reference=args.reference,
        target=args.target,
    )
    compare.check(cfg, hyperparameters=not tuned)
    return cfg


def _is_text(dataset: str) -> bool:
    from larq_bamsprod.harness.catalogue import workloads

    return workloads.dataset_task(dataset) == workloads.LANGUAGE_MODELLING


def _list(args) -> int:
    from larq_bamsprod.harness.catalogue import data, registry, workloads
    from larq_bamsprod.harness.experiments import zoo

    print("built-in models, --model NAME (your own model and data: --workload "
          "MODULE:NAME):")
    for name, task, inputs in workloads.registered():
        print(f"  {name:<24}" + (f"{task}: {inputs}" if task == "language model" else inputs))
    data_dir = args.data_dir or data.default_data_dir()
    print(f"datasets (TFDS data_dir {data_dir}; change with --data-dir):")
    for name in sorted(data.DATASETS):
        print(f"  {name:<24}{data.availability(name, data_dir=data_dir)}")
    print("optimizers: " + ", ".join(registry.OPTIMIZER_NAMES))
    print("recipes:    " + ", ".join(zoo.RECIPES))
    return 0


def _recipe_hparams(optimizer: str, items: list[str]) -> dict:
    """``--hparam`` items of ``recipe``: ``OPT.NAME=VALUE`` as for compare, with OPT the
    ``--optimizer``, or ``NAME=VALUE`` for short."""
    from larq_bamsprod.harness.catalogue import registry

    if not items:
        return {}
    if optimizer == "recipe":
        raise ValueError("--hparam applies to bamsprod, bop, ...; configure the recipe's "
                         "own optimizer with --set")
    qualified = []
    for item in items:
        key = item.partition("=")[0]
        opt = key.rpartition(".")[0]
        if opt and registry.canonical_name(opt) != optimizer:
            raise ValueError(f"--hparam {item!r} is for optimizer {opt!r}, but --optimizer is "
                             f"{optimizer}; write --hparam {optimizer}.NAME=VALUE")
        qualified.append(item if opt else f"{optimizer}.{item}")
    return registry.parse_overrides(qualified).get(optimizer, {})


def _recipe_optimizer_error(optimizer: str, hparams: dict, config: list[str],
                            err: Exception) -> str:
    """The message of an optimizer the recipe could not build, blaming the flag that set
    the bad value: ``--hparam`` if its values alone fail, else ``--set``."""
    from larq_bamsprod.harness.catalogue import registry

    try:
        registry.make_optimizer(optimizer, hparams, None)
    except (ValueError, TypeError):
        return f"optimizer {optimizer} (set with --hparam {optimizer}.NAME=VALUE): {err}"
    return (f"{_set_flags(config)}: the recipe's optimizer {optimizer} cannot be built "
            f"with it: {err}")


def _set_flags(config: list[str]) -> str:
    return " ".join(f"--set {item}" for item in config)


def _recipe(args):
    """Check the inputs of ``recipe``; return the function that runs it."""
    import os

    from larq_bamsprod.harness.experiments import zoo
    from larq_bamsprod.harness.files import check_writable_folder

    name = zoo.canonical_recipe(args.recipe)
    if _is_text(args.dataset):
        raise ValueError(f"--dataset {args.dataset} is a text corpus; larq-zoo's recipes "
                         "train image models: give an image dataset (e.g. fashion_mnist), or "
                         f"use `compare --model BinaryLSTM --dataset {args.dataset}`")
    optimizer = args.optimizer.strip().lower()
    if optimizer not in zoo.OPTIMIZER_CHOICES:
        raise ValueError(f"unknown --optimizer {args.optimizer!r}; valid: "
                         f"{', '.join(zoo.OPTIMIZER_CHOICES)}")
    hparams = _recipe_hparams(optimizer, args.hparam)
    output = args.output or os.path.join(
        "runs", "recipe", f"{name}-{optimizer}-{args.dataset}".replace("/", "_"))
    check_writable_folder(output, "--output")
    overrides = zoo.parse_config(args.config)
    try:
        task = zoo.make_recipe(
            name, optimizer=optimizer, dataset=args.dataset, data_dir=args.data_dir,
            epochs=args.epochs, batch_size=args.batch_size,
            steps_per_epoch=args.steps_per_epoch, validation_steps=args.validation_steps,
            image_size=args.image_size, output=output, hparams=hparams,
            schedule=args.schedule, overrides=overrides,
        )
    except (ValueError, TypeError) as err:
        if not overrides:
            raise
        # The other flags are checked above: what the configuration refuses is --set's.
        raise ValueError(f"{_set_flags(args.config)}: {_one_line(err)}") from err
    if optimizer != "recipe":
        try:
            task.optimizer  # noqa: B018  (built now: the optimizer's own checks run)
        except (ValueError, TypeError) as err:
            raise ValueError(_recipe_optimizer_error(optimizer, hparams, args.config,
                                                     err)) from err
    finished = zoo.check_resumable(task)
    if not finished:
        zoo.check_model(task)

    def run() -> int:
        if finished:
            print(f"larq-bamsprod recipe: {output} holds this recipe's finished run; skipped "
                  f"(history in {os.path.join(output, 'history.json')})", flush=True)
            return 0
        for note in zoo.input_notes(task):
            print(f"larq-bamsprod recipe: {note}", flush=True)
        task.run()
        print(f"larq-bamsprod recipe: wrote {os.path.join(output, 'history.json')}",
              flush=True)
        return 0

    return run


def _compare(args):
    """Check the inputs of ``compare``; return the function that runs it."""
    cfg = _compare_config(args)

    def run() -> int:
        from larq_bamsprod.harness.experiments import compare

        compare.run_comparison(cfg, log=lambda msg: print(msg, flush=True))
        return 0

    return run


def _tune(args):
    """Check the inputs of ``tune`` (search space and storage first, then what ``compare``
    checks); return the function that runs it."""
    for module in ("optuna", "scipy"):  # scipy: the studies' quasi-random points
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"tune needs {module}, which is not installed; "
                             f"{harness_install_hint()}")
    from larq_bamsprod.harness.catalogue import registry, search_space
    from larq_bamsprod.harness.experiments import studies, tune

    space = search_space.parse_space(args.space)
    ablations = search_space.parse_ablations(args.ablation)
    keep_edge = search_space.parse_keep_edge(args.keep_edge)
    optimizers = registry.parse_optimizer_list(args.optimizers)
    for flag, named in (("--space", space), ("--ablation", ablations),
                        ("--keep-edge", keep_edge)):
        unknown = sorted(set(named) - set(optimizers))
        if unknown:
            raise ValueError(f"{flag} names {', '.join(unknown)}, which --optimizers does not "
                             f"tune ({', '.join(optimizers)})")
    tune.refuse_searched_hparams(registry.parse_overrides(args.hparam),
                                 lambda opt: search_space.space_of(opt, space, ablations))
    if args.storage is not None:
        studies.check_storage_url(args.storage)
        if not args.storage.startswith(("journal:", "sqlite:")):
            studies.open_storage(args.storage)  # a database server: reachable, driver present
    cfg = tune.TuneConfig(
        compare=_compare_config(args, tuned=True),
        trials=args.trials,
        studies=args.studies,
        storage=args.storage,
        space=space,
        ablations=ablations,
        keep_edge=keep_edge,
        sampler_seed=args.sampler_seed,
        stale_after=(studies.DEFAULT_STALE_AFTER if args.stale_after is None
                     else args.stale_after),
        rerun=not args.no_rerun,
        compare_argv=args.compare_argv(args),
    )
    cfg.check_storage()

    def run() -> int:
        try:
            tune.run_tune(cfg, log=lambda msg: print(msg, flush=True))
        except ValueError as err:  # a study in --storage tuned with other settings
            print(f"larq-bamsprod tune: error: {_one_line(err)}", file=sys.stderr)
            return 2
        return 0

    return run


def main(argv: list[str] | None = None) -> int:
    missing = missing_harness_packages()
    if missing:
        print(
            "larq-bamsprod: error: the comparison harness needs packages that are not "
            f"installed ({', '.join(missing)}); {harness_install_hint()}",
            file=sys.stderr,
        )
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.tf_logs:
        _quiet_python_logs()
    try:
        return _main(args)
    except KeyboardInterrupt:
        print(f"larq-bamsprod {args.command}: interrupted; finished epochs are saved, run the "
              "same command again to resume", file=sys.stderr)
        return 130


def _quiet_python_logs() -> None:
    """TensorFlow's and absl's Python warnings (retracing, checkpoint values not restored
    yet, deprecations) only with ``--tf-logs``; the C++ ones: ``larq_bamsprod_cli``."""
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def _one_line(err: Exception) -> str:
    """The first paragraph of an error's message, on one line (zookeeper's run on with an
    example in a code block)."""
    return " ".join(str(err).strip().split("\n\n")[0].split())


def _main(args) -> int:
    if args.command == "list":
        return _list(args)
    if args.command == "evidence":
        from larq_bamsprod.harness.reports import evidence

        return evidence.run(args, "larq-bamsprod evidence")
    from larq_bamsprod.harness.catalogue.data import DatasetUnavailableError
    from larq_bamsprod.harness.experiments.config import ResumeError

    prog = f"larq-bamsprod {args.command}"
    try:
        # Every input is checked here, before anything is written or trained.
        run = {"recipe": _recipe, "tune": _tune}.get(args.command, _compare)(args)
    except (ValueError, TypeError, DatasetUnavailableError) as err:
        # Bad names/values: one clear line listing the valid choices, not a traceback.
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    try:
        return run()
    except ResumeError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
