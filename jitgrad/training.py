"""``jitgrad.training``: the common training loop, checkpoints, and learning curves.

The loop is ``fit``: it calls *your* (usually jitted) step function on every batch,
shows a progress bar with the loss and throughput (tqdm), evaluates after each epoch,
keeps a history, stops early when a validation metric stops improving, saves resumable
checkpoints and plots the learning curves::

    state = training.create_train_state(model, optim.adam(1e-3), key, input_shape=(64,))
    step = training.make_train_step(model, optimizer)          # jitted (state, batch) -> ...
    evaluate = training.make_evaluate(model, x_val, y_val)      # state -> {"val_loss", ...}
    result = training.fit(step, state, loader, epochs=20, evaluate=evaluate,
                          early_stopping=training.EarlyStopping("val_accuracy", patience=5),
                          checkpoint_dir="ckpt", plot_path="curves.png")

Nothing here is required: a hand-written ``for`` loop over ``DataLoader`` batches calling
``value_and_grad`` and an optimiser works just as well (see ``examples/``).

Checkpoints are single files (numpy ``.npz``: one entry per array leaf, plus a JSON header
with the tree structure, shapes, dtypes, user metadata and a SHA-256 of all of it). They
are written to a temporary file in the same directory, flushed and fsynced, then renamed
over the old one (``os.replace``), so a crash mid-save leaves the previous checkpoint
intact; loading verifies the checksum and refuses damaged files.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np

from . import nn, optim, random
from . import numpy as jnp
from .api import jit as _jit
from .core.array import Array, ArrayImpl
from .core.pytree import (keystr, tree_flatten, tree_flatten_with_path, tree_unflatten)
from .transforms.ad import value_and_grad

PyTree = Any
FORMAT = "jitgrad-checkpoint"
FORMAT_VERSION = 1


# ================================================================== train state and steps

class TrainState(NamedTuple):
    """Everything a training run updates: a pytree, so it passes through ``jit`` whole."""

    params: PyTree        # trainable parameters
    model_state: PyTree   # non-trainable layer state (BatchNorm statistics)
    opt_state: PyTree     # the optimiser's state
    step: Any             # int32 scalar: updates done so far
    key: Any              # PRNG key; step ``i`` uses ``fold_in(key, i)`` (dropout)


def create_train_state(model: nn.Layer, optimizer: optim.GradientTransformation, key,
                       input_shape) -> TrainState:
    """Initialise ``model`` for per-example ``input_shape`` and ``optimizer`` for its params."""
    init_key, train_key = random.split(key)
    params, model_state, _ = model.init(init_key, input_shape)
    return TrainState(params, model_state, optimizer.init(params), jnp.zeros((), np.int32),
                      train_key)


def classification_loss(logits, labels):
    """Mean softmax cross-entropy with integer labels (the default loss of the helpers)."""
    return nn.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits, labels):
    """The fraction of rows whose largest logit is at the label."""
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(np.float32))


def make_train_step(model: nn.Layer, optimizer: optim.GradientTransformation,
                    loss_fn: Callable = classification_loss, *, jit: bool = True,
                    with_accuracy: bool = True) -> Callable:
    """A training step ``(state, (x, y)) -> (state, {"loss", "accuracy"})``.

    It differentiates ``loss_fn(model outputs, y)`` with respect to the params (the model
    runs with ``train=True`` and the step's PRNG key), applies the optimiser, and returns
    the new state and the batch's metrics. Jitted unless ``jit=False``.
    """
    def step(state: TrainState, batch):
        x, y = batch
        # A fresh key per step for dropout-like layers (skipped when the model needs none).
        key = random.fold_in(state.key, state.step) if getattr(model, "uses_key", True) else None

        def objective(params):
            out, model_state = model.apply(params, state.model_state, x, key=key, train=True)
            # Metrics are computed here and returned as aux: the outputs themselves stay
            # inside the differentiated function.
            metrics = {"accuracy": accuracy(out, y)} if with_accuracy else {}
            return loss_fn(out, y), (metrics, model_state)

        (loss, (metrics, model_state)), grads = value_and_grad(objective, has_aux=True)(
            state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        metrics = {"loss": loss, **metrics}
        return TrainState(params, model_state, opt_state, state.step + 1, state.key), metrics
    step.__name__ = "train_step"
    return _jit(step) if jit else step


def make_evaluate(model: nn.Layer, x, y, *, batch_size: int = 1000,
                  loss_fn: Callable = classification_loss, prefix: str = "val_",
                  with_accuracy: bool = True) -> Callable[[TrainState], dict]:
    """``evaluate(state) -> {"val_loss": ..., "val_accuracy": ...}`` over ``(x, y)`` in batches
    (the model in evaluation mode), weighted by batch size."""
    x, y = np.asarray(x), np.asarray(y)

    @_jit
    def batch_metrics(params, model_state, xb, yb):
        out, _ = model.apply(params, model_state, xb, train=False)
        m = {"loss": loss_fn(out, yb)}
        if with_accuracy:
            m["accuracy"] = accuracy(out, yb)
        return m

    def evaluate(state: TrainState) -> dict:
        totals: dict[str, float] = {}
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            for k, v in batch_metrics(state.params, state.model_state, xb, yb).items():
                totals[k] = totals.get(k, 0.0) + float(v) * len(xb)
        return {prefix + k: v / len(x) for k, v in totals.items()}
    return evaluate


# ================================================================== checkpoints

class CheckpointError(Exception):
    """A checkpoint that is missing, damaged, or does not fit the tree it is loaded into."""


def _encode_tree(tree, counter: list) -> Any:
    """The structure of ``tree`` as JSON (leaves become their index)."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return {"namedtuple": type(tree).__name__, "fields": list(tree._fields),
                "children": [_encode_tree(c, counter) for c in tree]}
    if isinstance(tree, (list, tuple)):
        return {"list" if isinstance(tree, list) else "tuple":
                [_encode_tree(c, counter) for c in tree]}
    if isinstance(tree, dict):
        keys = sorted(tree)
        if not all(isinstance(k, str) for k in keys):
            raise CheckpointError(f"checkpoint trees need string dict keys, got {keys}")
        return {"dict": {k: _encode_tree(tree[k], counter) for k in keys}}
    if tree is None:
        return {"none": None}
    counter[0] += 1
    return {"leaf": counter[0] - 1}


