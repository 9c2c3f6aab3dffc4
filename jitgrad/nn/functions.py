"""Activation functions and friends, with ``jax.nn``'s names and semantics.

All are compositions of ``jitgrad.numpy``/``jitgrad.lax`` operations, so they work
eagerly, under ``jit``, ``grad`` and ``vmap``, and fuse into the surrounding kernels.
Where JAX pins a derivative at a kink (``relu'(0) = 0``), the ``jnp.where`` form used here
gives the same value.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import lax
from .. import numpy as jnp
from ..core import dtypes
from ..core.errors import DTypeError, ShapeError

Array = Any
Axis = int | Sequence[int] | None


def _float(x) -> Array:
    """``x`` as a jitgrad array of a floating-point dtype (ints are promoted)."""
    x = jnp.asarray(x)
    return x if dtypes.is_float(x.dtype) else x.astype(dtypes.default_float_dtype())


# ------------------------------------------------------------------ elementwise activations

def relu(x: Array) -> Array:
    """``max(x, 0)``; its derivative at 0 is 0, as in JAX."""
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, jnp.zeros_like(x))


def relu6(x: Array) -> Array:
    """``min(max(x, 0), 6)``; derivative 0 at both kinks."""
    x = jnp.asarray(x)
    return jnp.where(x > 0, jnp.where(x < 6, x, jnp.full_like(x, 6)), jnp.zeros_like(x))


def leaky_relu(x: Array, negative_slope: float = 1e-2) -> Array:
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise."""
    x = jnp.asarray(x)
    return jnp.where(x >= 0, x, negative_slope * x)


def elu(x: Array, alpha: float = 1.0) -> Array:
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    x = _float(x)
    safe = jnp.where(x > 0, jnp.zeros_like(x), x)   # keeps exp from overflowing in the unused branch
    return jnp.where(x > 0, x, alpha * jnp.expm1(safe))


def celu(x: Array, alpha: float = 1.0) -> Array:
    """Continuously differentiable ELU: ``max(x, 0) + alpha * min(expm1(x / alpha), 0)``."""
    x = _float(x)
    return jnp.maximum(x, 0) + alpha * jnp.minimum(jnp.expm1(x / alpha), 0)


def selu(x: Array) -> Array:
    """Scaled ELU with the self-normalising constants of Klambauer et al. (2017)."""
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    return scale * elu(x, alpha)


def gelu(x: Array, approximate: bool = True) -> Array:
    """Gaussian error linear unit, ``x * Phi(x)``.

    ``approximate=True`` (JAX's default) uses the tanh form
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``; ``False`` the exact erf form.
    """
    x = _float(x)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        return 0.5 * x * (1.0 + jnp.tanh(c * (x + 0.044715 * (x * x * x))))
    return 0.5 * x * (1.0 + lax.erf(x * (1.0 / math.sqrt(2.0))))


def sigmoid(x: Array) -> Array:
    """The logistic function ``1 / (1 + exp(-x))`` (stable in both tails)."""
    return lax.logistic(_float(x))


def log_sigmoid(x: Array) -> Array:
    """``log(sigmoid(x)) = -softplus(-x)``, without overflow."""
    return -softplus(-_float(x))


def softplus(x: Array) -> Array:
    """``log(1 + exp(x))`` without overflow; its derivative is ``sigmoid(x)`` everywhere
    (0.5 at 0). Each branch sees only the inputs it is used for, so neither overflows."""
    x = _float(x)
    zero = jnp.zeros_like(x)
    pos = jnp.where(x > 0, x, zero)
    neg = jnp.where(x > 0, zero, x)
    return jnp.where(x > 0, pos + jnp.log1p(jnp.exp(-pos)), jnp.log1p(jnp.exp(neg)))


def soft_sign(x: Array) -> Array:
    """``x / (|x| + 1)``."""
    x = _float(x)
    return x / (jnp.abs(x) + 1)


