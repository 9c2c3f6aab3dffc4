"""The programs in examples/ run end to end (short settings) and print their results."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from jitgrad import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def last_number(text: str, label: str) -> float:
    found = re.findall(rf"{re.escape(label)}\s*([-+0-9.eE]+)", text)
    assert found, f"no {label!r} line in:\n{text}"
    return float(found[-1])


def test_quadratic_prints_the_tutorial_table():
    out = run_example("quadratic.py", "--quick").splitlines()
    assert out[:3] == ["0 0.1 4.0", "1 0.16 3.6", "2 0.196 3.456"]
    assert len([line for line in out if re.fullmatch(r"\d+ \S+ \S+", line)]) == 5
    full = run_example("quadratic.py")
    assert "minimum found: x = 0.2500, y = 3.3750" in full


def test_mlp_digits(tmp_path):
    out = run_example("mlp_digits.py", "--quick", "--no-progress", "--out", str(tmp_path))
    assert "epoch 2/2" in out
    accuracy = last_number(out, "test accuracy:")
    assert 0.8 < accuracy <= 1.0
    tree, meta = training.load_checkpoint(str(tmp_path / "model.ckpt"))
    assert meta["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert tree["params"]["Dense_0"]["kernel"].shape == (64, 256)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "checkpoints" / "checkpoint_000002.ckpt").exists()


def test_cnn_digits(tmp_path):
    out = run_example("cnn_digits.py", "--quick", "--out", str(tmp_path))
    accuracy = last_number(out, "test accuracy:")
    assert 0.7 < accuracy <= 1.0
    tree, _ = training.load_checkpoint(str(tmp_path / "model.ckpt"))
    assert np.asarray(tree["params"]["Conv2D_0"]["kernel"]).shape == (16, 1, 3, 3)


def test_rnn_sequences():
    out = run_example("rnn_sequences.py", "--quick")
    assert last_number(out, "test R^2:") > 0.9
