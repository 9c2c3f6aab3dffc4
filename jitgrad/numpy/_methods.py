"""Operators and methods of ``jitgrad.Array`` (shared by concrete arrays and tracers).

They are attached here, not in the core, because they are numpy semantics: the core
defines the array type, ``jitgrad.numpy`` defines what ``+`` and ``.sum()`` mean.
"""
from __future__ import annotations

import numpy as np

from ..core.array import Array
from . import indexing, linalg_ops, reductions, shapes, ufuncs
from .scalar_types import canonical_dtype_arg


def _swap(fn):
    return lambda self, other: fn(other, self)


def _astype(self, dtype, copy=False, device=None):
    """The array converted to ``dtype`` (float -> int truncates toward zero)."""
    from .. import lax
    return lax.convert_element_type(self, canonical_dtype_arg(dtype))


def _reshape(self, *shape, order="C"):
    """Reshape; accepts ``x.reshape(2, 3)`` and ``x.reshape((2, 3))``."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = shape[0]
    return shapes.reshape(self, shape, order=order)


def _transpose(self, *axes):
    """Permute axes; ``x.transpose(1, 0)`` or ``x.transpose((1, 0))``."""
    if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
        axes = axes[0]
    return shapes.transpose(self, axes or None)


_OPERATORS = {
    "__add__": ufuncs.add, "__radd__": _swap(ufuncs.add),
    "__sub__": ufuncs.subtract, "__rsub__": _swap(ufuncs.subtract),
    "__mul__": ufuncs.multiply, "__rmul__": _swap(ufuncs.multiply),
    "__truediv__": ufuncs.true_divide, "__rtruediv__": _swap(ufuncs.true_divide),
    "__floordiv__": ufuncs.floor_divide, "__rfloordiv__": _swap(ufuncs.floor_divide),
    "__mod__": ufuncs.remainder, "__rmod__": _swap(ufuncs.remainder),
    "__divmod__": ufuncs.divmod, "__rdivmod__": _swap(ufuncs.divmod),
    "__pow__": ufuncs.power, "__rpow__": _swap(ufuncs.power),
    "__matmul__": linalg_ops.matmul, "__rmatmul__": _swap(linalg_ops.matmul),
    "__and__": ufuncs.bitwise_and, "__rand__": _swap(ufuncs.bitwise_and),
    "__or__": ufuncs.bitwise_or, "__ror__": _swap(ufuncs.bitwise_or),
    "__xor__": ufuncs.bitwise_xor, "__rxor__": _swap(ufuncs.bitwise_xor),
    "__lshift__": ufuncs.left_shift, "__rlshift__": _swap(ufuncs.left_shift),
    "__rshift__": ufuncs.right_shift, "__rrshift__": _swap(ufuncs.right_shift),
    "__eq__": ufuncs.equal, "__ne__": ufuncs.not_equal,
    "__lt__": ufuncs.less, "__le__": ufuncs.less_equal,
    "__gt__": ufuncs.greater, "__ge__": ufuncs.greater_equal,
    "__neg__": ufuncs.negative, "__pos__": ufuncs.positive,
    "__abs__": ufuncs.absolute, "__invert__": ufuncs.invert,
    "__getitem__": indexing.getitem,
    "__round__": lambda self, ndigits=None: ufuncs.round(self, ndigits or 0),
}

_METHODS = {
    "astype": _astype, "reshape": _reshape, "transpose": _transpose,
    "sum": reductions.sum, "prod": reductions.prod, "mean": reductions.mean,
    "max": reductions.max, "min": reductions.min, "var": reductions.var, "std": reductions.std,
    "any": reductions.any, "all": reductions.all, "argmax": reductions.argmax,
    "argmin": reductions.argmin, "cumsum": reductions.cumsum, "cumprod": reductions.cumprod,
    "ptp": reductions.ptp,
    "ravel": shapes.ravel, "flatten": shapes.ravel, "squeeze": shapes.squeeze,
    "swapaxes": shapes.swapaxes, "repeat": shapes.repeat,
    "clip": ufuncs.clip, "round": ufuncs.round, "conj": lambda self: self,
    "conjugate": lambda self: self,
    "dot": linalg_ops.dot, "trace": linalg_ops.trace, "diagonal": linalg_ops.diagonal,
    "take": indexing.take, "nonzero": indexing.nonzero,
}

_PROPERTIES = {
    "T": lambda self: shapes.transpose(self),
    "mT": lambda self: shapes.matrix_transpose(self),
    "at": lambda self: indexing._IndexUpdateHelper(self),
    "real": lambda self: self,
    "imag": lambda self: ufuncs.imag(self),
    "nbytes": lambda self: self.size * self.dtype.itemsize,
    "itemsize": lambda self: self.dtype.itemsize,
}


def install() -> None:
    """Attach numpy's operators, methods and properties to ``jitgrad.Array``."""
    for name, fn in {**_OPERATORS, **_METHODS}.items():
        setattr(Array, name, fn)
    for name, fn in _PROPERTIES.items():
        setattr(Array, name, property(fn))
