"""Scalar types: ``jnp.float32(1.5)`` makes a 0-d array; ``dtype=jnp.float32`` names a dtype.

As in JAX, each type is a class carrying ``.dtype``, so numpy and jitgrad accept it
wherever a dtype is expected, and ``isinstance`` checks against numpy's abstract types
(``jnp.floating``) keep working through ``jnp.issubdtype``.
"""
from __future__ import annotations

import numpy as np

from ..core import dtypes


class _ScalarMeta(type):
    def __call__(cls, x=0):
        from .creation import array
        return array(x, dtype=cls.dtype)

    def __repr__(cls):
        return f"<class 'jitgrad.numpy.{cls.__name__}'>"

    def __eq__(cls, other):
        return cls is other or np.dtype(cls.dtype) == _maybe_dtype(other)

    def __hash__(cls):
        return hash(cls.dtype)


def _maybe_dtype(other):
    try:
        return np.dtype(other)
    except TypeError:
        return None


def _make(name: str, np_type) -> type:
    doc = (f"The {np.dtype(np_type).name} scalar type: ``jnp.{name}(x)`` makes a 0-d array of "
           f"that dtype (canonicalised: 64-bit types are 32-bit unless x64 is enabled), and "
           f"``dtype=jnp.{name}`` names the dtype.")
    return _ScalarMeta(name, (object,), {"dtype": np.dtype(np_type), "__doc__": doc})


bool_ = _make("bool_", np.bool_)
int8, uint8 = _make("int8", np.int8), _make("uint8", np.uint8)
int16, uint16 = _make("int16", np.int16), _make("uint16", np.uint16)
int32, uint32 = _make("int32", np.int32), _make("uint32", np.uint32)
int64, uint64 = _make("int64", np.int64), _make("uint64", np.uint64)
float16, float32, float64 = _make("float16", np.float16), _make("float32", np.float32), _make("float64", np.float64)
# The default-precision aliases follow jax_enable_x64, as in JAX.
float_ = float64
int_ = int64

# numpy's abstract classes, for jnp.issubdtype(x.dtype, jnp.floating).
generic, number, inexact, floating = np.generic, np.number, np.inexact, np.floating
integer, signedinteger, unsignedinteger = np.integer, np.signedinteger, np.unsignedinteger
dtype = np.dtype


def canonical_dtype_arg(dt) -> np.dtype:
    """A dtype argument (numpy dtype, jnp scalar type, string, Python type), canonicalised."""
    return dtypes.canonicalize_dtype(dt.dtype if isinstance(dt, _ScalarMeta) else dt)
