"""jitgrad.training: checkpoints (atomic, verified, resumable), the fit loop, curves, NaN stop."""
import os
import subprocess
import sys
import textwrap
import zipfile
from typing import NamedTuple

import numpy as np
import pytest

import jitgrad
from jitgrad import data, nn, optim, random, training

F32 = np.float32
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Pair(NamedTuple):
    a: object
    b: object


def sample_tree():
    return {"params": {"w": np.arange(6, dtype=F32).reshape(2, 3), "b": np.zeros(3, F32)},
            "opt": Pair(a=np.int32(7), b=[np.ones(2, np.float64), (np.array([1, 2], np.uint32),)]),
            "none": None, "count": 3}


def assert_same(a, b):
    la, ta = jitgrad.tree.flatten(a)
    lb, tb = jitgrad.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ================================================================== checkpoints

def test_checkpoint_round_trip(tmp_path):
    tree = sample_tree()
    path = training.save_checkpoint(str(tmp_path / "a.ckpt"), tree, {"epoch": 4, "note": "hi"})
    restored, meta = training.load_checkpoint(path, target=tree)
    assert meta == {"epoch": 4, "note": "hi"}
    assert_same(restored, tree)
    assert isinstance(restored["opt"], Pair) and isinstance(restored["count"], int)
    plain, _ = training.load_checkpoint(path)            # without a target: dicts and lists
    assert plain["opt"]["a"] == 7 and plain["none"] is None
    np.testing.assert_array_equal(plain["opt"]["b"][1][0], [1, 2])
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_damaged_checkpoints_are_refused(tmp_path):
    path = str(tmp_path / "a.ckpt")
    training.save_checkpoint(path, sample_tree())
    raw = open(path, "rb").read()
    with open(path, "wb") as f:                           # truncated
        f.write(raw[: len(raw) // 2])
    with pytest.raises(training.CheckpointError, match="damaged"):
        training.load_checkpoint(path)
    # a well-formed file whose array no longer matches the checksum
    training.save_checkpoint(path, sample_tree())
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    name = "leaf_00000.npy"
    body = bytearray(entries[name])
    body[-1] ^= 0xFF
    entries[name] = bytes(body)
    with zipfile.ZipFile(path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    with pytest.raises(training.CheckpointError, match="checksum"):
        training.load_checkpoint(path)
    with pytest.raises(training.CheckpointError, match="no checkpoint"):
        training.load_checkpoint(str(tmp_path / "missing.ckpt"))


def test_checkpoint_target_mismatch_names_the_path(tmp_path):
    path = training.save_checkpoint(str(tmp_path / "a.ckpt"), sample_tree())
    other = sample_tree()
    other["params"]["w"] = np.zeros((3, 3), F32)
    with pytest.raises(training.CheckpointError, match=r"\['params'\]\['w'\] is float32\[2, 3\] but the "
                                                       r"target expects float32\[3, 3\]"):
        training.load_checkpoint(path, target=other)
    renamed = sample_tree()
    renamed["params"]["v"] = renamed["params"].pop("w")
    with pytest.raises(training.CheckpointError, match="does not fit the target"):
        training.load_checkpoint(path, target=renamed)


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "a.ckpt")
    training.save_checkpoint(path, sample_tree(), {"version": 1})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("interrupted while saving")
    monkeypatch.setattr(os, "replace", crash)
    newer = sample_tree()
    newer["count"] = 99
    with pytest.raises(KeyboardInterrupt):
        training.save_checkpoint(path, newer, {"version": 2})
    monkeypatch.undo()
    tree, meta = training.load_checkpoint(path, sample_tree())
    assert meta == {"version": 1} and tree["count"] == 3
    assert os.listdir(tmp_path) == ["a.ckpt"]           # the temporary file was removed


def test_a_process_killed_mid_save_leaves_a_restorable_directory(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {ROOT!r})
        import numpy as np
        from jitgrad import training
        m = training.CheckpointManager({str(tmp_path)!r}, keep=3)
        m.save(1, {{"w": np.ones(3, np.float32)}}, {{"epoch": 1}})
        os.replace = lambda *a: os._exit(3)     # die after writing the temp file, before the rename
        m.save(2, {{"w": np.full(3, 2.0, np.float32)}}, {{"epoch": 2}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    names = os.listdir(tmp_path)
    assert "checkpoint_000001.ckpt" in names and any(n.startswith(".tmp-") for n in names)
    manager = training.CheckpointManager(str(tmp_path))
    assert manager.numbers() == [1]
    tree, meta, number = manager.restore({"w": np.zeros(3, F32)})
    assert number == 1 and meta["epoch"] == 1
    np.testing.assert_array_equal(tree["w"], 1.0)


def test_manager_keeps_the_newest_and_skips_damaged_ones(tmp_path):
    manager = training.CheckpointManager(str(tmp_path), keep=2)
    for i in range(1, 5):
        manager.save(i, {"x": np.full(2, i, F32)}, {"i": i})
    assert manager.numbers() == [3, 4]
    with open(manager.path(4), "wb") as f:
        f.write(b"garbage")
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        tree, meta, number = manager.restore({"x": np.zeros(2, F32)})
    assert number == 3 and meta == {"i": 3}
    assert training.CheckpointManager(str(tmp_path / "empty")).restore() is None


# ================================================================== the loop

def blobs(n=240, seed=0):
    """Three separable Gaussian blobs in 4 dimensions."""
    r = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int32) % 3
    centers = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], F32)
    x = centers[y] + r.normal(size=(n, 4)).astype(F32) * 0.5
    return x, y


def setup(lr=0.1, dropout=False, seed=0):
    model = nn.Sequential([nn.Dense(8), nn.relu] + ([nn.Dropout(0.2)] if dropout else []) + [nn.Dense(3)])
    opt = optim.sgd(lr, momentum=0.9)
    state = training.create_train_state(model, opt, random.key(seed), (4,))
    x, y = blobs()
    loader = data.DataLoader(x[:200], y[:200], batch_size=50, key=1)
    step = training.make_train_step(model, opt)
    evaluate = training.make_evaluate(model, x[200:], y[200:])
    return state, loader, step, evaluate


def test_fit_trains_and_records_history(tmp_path, capsys):
    state, loader, step, evaluate = setup()
    plot = str(tmp_path / "curves.png")
    result = training.fit(step, state, loader, epochs=4, evaluate=evaluate, plot_path=plot,
                          progress=True)
    h = result.history
    assert h["epoch"] == [1, 2, 3, 4] and h["steps"] == [4] * 4
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "time_s", "examples_per_s"} <= set(h)
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] > 0.9
    assert int(result.state.step) == 16
    with open(plot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "epoch 4/4" in out and "val_accuracy" in out and "examples/s" in out


def test_early_stopping_restores_the_best_state():
    state, loader, step, _ = setup()
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.4, 0.9])
    seen = []

    def evaluate(s):
        seen.append(s)
        return {"val_accuracy": next(scores)}
    result = training.fit(step, state, loader, epochs=6, evaluate=evaluate, progress=False, log=None,
                          early_stopping=training.EarlyStopping("val_accuracy", patience=3))
    assert result.stopped_early and result.best_epoch == 2
    assert result.history["epoch"] == [1, 2, 3, 4, 5]
    assert result.state is seen[1]


