"""examples/binary_cnn_comparison.py and examples/ablations.py (claims 3 and 5) run quickly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _script(name, *args):
    return [sys.executable, str(ROOT / "examples" / name), *args]


def test_gpu_commands_are_printed_with_the_papers_settings():
    out = subprocess.run(_script("binary_cnn_comparison.py", "--gpu-resnet34", "--print"),
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("larq-bamsprod compare --model BinaryResNet34 --dataset cifar10")
    assert "--epochs 200" in out and "--batch-size 128" in out
    assert "--optimizers bamsprod,bop,adam,amsgrad,adabound,amsbound,sgdm" in out


def test_cpu_resnet34_command_runs_the_quarter_width_model_with_a_nodecay_row():
    out = subprocess.run(_script("binary_cnn_comparison.py", "--cpu-resnet34", "--print"),
                         capture_output=True, text=True, check=True).stdout
    assert "--model BinaryResNet34 --model-arg width_multiplier=0.25" in out
    assert "--optimizers bamsprod,bop,adam,amsgrad,adabound,amsbound,sgdm,bamsprod@nodecay" in out
    assert "--hparam bamsprod@nodecay.lr_decay=none" in out


@pytest.mark.parametrize("script, flags", [
    ("binary_cnn_comparison.py", ["--cpu-mobilenetv2"]),
    ("binary_cnn_comparison.py", ["--cpu-resnet34"]),
    ("binary_cnn_comparison.py", ["--gpu-resnet34"]),
    ("ablations.py", []),
    ("binary_lstm_ptb.py", []),
    ("binary_lstm_ptb.py", ["--gpu"]),
])
def test_documented_commands_keep_algorithm_1s_sqrt_decay_on_every_bamsprod_row(script, flags):
    # They reproduce tables run when lr_decay="sqrt" was the library's default (or the
    # paper's settings); the default is None since, so each BAMSProd row must say "sqrt".
    out = subprocess.run(_script(script, *flags, "--print"), capture_output=True, text=True,
                         check=True).stdout.split()
    rows = [name for name in out[out.index("--optimizers") + 1].split(",")
            if name.startswith("bamsprod")]
    decays = {value.split("=")[0].rsplit(".", 1)[0]: value.split("=")[1]
              for flag, value in zip(out, out[1:])
              if flag == "--hparam" and ".lr_decay=" in value}
    assert rows and set(decays) == set(rows)
    assert {row: decays[row] for row in rows if row != "bamsprod@nodecay"} == {
        row: "sqrt" for row in rows if row != "bamsprod@nodecay"}


@pytest.mark.slow
def test_quick_modes_write_a_table(tmp_path):
    data_dir = synthetic_fmnist.make(tmp_path / "fmnist", n=128)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = {
        name: subprocess.Popen(
            _script(name, "--quick", "--data-dir", data_dir, "--verbose", "0",
                    "--output", str(tmp_path / name)),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name in ("binary_cnn_comparison.py", "ablations.py")
    }
    for proc in procs.values():
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log[-3000:]
    rows = json.loads((tmp_path / "ablations.py" / "results.json").read_text())["rows"]
    assert [r["optimizer"] for r in rows] == ["bamsprod", "bamsprod@lr1e-3"]
    rows = json.loads((tmp_path / "binary_cnn_comparison.py" / "results.json").read_text())
    assert [r["optimizer"] for r in rows["rows"]] == ["bamsprod", "bop"]