def silu(x: Array) -> Array:
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``."""
    x = _float(x)
    return x * sigmoid(x)


swish = silu


def hard_tanh(x: Array) -> Array:
    """``x`` clipped to [-1, 1]."""
    x = jnp.asarray(x)
    return jnp.where(x > 1, jnp.ones_like(x), jnp.where(x < -1, -jnp.ones_like(x), x))


def tanh(x: Array) -> Array:
    """Hyperbolic tangent (``jnp.tanh``)."""
    return jnp.tanh(x)


# ------------------------------------------------------------------ normalisers along an axis

def logsumexp(a: Array, axis: Axis = None, b: Array | None = None, keepdims: bool = False,
              return_sign: bool = False, where: Array | None = None) -> Array:
    """``log(sum(b * exp(a), axis))`` without overflow (``jax.nn.logsumexp``).

    The maximum is subtracted first (and held constant for differentiation, so the
    gradient is the softmax); entries masked out by ``where`` do not count, and an
    all-masked or empty reduction gives ``-inf``. ``b`` scales the terms; with
    ``return_sign=True`` the result is ``(log|sum|, sign(sum))``.
    """
    a = _float(a)
    if b is not None:
        a, b = jnp.broadcast_arrays(a, jnp.asarray(b, dtype=a.dtype))
    amax = jnp.max(a, axis=axis, keepdims=True, where=where, initial=-jnp.inf)
    amax = lax.stop_gradient(jnp.where(jnp.isfinite(amax), amax, jnp.zeros_like(amax)))
    terms = jnp.exp(a - amax)
    if b is not None:
        terms = terms * b
    total = jnp.sum(terms, axis=axis, keepdims=True, where=where)
    sign = jnp.sign(total)
    out = jnp.log(jnp.abs(total) if (return_sign or b is not None) else total) + amax
    if not keepdims:
        out = _squeeze(out, axis, a.ndim)
        sign = _squeeze(sign, axis, a.ndim)
    if return_sign:
        return out, sign
    if b is not None:
        out = jnp.where(sign < 0, jnp.full_like(out, jnp.nan), out)
    return out


def _squeeze(x, axis, ndim):
    if axis is None:
        return jnp.reshape(x, ())
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return jnp.squeeze(x, tuple(a % ndim for a in axes))


def log_softmax(x: Array, axis: Axis = -1, where: Array | None = None) -> Array:
    """``x - logsumexp(x, axis)``: log-probabilities, stable for large logits.

    Masked-out entries (``where`` False) get ``-inf``.
    """
    x = _float(x)
    x_max = jnp.max(x, axis=axis, keepdims=True, where=where, initial=-jnp.inf)
    x_max = lax.stop_gradient(jnp.where(jnp.isfinite(x_max), x_max, jnp.zeros_like(x_max)))
    shifted = x - x_max
    total = jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True, where=where)
    out = shifted - jnp.log(total)
    if where is not None:
        out = jnp.where(where, out, jnp.full_like(out, -jnp.inf))
    return out


def softmax(x: Array, axis: Axis = -1, where: Array | None = None) -> Array:
    """``exp(x) / sum(exp(x), axis)``, computed after subtracting the maximum.

    Masked-out entries (``where`` False) get probability 0.
    """
    x = _float(x)
    x_max = jnp.max(x, axis=axis, keepdims=True, where=where, initial=-jnp.inf)
    x_max = lax.stop_gradient(jnp.where(jnp.isfinite(x_max), x_max, jnp.zeros_like(x_max)))
    e = jnp.exp(x - x_max)
    if where is not None:
        e = jnp.where(where, e, jnp.zeros_like(e))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def standardize(x: Array, axis: Axis = -1, epsilon: float = 1e-5,
                mean: Array | None = None, variance: Array | None = None) -> Array:
    """``(x - mean) / sqrt(variance + epsilon)`` along ``axis``."""
    x = _float(x)
    if mean is None:
        mean = jnp.mean(x, axis=axis, keepdims=True)
    if variance is None:
        variance = jnp.mean(jnp.square(x - mean), axis=axis, keepdims=True)
    return (x - mean) * lax.rsqrt(variance + epsilon)


# ------------------------------------------------------------------ one_hot

def one_hot(x: Array, num_classes: int, *, dtype=None, axis: int = -1) -> Array:
    """One-hot encoding of integer ``x`` along a new ``axis`` of size ``num_classes``.

    Out-of-range indices (negative or ``>= num_classes``) give an all-zero row, as in JAX.
    """
    x = jnp.asarray(x)
    if not (dtypes.is_int(x.dtype) or dtypes.is_bool(x.dtype)):
        raise DTypeError(f"one_hot: x must hold integer class indices, got {x.aval.str_short()}",
                         hint="Convert labels with .astype(jnp.int32) first.")
    num_classes = int(num_classes)
    dtype = dtypes.default_float_dtype() if dtype is None else dtypes.canonicalize_dtype(dtype)
    ndim = x.ndim + 1
    if not -ndim <= axis < ndim:
        raise ShapeError(f"one_hot: axis {axis} is out of range for a result of rank {ndim}")
    axis = axis % ndim
    out_shape = x.shape[:axis] + (num_classes,) + x.shape[axis:]
    classes = lax.broadcasted_iota(x.dtype if dtypes.is_int(x.dtype) else np.int32, out_shape, axis)
    expanded = jnp.expand_dims(x, axis)
    return (expanded == classes).astype(dtype)