def _decode_tree(node, leaves: list) -> Any:
    if "leaf" in node:
        return leaves[node["leaf"]]
    if "none" in node:
        return None
    if "dict" in node:
        return {k: _decode_tree(v, leaves) for k, v in node["dict"].items()}
    if "list" in node:
        return [_decode_tree(c, leaves) for c in node["list"]]
    if "tuple" in node:
        return tuple(_decode_tree(c, leaves) for c in node["tuple"])
    if "namedtuple" in node:   # rebuilt as a dict: pass target= to get the class back
        return {f: _decode_tree(c, leaves) for f, c in zip(node["fields"], node["children"])}
    raise CheckpointError(f"unknown node in checkpoint structure: {node}")


def _digest(header_without_sum: dict, arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(header_without_sum, sort_keys=True).encode())
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """Write a file so that ``path`` holds either the old or the complete new content.

    ``write(f)`` fills a temporary file in the same directory; it is flushed, fsynced and
    renamed over ``path`` with ``os.replace``, then the directory is fsynced.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def save_checkpoint(path: str, tree: PyTree, metadata: dict | None = None) -> str:
    """Save a pytree of arrays (and JSON-able ``metadata``) to ``path`` atomically."""
    counter = [0]
    structure = _encode_tree(tree, counter)
    path_leaves, _ = tree_flatten_with_path(tree)
    arrays = [np.asarray(leaf) for _, leaf in path_leaves]
    header = {"format": FORMAT, "version": FORMAT_VERSION, "structure": structure,
              "paths": [keystr(p) for p, _ in path_leaves],
              "leaves": [{"shape": list(a.shape), "dtype": a.dtype.str} for a in arrays],
              "metadata": metadata or {}}
    try:
        json.dumps(header["metadata"])
    except TypeError as e:
        raise CheckpointError(f"checkpoint metadata must be JSON-serialisable: {e}") from None
    header["sha256"] = _digest(header, arrays)
    entries = {f"leaf_{i:05d}": a for i, a in enumerate(arrays)}
    entries["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    atomic_write(path, lambda f: np.savez(f, **entries))
    return path


def _read(path: str) -> tuple[dict, list[np.ndarray]]:
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode())
            arrays = [z[f"leaf_{i:05d}"] for i in range(len(header["leaves"]))]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError,
            json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} is damaged or not a jitgrad checkpoint "
                              f"({type(e).__name__}: {e})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jitgrad checkpoint")
    expected = header.pop("sha256", None)
    if expected != _digest(header, arrays):
        raise CheckpointError(f"checkpoint {path} is damaged: its checksum does not match "
                              "its contents")
    return header, arrays


def load_checkpoint(path: str, target: PyTree = None) -> tuple[PyTree, dict]:
    """Load ``(tree, metadata)`` from ``path``, verifying its checksum.

    With ``target`` (a tree of the same structure, e.g. a freshly initialised state) the
    result has ``target``'s exact structure (namedtuples included), and every leaf's path,
    shape and dtype must match; without it, dicts/lists/tuples are rebuilt and namedtuples
    come back as dicts. Array leaves come back as jitgrad arrays.
    """
    header, arrays = _read(path)
    leaves = [ArrayImpl(np.array(a)) for a in arrays]
    if target is None:
        return _decode_tree(header["structure"], leaves), header["metadata"]
    t_leaves, treedef = tree_flatten_with_path(target)
    saved_paths = header["paths"]
    if len(t_leaves) != len(saved_paths):
        raise CheckpointError(f"checkpoint {path} holds {len(saved_paths)} arrays but the target "
                              f"tree has {len(t_leaves)}")
    out = []
    for (p, t), saved, a in zip(t_leaves, saved_paths, leaves):
        where = keystr(p)
        if where != saved:
            raise CheckpointError(f"checkpoint {path} does not fit the target: it has {saved} "
                                  f"where the target has {where}")
        t_arr = np.asarray(t)
        if t_arr.shape != a.shape or t_arr.dtype != a.dtype:
            raise CheckpointError(f"checkpoint {path}: {where} is {a.dtype}{list(a.shape)} but "
                                  f"the target expects {t_arr.dtype}{list(t_arr.shape)}")
        out.append(type(t)(a.item()) if isinstance(t, (int, float, bool)) else a)
    _, plain_def = tree_flatten(target)
    return tree_unflatten(plain_def, out), header["metadata"]


class CheckpointManager:
    """Numbered checkpoints in a directory (``checkpoint_000003.ckpt``), keeping the newest
    ``keep``; ``restore`` loads the newest one that is intact."""

    _PATTERN = re.compile(r"^checkpoint_(\d+)\.ckpt$")

    def __init__(self, directory: str, keep: int = 2):
        self.directory = directory
        self.keep = max(1, int(keep))

    def path(self, number: int) -> str:
        return os.path.join(self.directory, f"checkpoint_{number:06d}.ckpt")

    def numbers(self) -> list[int]:
        """The numbers of the saved checkpoints, oldest first (temporary files excluded)."""
        if not os.path.isdir(self.directory):
            return []
        found = [self._PATTERN.match(n) for n in os.listdir(self.directory)]
        return sorted(int(m.group(1)) for m in found if m)

    def save(self, number: int, tree: PyTree, metadata: dict | None = None) -> str:
        path = save_checkpoint(self.path(number), tree, metadata)
        for old in self.numbers()[:-self.keep]:
            try:
                os.unlink(self.path(old))
            except OSError:
                pass
        return path

    def restore(self, target: PyTree = None) -> tuple[PyTree, dict, int] | None:
        """``(tree, metadata, number)`` of the newest intact checkpoint, or None if none."""
        for number in reversed(self.numbers()):
            try:
                tree, meta = load_checkpoint(self.path(number), target)
                return tree, meta, number
            except CheckpointError as e:
                warnings.warn(f"skipping checkpoint: {e}")
        return None


# ================================================================== learning curves

def plot_history(history: dict, path: str) -> str | None:
    """Write the loss and accuracy curves of ``history`` to a PNG; None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    epochs = history.get("epoch", [])
    if not epochs:
        return None
    panels = [("loss", [k for k in history if k.endswith("loss")]),
              ("accuracy", [k for k in history if k.endswith("accuracy")])]
    panels = [(title, keys) for title, keys in panels if keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels):
        for k in keys:
            ax.plot(epochs, history[k], marker="o", markersize=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path


# ================================================================== threads

def limit_blas_threads(n: int = 1) -> bool:
    """Limit numpy's BLAS to ``n`` threads for the rest of the process (needs threadpoolctl).

    Small models make small matmuls, for which BLAS threads cost more than they give: on
    a busy 2-core machine the MLP example ran 7x slower with two spinning BLAS threads.
    Returns False (and changes nothing) when threadpoolctl is not installed.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(limits=int(n), user_api="blas")
    return True


# ================================================================== the loop

class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step."""


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` (a key of the evaluation metrics) has not improved by more than
    ``min_delta`` for ``patience`` epochs; ``mode="max"`` for accuracies, ``"min"`` for
    losses. With ``restore_best`` the returned state is the best epoch's."""

    monitor: str = "val_loss"
    mode: str = "auto"
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self):
        if self.mode == "auto":
            self.mode = "max" if "acc" in self.monitor else "min"
        if self.mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min', 'max' or 'auto', got {self.mode!r}")

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best + self.min_delta if self.mode == "max" else value < best - self.min_delta


@dataclass
class FitResult:
    """What ``fit`` returns."""

    state: Any                      # the final state (the best one with restore_best)
    history: dict = field(default_factory=dict)
    stopped_early: bool = False
    best_epoch: int | None = None   # 1-based, when early stopping monitored a metric
    resumed_from: int | None = None  # the epoch a checkpoint was resumed after


def _batch_size(batch) -> int:
    leaves, _ = tree_flatten(batch)
    return int(np.shape(leaves[0])[0]) if leaves and np.ndim(leaves[0]) else 1


def _epoch_batches(data, epoch: int) -> Iterable:
    if hasattr(data, "epoch"):
        return data.epoch(epoch)
    if callable(data):
        return data(epoch)
    return data


def _progress(iterable, total, desc, enabled: bool):
    if not enabled:
        return iterable, None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable, None
    bar = tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True,
               file=sys.stderr)
    return bar, bar


def fit(train_step: Callable, state: Any, train_data: Any, *, epochs: int,
        evaluate: Callable[[Any], dict] | None = None,
        early_stopping: EarlyStopping | None = None, checkpoint_dir: str | None = None,
        keep_checkpoints: int = 2, resume: bool = True, plot_path: str | None = None,
        progress: bool = True, on_nan: str = "stop",
        log: Callable[[str], None] | None = print) -> FitResult:
    """Train for ``epochs`` epochs; returns a ``FitResult`` (state, history, ...).

    * ``train_step(state, batch) -> (state, metrics)``; ``metrics["loss"]`` is required,
      other scalar metrics (``"accuracy"``) are averaged per epoch into the history.
    * ``train_data``: a ``DataLoader`` (epoch ``e`` uses ``train_data.epoch(e)``), a function
      ``epoch -> iterable of batches``, or an iterable re-read every epoch.
    * ``evaluate(state) -> dict`` of validation metrics after each epoch.
    * ``early_stopping``: an ``EarlyStopping`` on one of those metrics.
    * ``checkpoint_dir``: save ``{"state", "best_state"}`` and the history after every epoch;
      with ``resume=True`` an existing checkpoint there is loaded and training continues
      with the next epoch (a resumed run repeats exactly what an uninterrupted one does
      when the data order and the step's randomness depend only on the epoch and step).
    * ``plot_path``: write the learning curves (PNG) at the end if matplotlib is installed.
    * ``on_nan``: ``"stop"`` raises ``NonFiniteLossError`` naming the step when the loss is
      NaN or infinite; ``"continue"`` warns once and goes on.
    * ``progress``: a tqdm bar per epoch with the running loss and examples per second.
    """
    if on_nan not in ("stop", "continue"):
        raise ValueError(f"fit: on_nan must be 'stop' or 'continue', got {on_nan!r}")
    say = log or (lambda s: None)
    history: dict[str, list] = {}
    start_epoch, best_value, best_epoch, bad_epochs = 0, None, None, 0
    best_state = state
    manager = CheckpointManager(checkpoint_dir, keep_checkpoints) if checkpoint_dir else None
    resumed_from = None
    if manager is not None and resume:
        restored = manager.restore({"state": state, "best_state": state})
        if restored is not None:
            tree, meta, number = restored
            state, best_state = tree["state"], tree["best_state"]
            history = {k: list(v) for k, v in meta.get("history", {}).items()}
            start_epoch = int(meta["epoch"])
            best_value, best_epoch = meta.get("best_value"), meta.get("best_epoch")
            bad_epochs = int(meta.get("bad_epochs", 0))
            resumed_from = start_epoch
            say(f"resumed from {manager.path(number)} after epoch {start_epoch}")
            if meta.get("stopped_early"):
                return FitResult(best_state if early_stopping and early_stopping.restore_best
                                 else state, history, True, best_epoch, resumed_from)

    global_step = sum(history.get("steps", []))
    warned_nan = False
    stopped_early = False
    for epoch in range(start_epoch, epochs):
        batches = _epoch_batches(train_data, epoch)
        total = len(batches) if hasattr(batches, "__len__") else None
        iterator, bar = _progress(batches, total, f"epoch {epoch + 1}/{epochs}", progress)
        sums: dict[str, float] = {}
        n_examples, n_steps = 0, 0
        t0 = time.perf_counter()
        try:
            for batch_index, batch in enumerate(iterator):
                state, metrics = train_step(state, batch)
                global_step += 1
                n_steps += 1
                loss = float(metrics["loss"])
                if not math.isfinite(loss):
                    message = (f"the training loss is {loss} at step {global_step} (epoch "
                               f"{epoch + 1}, batch {batch_index + 1}"
                               + (f" of {total}" if total else "") + ")")
                    if on_nan == "stop":
                        raise NonFiniteLossError(
                            message + "; training stopped. Lower the learning rate, clip the "
                            "gradients, or check the data for NaN/inf; pass on_nan='continue' "
                            "to keep training anyway.")
                    if not warned_nan:
                        warnings.warn(message + "; continuing because on_nan='continue'")
                        warned_nan = True
                size = _batch_size(batch)
                n_examples += size
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * size
                if bar is not None:
                    elapsed = time.perf_counter() - t0
                    bar.set_postfix(loss=f"{sums['loss'] / n_examples:.4f}",
                                    ex_s=f"{n_examples / max(elapsed, 1e-9):.0f}")
        finally:
            if bar is not None:
                bar.close()
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "steps": n_steps, "time_s": seconds,
               "examples_per_s": n_examples / max(seconds, 1e-9)}
        row.update({k: v / max(n_examples, 1) for k, v in sums.items()})
        if evaluate is not None:
            row.update({k: float(v) for k, v in evaluate(state).items()})
        for k, v in row.items():
            history.setdefault(k, []).append(v)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items()
                          if k not in ("epoch", "steps", "time_s", "examples_per_s"))
        say(f"epoch {epoch + 1}/{epochs}  {shown}  ({seconds:.2f} s, "
            f"{row['examples_per_s']:.0f} examples/s)")

        if early_stopping is None:
            best_state = state
        else:
            if early_stopping.monitor not in row:
                raise KeyError(f"EarlyStopping monitors {early_stopping.monitor!r}, which is not "
                               f"among the epoch's metrics {sorted(row)}")
            value = row[early_stopping.monitor]
            if early_stopping.improved(value, best_value):
                best_value, best_epoch, bad_epochs, best_state = value, epoch + 1, 0, state
            else:
                bad_epochs += 1
                stopped_early = bad_epochs >= early_stopping.patience
        if manager is not None:
            manager.save(epoch + 1, {"state": state, "best_state": best_state},
                         {"epoch": epoch + 1, "history": history, "best_value": best_value,
                          "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                          "stopped_early": stopped_early})
        if stopped_early:
            say(f"early stopping: {early_stopping.monitor} has not improved for "
                f"{early_stopping.patience} epochs (best {best_value:.4f} at epoch {best_epoch})")
            break
    if plot_path is not None:
        plot_history(history, plot_path)
    final = best_state if (early_stopping is not None and early_stopping.restore_best) else state
    return FitResult(final, history, stopped_early, best_epoch, resumed_from)


__all__ = [
    "CheckpointError", "CheckpointManager", "EarlyStopping", "FitResult", "NonFiniteLossError",
    "TrainState", "accuracy", "atomic_write", "classification_loss", "create_train_state",
    "fit", "limit_blas_threads", "load_checkpoint", "make_evaluate", "make_train_step",
    "plot_history", "save_checkpoint",
]
