"""Claim 3 (paper section 5.2): binary CNNs trained by every optimizer, same graph/data/seeds.

CPU scale (docs/RESULTS.md, section 3): the harness's BinaryCNN on offline Fashion-MNIST,
3 seeds (default), ``--cpu-mobilenetv2`` (binary MobileNetV2, width 0.35) and
``--cpu-resnet34`` (binary ResNet-34, width 0.25, with a ``bamsprod@nodecay`` row). GPU scale
(one command each, not run here):

    python examples/binary_cnn_comparison.py --gpu-resnet34     # CIFAR-10, 200 epochs
    python examples/binary_cnn_comparison.py --gpu-mobilenetv2  # ImageNet (manual download)

``--quick`` runs seconds-long settings (used by the tests); ``--print`` shows the
``larq-bamsprod compare`` command instead of running it. Extra arguments are passed on.

Every setting passes ``bamsprod.lr_decay=sqrt``: the CPU ones ran with it (the library's
default until 2026-12-01, ``None`` since; README, "Defaults"), so that they still
reproduce RESULTS' appendix, and the GPU ones are the paper's Algorithm 1.
"""

from __future__ import annotations

import sys

ALL = "bamsprod,bop,adam,amsgrad,adabound,amsbound,sgdm"
SQRT = ["--hparam", "bamsprod.lr_decay=sqrt"]  # Algorithm 1's eta / sqrt(t)

SETTINGS = {
    # What docs/RESULTS.md section 3 reports (the `make demo` settings with 3 seeds, as then).
    "cpu": ["--model", "BinaryCNN", "--dataset", "fashion_mnist", "--optimizers", ALL, *SQRT,
            "--epochs", "3", "--train-subset", "12000", "--batch-size", "128",
            "--seeds", "0,1,2", "--output", "runs/demo"],
    # The paper's binary MobileNetV2 at CPU scale (docs/RESULTS.md, section 3b): width 0.35,
    # 28x28 Fashion-MNIST, 2 epochs of 9,600 images at batch 64 (300 updates), 3 seeds.
    "cpu-mobilenetv2": ["--model", "BinaryMobileNetV2", "--model-arg", "width_multiplier=0.35",
                        "--dataset", "fashion_mnist", "--optimizers", ALL, *SQRT,
                        "--epochs", "2",
                        "--train-subset", "9600", "--test-subset", "2000",
                        "--batch-size", "64", "--seeds", "0,1,2",
                        "--output", "runs/cpu-mobilenetv2"],
    # Binary ResNet-34 at a quarter of the width (16/32/64/128 filters, 1.3M parameters),
    # same protocol as cpu-mobilenetv2, plus BAMSProd without the 1/sqrt(t) decay.
    "cpu-resnet34": ["--model", "BinaryResNet34", "--model-arg", "width_multiplier=0.25",
                     "--dataset", "fashion_mnist", "--optimizers", ALL + ",bamsprod@nodecay",
                     *SQRT,
                     "--hparam", "bamsprod@nodecay.lr_decay=none", "--epochs", "2",
                     "--train-subset", "9600", "--test-subset", "2000",
                     "--batch-size", "64", "--seeds", "0,1,2",
                     "--output", "runs/cpu-resnet34"],
    "quick": ["--model", "BinaryCNN", "--dataset", "fashion_mnist", "--optimizers",
              "bamsprod,bop", *SQRT, "--epochs", "1", "--steps-per-epoch", "2",
              "--batch-size", "16",
              "--test-subset", "64", "--seeds", "0", "--output", "runs/quick-cnn"],
    # The paper's CIFAR-10 setting: binary ResNet-34, 200 epochs, batch 128. (The paper
    # gave BAMSProd batch 64; here every optimizer gets the same batch, for fairness.)
    "gpu-resnet34": ["--model", "BinaryResNet34", "--dataset", "cifar10", "--augment",
                     "--optimizers", ALL, *SQRT, "--epochs", "200", "--batch-size", "128",
                     "--seeds", "0,1,2", "--schedule", "cosine",
                     "--hparam", "bamsprod.learning_rate=0.1",
                     "--distribute", "mirrored", "--no-determinism",
                     "--output", "runs/cifar10-resnet34"],
    # Table 1: binary MobileNetV2 on ImageNet (needs the ILSVRC2012 archives, see README).
    "gpu-mobilenetv2": ["--model", "BinaryMobileNetV2", "--dataset", "imagenet2012",
                        "--image-size", "224", "--augment", "--optimizers", ALL, *SQRT,
                        "--epochs", "100", "--batch-size", "256", "--seeds", "0",
                        "--hparam", "bamsprod.learning_rate=0.1",
                        "--distribute", "mirrored", "--mixed-precision", "--no-determinism",
                        "--output", "runs/imagenet-mobilenetv2"],
}


def main(argv: list[str] | None = None) -> int:
    from larq_bamsprod_cli import run_preset  # TensorFlow only if it runs

    return run_preset(SETTINGS, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
