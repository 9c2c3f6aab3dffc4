"""Parameter initializers, as ``jax.nn.initializers``: ``init(key, shape, dtype) -> array``.

Each public name is either an initializer (``zeros``, ``ones``) or a factory returning one
(``normal(stddev)``, ``glorot_uniform()``, ``variance_scaling(...)``), exactly as in JAX::

    w = initializers.glorot_uniform()(key, (784, 256))
    b = initializers.zeros(key, (256,))

Fans follow JAX's convention: ``in_axis=-2`` and ``out_axis=-1`` by default (a Dense kernel
``(in, out)``; a HWIO conv kernel), every other axis is receptive field. jitgrad's conv
layers keep OIHW kernels and pass ``in_axis=1, out_axis=0``.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from .. import numpy as jnp
from .. import random
from ..core import dtypes

Array = Any
Initializer = Callable[..., Array]   # (key, shape, dtype=float) -> Array

# The standard deviation of a standard normal truncated to (-2, 2).
_TRUNCATED_STDDEV = 0.87962566103423978


def _dtype(dtype) -> np.dtype:
    return dtypes.default_float_dtype() if dtype is None or dtype is float else \
        dtypes.canonicalize_dtype(dtype)


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


def zeros(key, shape: Sequence[int], dtype=None) -> Array:
    """An array of zeros (the key is ignored)."""
    return jnp.zeros(_shape(shape), _dtype(dtype))


def ones(key, shape: Sequence[int], dtype=None) -> Array:
    """An array of ones (the key is ignored)."""
    return jnp.ones(_shape(shape), _dtype(dtype))


def constant(value, dtype=None) -> Initializer:
    """An initializer filling every entry with ``value``."""
    def init(key, shape, dtype=dtype):
        return jnp.full(_shape(shape), value, _dtype(dtype))
    return init


def normal(stddev: float = 1e-2, dtype=None) -> Initializer:
    """Normal entries with mean 0 and standard deviation ``stddev``."""
    def init(key, shape, dtype=dtype):
        dt = _dtype(dtype)
        return random.normal(key, _shape(shape), dt) * np.asarray(stddev, dt)
    return init


def uniform(scale: float = 1e-2, dtype=None) -> Initializer:
    """Uniform entries in ``[0, scale)`` (JAX's definition)."""
    def init(key, shape, dtype=dtype):
        dt = _dtype(dtype)
        return random.uniform(key, _shape(shape), dt) * np.asarray(scale, dt)
    return init


def truncated_normal(stddev: float = 1e-2, dtype=None, lower: float = -2.0,
                     upper: float = 2.0) -> Initializer:
    """Normal entries truncated to ``[lower, upper]`` standard deviations, scaled by ``stddev``."""
    def init(key, shape, dtype=dtype):
        dt = _dtype(dtype)
        return random.truncated_normal(key, lower, upper, _shape(shape), dt) * np.asarray(stddev, dt)
    return init


def compute_fans(shape: Sequence[int], in_axis: int | Sequence[int] = -2,
                 out_axis: int | Sequence[int] = -1,
                 batch_axis: int | Sequence[int] = ()) -> tuple[float, float]:
    """``(fan_in, fan_out)``: the in/out sizes times the receptive field (other axes)."""
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(f"variance scaling needs a shape of rank >= 2 to find its fans, "
                         f"got {shape}; use normal()/zeros for vectors such as biases")

    def size(axes):
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        return math.prod(shape[a] for a in axes)

    in_size, out_size, batch_size = size(in_axis), size(out_axis), size(batch_axis)
    receptive = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive, out_size * receptive


def variance_scaling(scale: float, mode: str, distribution: str,
                     in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
                     batch_axis: Sequence[int] = (), dtype=None) -> Initializer:
    """Entries with variance ``scale / n``, where n is fan_in, fan_out or their average.

    ``distribution``: ``"truncated_normal"`` (truncated to 2 standard deviations and
    rescaled to keep the variance), ``"normal"`` or ``"uniform"`` (on
    ``[-sqrt(3 var), sqrt(3 var)]``).
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"variance_scaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError("variance_scaling: distribution must be truncated_normal, normal or "
                         f"uniform, got {distribution!r}")

    def init(key, shape, dtype=dtype):
        dt = _dtype(dtype)
        shape = _shape(shape)
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        denominator = {"fan_in": fan_in, "fan_out": fan_out,
                       "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / denominator
        if distribution == "truncated_normal":
            stddev = np.asarray(math.sqrt(variance) / _TRUNCATED_STDDEV, dt)
            return random.truncated_normal(key, -2, 2, shape, dt) * stddev
        if distribution == "normal":
            return random.normal(key, shape, dt) * np.asarray(math.sqrt(variance), dt)
        return random.uniform(key, shape, dt, -1.0) * np.asarray(math.sqrt(3 * variance), dt)
    return init


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> Initializer:
    """Glorot/Xavier uniform: variance ``1 / fan_avg``."""
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> Initializer:
    """Glorot/Xavier normal (truncated): variance ``1 / fan_avg``."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> Initializer:
    """LeCun uniform: variance ``1 / fan_in``."""
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> Initializer:
    """LeCun normal (truncated): variance ``1 / fan_in``."""
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> Initializer:
    """He/Kaiming uniform: variance ``2 / fan_in`` (for ReLU networks)."""
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> Initializer:
    """He/Kaiming normal (truncated): variance ``2 / fan_in``."""
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal

__all__ = [
    "compute_fans", "constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
    "kaiming_normal", "kaiming_uniform", "lecun_normal", "lecun_uniform", "normal", "ones",
    "truncated_normal", "uniform", "variance_scaling", "xavier_normal", "xavier_uniform", "zeros",
]
