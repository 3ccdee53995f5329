"""Command line: ``larq-bamsprod compare ...`` (or ``python -m larq_bamsprod.harness ...``)."""

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


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,1,2, received {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 0, received {text!r}")
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


def build_parser() -> argparse.ArgumentParser:
    from larq_bamsprod.harness import compare, registry

    parser = argparse.ArgumentParser(
        prog="larq-bamsprod",
        description="BAMSProd vs Bop and the adaptive optimizers on the same binary graphs.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "compare",
        help="train one model with several optimizers, same data/seeds/init; table + plot",
        description="Train one binary model with several optimizers from identical initial "
        "weights on identical batches; write results.{md,csv,json}, curves.png and "
        "TensorBoard logs to --output. Re-running the same command resumes.",
    )
    c.add_argument("--model", default="BinaryCNN",
                   help="model class name (see `larq-bamsprod list`). Default: BinaryCNN")
    c.add_argument("--model-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="argument of the model's builder, e.g. width_multiplier=0.5 for "
                        "BinaryMobileNetV2 or BinaryResNet34 (repeatable)")
    c.add_argument("--dataset", default="fashion_mnist",
                   help="TFDS dataset name (see `larq-bamsprod list`). Default: fashion_mnist")
    c.add_argument("--optimizers", default=",".join(registry.COMPARED_BY_DEFAULT),
                   help="comma list from: " + ",".join(registry.OPTIMIZER_NAMES)
                   + " (case-insensitive). Default: " + ",".join(registry.COMPARED_BY_DEFAULT))
    c.add_argument("--epochs", type=_positive_int, default=5, help="Default: 5")
    c.add_argument("--batch-size", type=_positive_int, default=128,
                   help="global batch size. Default: 128")
    c.add_argument("--seeds", type=_int_list, default=[0], help="e.g. 0,1,2. Default: 0")
    c.add_argument("--output", default="runs/compare", help="Default: runs/compare")
    c.add_argument("--steps-per-epoch", type=_positive_int, default=None,
                   help="cap each epoch at N batches (quick runs)")
    c.add_argument("--train-subset", type=_positive_int, default=None,
                   help="use the first N training examples")
    c.add_argument("--test-subset", type=_positive_int, default=None,
                   help="use the first N test examples")
    c.add_argument("--schedule", choices=compare.SCHEDULES, default="cosine",
                   help="schedule shape applied to every optimizer's base rate. Default: cosine")
    c.add_argument("--hparam", action="append", default=[], metavar="OPT.NAME=VALUE",
                   help="override one hyperparameter, e.g. bamsprod.learning_rate=0.1 "
                   "(repeatable)")
    c.add_argument("--image-size", type=_positive_int, default=None,
                   help="resize images to SxS (for models that need larger inputs)")
    c.add_argument("--augment", action="store_true", help="random crop + flip (CIFAR style)")
    c.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    c.add_argument("--distribute", choices=("mirrored", "multiworker"), default=None,
                   help="mirrored: all local GPUs; multiworker: MultiWorkerMirroredStrategy "
                   "with TF_CONFIG")
    c.add_argument("--data-dir", default=None, help="TFDS data_dir (default: TFDS_DATA_DIR "
                   "or ~/tensorflow_datasets)")
    c.add_argument("--no-determinism", action="store_true",
                   help="do not enable TensorFlow op determinism (faster on GPU)")
    c.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="Keras progress: 0 silent, 1 bar, 2 line per epoch. Default: 1 on a "
                   "terminal, else 2")
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
                   + ",".join(registry.OPTIMIZER_NAMES) + ". Default: bamsprod")
    r.add_argument("--dataset", default="fashion_mnist",
                   help="TFDS image classification dataset. Default: fashion_mnist")
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
    r.add_argument("--hparam", action="append", default=[], metavar="NAME=VALUE",
                   help="override a hyperparameter of --optimizer, e.g. learning_rate=0.001 "
                   "(repeatable)")
    r.add_argument("--set", action="append", default=[], dest="config", metavar="KEY=VALUE",
                   help="zookeeper configuration of the recipe, e.g. "
                   "model.section_filters=[32,64,256,512] (repeatable)")
    r.add_argument("--output", default=None,
                   help="Default: runs/recipe/NAME-OPTIMIZER-DATASET")
    sub.add_parser("list", help="list models, datasets and optimizers")
    return parser


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


