"""What the benchmarks share: the machine's description, its memory bandwidth, the models.

Imported by ``update_step.py`` and ``train_step.py`` (run as scripts from any directory).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import threading
import time

# isort: off
import larq_bamsprod  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf
# isort: on


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict:
    """Machine, software and date, for every result file."""
    import larq
    import larq_zoo

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
            cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "gpus": gpus,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": getattr(tf.keras, "__version__", "tf-keras"),
        "larq": larq.__version__ if hasattr(larq, "__version__") else "",
        "larq_zoo": getattr(larq_zoo, "__version__", ""),
        "larq_bamsprod": larq_bamsprod.__version__,
        "git_commit": commit,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }


def copy_bandwidth(megabytes: int = 256, repeats: int = 7) -> dict:
    """Bytes moved per second (read + write) by a NumPy copy of float32 arrays, with one
    thread and with one thread per core (each copying its own slice), best of both.

    This is the number the memory floor of an update is measured against; the copy is
    what a machine can do at best for a streaming read+write pattern."""
    n = megabytes * (1 << 20) // 4
    src = np.ones(n, np.float32)
    dst = np.ones_like(src)  # touched, so no page faults in the timed copies
    result = {}
    for threads in sorted({1, max(1, os.cpu_count() or 1)}):
        bounds = np.linspace(0, n, threads + 1).astype(int)

        def part(i, bounds=bounds):
            np.copyto(dst[bounds[i]:bounds[i + 1]], src[bounds[i]:bounds[i + 1]])

        times = []
        for _ in range(repeats):
            workers = [threading.Thread(target=part, args=(i,)) for i in range(threads)]
            start = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            times.append(time.perf_counter() - start)
        result[f"threads_{threads}"] = 2 * src.nbytes / statistics.median(times)
    result["best"] = max(result.values())
    return result


def tiny_binary_cnn():
    """~73k parameters in 18 variables: per-variable and per-step overhead dominate here."""
    import larq as lq

    kw = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
              kernel_constraint="weight_clip", use_bias=False)
    layers = [tf.keras.layers.InputLayer((28, 28, 1)),
              lq.layers.QuantConv2D(32, 3, kernel_quantizer="ste_sign",
                                    kernel_constraint="weight_clip", use_bias=False),
              tf.keras.layers.BatchNormalization()]
    for filters in (32, 48, 48, 64):
        layers += [lq.layers.QuantConv2D(filters, 3, padding="same", **kw),
                   tf.keras.layers.BatchNormalization()]
        if filters == 48:
            layers.append(tf.keras.layers.MaxPooling2D(2))
    layers += [tf.keras.layers.GlobalAveragePooling2D(), lq.layers.QuantDense(10, **kw),
               tf.keras.layers.BatchNormalization(), tf.keras.layers.Activation("softmax")]
    return tf.keras.Sequential(layers)


def zoo(name: str, size: int, classes: int):
    def build():
        import larq_zoo as lqz

        module = lqz.sota if hasattr(lqz.sota, name) else lqz.literature
        return getattr(module, name)(
            input_shape=(size, size, 3), weights=None, num_classes=classes
        )

    return build


MODELS = {
    "TinyBinaryCNN": tiny_binary_cnn,
    "QuickNetSmall": zoo("QuickNetSmall", 32, 10),
    "BinaryResNetE18": zoo("BinaryResNetE18", 32, 10),
    "BinaryDenseNet45": zoo("BinaryDenseNet45", 224, 1000),
    "BinaryAlexNet": zoo("BinaryAlexNet", 224, 1000),
}
"""Benchmark models. BinaryResNetE18 is the issue's (32x32, 10 classes, 11.2M parameters);
BinaryDenseNet45 has many variables (136); BinaryAlexNet at 224x224 has 61.8M."""
