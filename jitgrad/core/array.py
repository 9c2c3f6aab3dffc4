"""The user-visible array type.

``Array`` is the common base of concrete arrays (``ArrayImpl``, holding data) and of
tracers (values inside a trace): ``isinstance(x, jitgrad.Array)`` holds for both, as in
JAX. Operators and methods (``+``, ``@``, ``.sum()``, ``.at[]``) are attached to the base
by ``jitgrad.numpy``, so concrete arrays and tracers behave alike.

Arrays are immutable: the numpy buffer inside is marked read-only, and item assignment
raises a TypeError that points to ``x.at[i].set(v)``.
"""
from __future__ import annotations

import numpy as np

from .abstract import ShapedArray
from .device import CPU_DEVICE, Device
from .errors import JitgradError


class Array:
    """Base class of jitgrad arrays (concrete) and tracers (abstract, inside a trace)."""

    __slots__ = ()
    __array_priority__ = 100   # so that ``np_array + jitgrad_array`` calls our __radd__
    __hash__ = None            # arrays are not hashable (as in numpy and JAX)

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        return self.aval.shape

    @property
    def dtype(self) -> np.dtype:
        return self.aval.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return self.aval.size

    @property
    def weak_type(self) -> bool:
        return self.aval.weak_type

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object (a 0-d jitgrad array)")
        return self.shape[0]

    def __setitem__(self, index, value):
        raise TypeError(
            "jitgrad arrays are immutable: `x[idx] = v` is not supported. "
            "Use `x = x.at[idx].set(v)` (or .add/.mul/.min/.max) to get an updated copy.")


class DeletedArrayError(JitgradError, RuntimeError):
    """An array was used after ``delete()`` or after being donated to a jitted call."""


class _DeletedBuffer:
    """Stands in for the numpy buffer of a deleted array: every use raises a clear error.

    A donated array's buffer now belongs to the call's output, so ``ArrayImpl._value`` is
    replaced by this object; any read of it (shape, data, numpy conversion) ends here."""
    __slots__ = ("what",)

    def __init__(self, what: str):
        self.what = what

    def __getattr__(self, name):
        raise DeletedArrayError(
            f"Array has been deleted ({self.what}).",
            hint="A donated argument (jit(..., donate_argnums=...)) gives its buffer to the "
                 "call's outputs; use the returned arrays instead, or do not donate it.")

    def __repr__(self) -> str:
        return f"<deleted: {self.what}>"


class ArrayImpl(Array):
    """A concrete array: a read-only numpy buffer plus the weak-type flag."""

    __slots__ = ("_value", "_weak_type")

    def __init__(self, value: np.ndarray, weak_type: bool = False):
        # The buffer is never handed out writable (see __array__), so there is no need to
        # pay for flipping its flags here: this constructor runs on every eager operation.
        self._value = value
        self._weak_type = weak_type

    @property
    def aval(self) -> ShapedArray:
        v = self._value
        return ShapedArray(v.shape, v.dtype, self._weak_type)

    # Fast paths: these are read on every eager operation.
    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    @property
    def weak_type(self) -> bool:
        return self._weak_type

    # numpy interoperability
    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy:
            v = self._value.copy() if dtype is None else self._value.astype(dtype)
            return v
        if dtype is not None and np.dtype(dtype) != self._value.dtype:
            return self._value.astype(dtype)
        view = self._value.view()
        view.flags.writeable = False     # arrays are immutable: numpy sees a read-only view
        return view

    def is_deleted(self) -> bool:
        """Whether this array was deleted (``delete()``, or donated to a jitted call)."""
        return type(self._value) is _DeletedBuffer

    def delete(self, why: str = "delete() was called") -> None:
        """Free this array's buffer now; any later use raises ``DeletedArrayError``."""
        if not self.is_deleted():
            v = self._value
            self._value = _DeletedBuffer(f"{why}; it was {v.dtype.name}{list(v.shape)}")

    def block_until_ready(self) -> "ArrayImpl":
        """Wait for the value to be computed (CPU results are always ready)."""
        return self

    @property
    def device(self) -> Device:
        """The device holding the data: the host CPU (see ``jitgrad.devices``)."""
        return CPU_DEVICE

    def devices(self) -> set:
        """The set of devices holding the data (``{x.device}``), as ``jax.Array.devices()``."""
        return {CPU_DEVICE}

    def item(self, *args):
        return self._value.item(*args)

    def tolist(self):
        return self._value.tolist()

    def copy(self) -> "ArrayImpl":
        return ArrayImpl(self._value.copy(), self._weak_type)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (ArrayImpl, (np.array(self._value), self._weak_type))

    # Python conversions are fine on concrete values.
    def __bool__(self) -> bool:
        return bool(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __float__(self) -> float:
        return float(self._value)

    def __index__(self) -> int:
        return self._value.__index__()

    def __complex__(self) -> complex:
        return complex(self._value)

    def __iter__(self):
        if not self._value.ndim:
            raise TypeError("iteration over a 0-d jitgrad array")
        weak = self._weak_type
        return (ArrayImpl(np.asarray(row), weak) for row in self._value)

    def __format__(self, spec: str) -> str:
        if self._value.ndim == 0:
            return format(self._value.item(), spec)
        return format(str(self), spec)

    def __str__(self) -> str:
        return str(self._value)

    def __repr__(self) -> str:
        if self.is_deleted():
            return f"Array({self._value!r})"
        body = np.array2string(self._value, separator=", ", prefix="Array(")
        extra = ", weak_type=True" if self._weak_type else ""
        return f"Array({body}, dtype={self._value.dtype.name}{extra})"