def _compare_config(args):
    """Validate every flag before any training starts (ValueError names the bad one)."""
    from larq_bamsprod.harness import compare, data, models, registry

    data.get_info(args.dataset)  # fail fast, listing valid names
    cfg = compare.CompareConfig(
        model=models.registered_name(args.model),
        model_args=_model_args(args.model_arg),
        dataset=args.dataset,
        optimizers=registry.parse_optimizer_list(args.optimizers),
        epochs=args.epochs,
        batch_size=args.batch_size,
        seeds=args.seeds,
        output=args.output,
        steps_per_epoch=args.steps_per_epoch,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        schedule=args.schedule,
        hparams=registry.parse_overrides(args.hparam),
        mixed_precision=args.mixed_precision,
        distribute=args.distribute,
        data_dir=args.data_dir,
        image_size=args.image_size,
        augment=args.augment,
        deterministic=not args.no_determinism,
        verbose=args.verbose,
    )
    if cfg.model_args:
        # Values are checked by the builder itself: build once on a small input, now.
        import tensorflow as tf

        try:
            models.build_model(cfg.model, (32, 32, 3), 10, **cfg.model_args)
        except (TypeError, ValueError) as err:
            raise ValueError(f"--model-arg: {err}") from err
        finally:
            tf.keras.backend.clear_session()
    compare.check_resumable(cfg)
    return cfg


def _list() -> int:
    from larq_bamsprod.harness import data, models, registry

    print("models:     " + ", ".join(models.MODELS))
    print("datasets:   " + ", ".join(data.DATASETS))
    print("optimizers: " + ", ".join(registry.OPTIMIZER_NAMES))
    return 0


def _recipe(args) -> int:
    import os

    from larq_bamsprod.harness import data, registry, zoo

    try:
        name = zoo.canonical_recipe(args.recipe)
        optimizer = args.optimizer.strip().lower()
        if optimizer == "recipe" and args.hparam:
            raise ValueError("--hparam applies to bamsprod, bop, ...; configure the recipe's "
                             "own optimizer with --set")
        hparams = {}
        if args.hparam and optimizer in registry.OPTIMIZER_NAMES:
            items = [f"{optimizer}.{item}" for item in args.hparam]
            hparams = registry.parse_overrides(items)[optimizer]
        output = args.output or os.path.join(
            "runs", "recipe", f"{name}-{optimizer}-{args.dataset}".replace("/", "_"))
        task = zoo.make_recipe(
            name, optimizer=optimizer, dataset=args.dataset, data_dir=args.data_dir,
            epochs=args.epochs, batch_size=args.batch_size,
            steps_per_epoch=args.steps_per_epoch, validation_steps=args.validation_steps,
            image_size=args.image_size, output=output, hparams=hparams,
            schedule=args.schedule, overrides=zoo.parse_config(args.config),
        )
    except (ValueError, TypeError, data.DatasetUnavailableError) as err:
        print(f"larq-bamsprod recipe: error: {err}", file=sys.stderr)
        return 2
    task.run()
    print(f"larq-bamsprod recipe: wrote {os.path.join(output, 'history.json')}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    missing = missing_harness_packages()
    if missing:
        print(
            "larq-bamsprod: error: the comparison harness needs packages that are not "
            f"installed ({', '.join(missing)}); install the harness extra: "
            "pip install 'larq-bamsprod[harness]'",
            file=sys.stderr,
        )
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command == "recipe":
        return _recipe(args)
    try:
        cfg = _compare_config(args)
    except ValueError as err:
        # Bad names/values: one clear line listing the valid choices, not a traceback.
        print(f"larq-bamsprod {args.command}: error: {err}", file=sys.stderr)
        return 2
    from larq_bamsprod.harness import compare

    try:
        compare.run_comparison(cfg, log=lambda msg: print(msg, flush=True))
    except compare.ResumeError as err:
        print(f"larq-bamsprod {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