def test_nan_loss_stops_with_the_step_unless_asked_to_continue():
    state, loader, step, _ = setup()
    calls = []

    def poisoned(s, batch):
        calls.append(1)
        s, m = step(s, batch)
        return s, {**m, "loss": float("nan") if len(calls) == 6 else m["loss"]}
    with pytest.raises(training.NonFiniteLossError, match=r"loss is nan at step 6 \(epoch 2, batch 2 of 4\)"
                                                         r".*on_nan='continue'"):
        training.fit(poisoned, state, loader, epochs=3, progress=False, log=None)
    calls.clear()
    with pytest.warns(UserWarning, match="step 6"):
        result = training.fit(poisoned, state, loader, epochs=3, progress=False, log=None,
                              on_nan="continue")
    assert result.history["epoch"] == [1, 2, 3]


def test_resuming_repeats_an_uninterrupted_run(tmp_path):
    state, loader, step, evaluate = setup(dropout=True)
    straight = training.fit(step, state, loader, epochs=4, evaluate=evaluate, progress=False, log=None)

    state, loader, step, evaluate = setup(dropout=True)
    ckpt = str(tmp_path / "ckpt")
    first = training.fit(step, state, loader, epochs=2, evaluate=evaluate, progress=False, log=None,
                         checkpoint_dir=ckpt)
    assert first.history["epoch"] == [1, 2]
    # a new process would rebuild everything from scratch, then resume from the directory
    state, loader, step, evaluate = setup(dropout=True)
    logs = []
    resumed = training.fit(step, state, loader, epochs=4, evaluate=evaluate, progress=False,
                           log=logs.append, checkpoint_dir=ckpt)
    assert resumed.resumed_from == 2 and "resumed from" in logs[0]
    assert resumed.history["epoch"] == [1, 2, 3, 4]
    assert_same(resumed.state.params, straight.state.params)
    np.testing.assert_allclose(resumed.history["val_loss"], straight.history["val_loss"])
    assert int(resumed.state.step) == 16


def test_plot_history_without_matplotlib_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert training.plot_history({"epoch": [1], "loss": [1.0]}, str(tmp_path / "x.png")) is None
    assert not os.path.exists(tmp_path / "x.png")
