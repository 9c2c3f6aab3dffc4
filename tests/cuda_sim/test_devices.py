"""Devices, placement and transfers with the cuda backend (simulated)."""
import logging
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit
from jitgrad.backends.cuda.array import DeviceArrayImpl, DeviceMismatchError, TransferGuardError
from jitgrad.core.array import ArrayImpl


@pytest.fixture
def gpu():
    return jitgrad.devices("cuda")[0]


@pytest.fixture
def guard():
    """Set jax_transfer_guard for one test, restoring it afterwards."""
    before = jitgrad.config.jax_transfer_guard
    yield lambda mode: jitgrad.config.update("jax_transfer_guard", mode)
    jitgrad.config.update("jax_transfer_guard", before)


def test_devices(gpu):
    assert jitgrad.devices("cuda") == [gpu] == jitgrad.devices("gpu")
    assert gpu.platform == "cuda" and gpu.id == 0 and repr(gpu) == "CudaDevice(id=0)"
    assert jitgrad.devices("cpu")[0].platform == "cpu"
    assert jitgrad.device_count("cuda") == 1


def test_device_put_get(gpu):
    tree = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": (np.int32(3), 2.0)}
    on = jitgrad.device_put(tree, gpu)
    for leaf in jitgrad.tree.leaves(on):
        assert isinstance(leaf, DeviceArrayImpl)
        assert leaf.device == gpu and leaf.devices() == {gpu}
    assert on["b"][1].weak_type and on["b"][1].dtype == np.float32
    assert jitgrad.device_put(on, gpu)["a"] is on["a"]           # already there
    back = jitgrad.device_get(on)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert type(back["a"]) is np.ndarray
    host = jitgrad.device_put(on["a"], jitgrad.devices("cpu")[0])
    assert type(host) is ArrayImpl and host.device.platform == "cpu"
    assert jitgrad.device_put(np.ones(2), "cuda").device == gpu
    x = on["a"]
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert "device=cuda:0" in repr(x)
    assert float(on["b"][0]) == 3.0 and x.tolist()[1] == [3.0, 4.0, 5.0]
    restored = pickle.loads(pickle.dumps(x))
    np.testing.assert_array_equal(np.asarray(restored), tree["a"])
    assert x.block_until_ready() is x


def test_eager_ops_stay_on_device(gpu):
    x = jitgrad.device_put(np.arange(6, dtype=np.float32).reshape(2, 3), gpu)
    w = jitgrad.device_put(np.ones((3, 2), np.float32), gpu)
    results = [x + 1, x * x, jnp.sum(x, axis=1), x @ w, x[1], jnp.exp(x).T, -x, x > 2]
    for r in results:
        assert isinstance(r, DeviceArrayImpl) and r.device == gpu, type(r)
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(np.asarray(results[3]), v @ np.ones((3, 2)))
    np.testing.assert_allclose(np.asarray(results[4]), v[1])
    np.testing.assert_allclose(np.asarray(results[5]), np.exp(v).T, rtol=1e-6)
    assert (x + 1).weak_type is False


def test_platform_flag(gpu):
    before = jitgrad.config.jax_platform_name
    jitgrad.config.update("jax_platform_name", "cuda")
    try:
        out = jit(lambda a: a * 2)(np.ones(3, np.float32))
        assert isinstance(out, DeviceArrayImpl)
        assert jitgrad.devices() == [gpu] and jitgrad.default_backend() == "cuda"
    finally:
        jitgrad.config.update("jax_platform_name", before)


def test_platform_environment_variable():
    code = ("import numpy as np, jitgrad; from jitgrad import jit; "
            "out = jit(lambda a: a + 1)(np.ones(2, np.float32)); "
            "print(type(out).__name__, out.device, float(out[0]))")
    env = dict(os.environ, JITGRAD_PLATFORM="cuda", NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["DeviceArrayImpl", "cuda:0", "2.0"]


def test_device_array_to_host_executable_is_an_error(gpu):
    x = jitgrad.device_put(np.ones(3, np.float32), gpu)
    with pytest.raises(DeviceMismatchError, match="device_get"):
        jit(lambda a: a + 1, backend="reference")(x)


def test_transfer_guard(gpu, guard, caplog):
    w = jnp.ones((3,))                 # a jitgrad host array
    data = np.ones(3, np.float32)      # host input data
    f = jit(lambda a, b: a * b, backend="cuda")
    guard("disallow")
    f(data, 2.0)                       # numpy arrays and scalars are input data: always copied
    with pytest.raises(TransferGuardError, match="device_put"):
        f(w, data)
    guard("log")
    with caplog.at_level(logging.WARNING, logger="jitgrad"):
        f(w, data)
    assert "copied to the device on every call" in caplog.text
    guard("allow")
    np.testing.assert_allclose(np.asarray(f(jitgrad.device_put(w, gpu), data)), np.ones(3))
    with pytest.raises(ValueError, match="jax_transfer_guard"):
        jitgrad.config.update("jax_transfer_guard", "sometimes")


def test_generated_source_is_readable(gpu):
    f = jit(lambda x, w, b: jnp.maximum(x @ w + b, 0), backend="cuda")
    x = np.ones((4, 3), np.float32)
    f(x, np.ones((3, 2), np.float32), np.ones(2, np.float32))
    (entry,) = [e for k, e in f._cache.items()]
    src = entry.executable.source
    assert "def k0_dot_add_max" in src and "cuda.shared.array" in src and "def prog0(rt" in src


def test_eager_transforms_on_device_arrays(gpu, caplog):
    x = jitgrad.device_put(np.arange(4, dtype=np.float32), gpu)
    with caplog.at_level(logging.WARNING, logger="jitgrad"):
        g = jitgrad.grad(lambda v: jnp.sum(v ** 2 * jnp.sin(v)))(x)
        v = jitgrad.vmap(lambda a: a * 2 + 1)(x)
    assert caplog.text == ""     # grad's own host constants move silently
    assert isinstance(g, DeviceArrayImpl) and isinstance(v, DeviceArrayImpl)
    a = np.arange(4, dtype=np.float32)
    np.testing.assert_allclose(np.asarray(g), 2 * a * np.sin(a) + a ** 2 * np.cos(a), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(v), a * 2 + 1)


def test_group_that_cannot_be_generated_runs_on_host(monkeypatch, caplog):
    """The lowering's safety net: a group it cannot generate runs on the host, loudly."""
    import jitgrad.backends.cuda.lowering as lowering

    def refuse(*args, **kwargs):
        raise lowering.UnsupportedOnCuda("refused for this test")
    monkeypatch.setattr(lowering, "emit_phase", refuse)
    f = jit(lambda a: jnp.exp(a) + 1, backend="cuda")
    with caplog.at_level(logging.WARNING, logger="jitgrad"):
        out = f(np.zeros(3, np.float32))
    assert "runs on the host (refused for this test)" in caplog.text
    assert isinstance(out, DeviceArrayImpl)
    np.testing.assert_allclose(np.asarray(out), [2, 2, 2])
