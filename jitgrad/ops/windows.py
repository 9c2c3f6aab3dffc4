"""Windowed reductions (pooling): ``reduce_window_{sum,max,min}`` and their derivatives.

``reduce_window_max(x, window_dimensions, window_strides, padding, base_dilation,
window_dilation)`` slides a window over *every* axis of ``x`` (size 1 on the axes that are
not pooled) and reduces each window, as XLA's ReduceWindow does; max pooling of an NCHW
batch uses the window ``(1, 1, kh, kw)``. Padding is explicit (low, high) pairs filled
with the reduction's identity; ``base_dilation`` spreads the input, ``window_dilation``
the window taps.

The derivative of a max (min) over a window picks the element that won. Two more
primitives express that, as in JAX/XLA, and they are each other's transposes:

* ``select_and_gather_add(t, x)``: for each window of ``x``, the entry of ``t`` at the
  position of the window's maximum (``select_prim="ge"``) or minimum (``"le"``). It is
  the tangent of ``reduce_window_max``; ties go to the first position in the window.
* ``select_and_scatter_add(s, x)``: the transpose: each window's value of ``s`` is added
  into a zero array of ``x``'s shape at the position of the window's winner.

``lax.reduce_window(x, init, computation, ...)`` is the ``jax.lax`` entry point; it
accepts ``lax.add``, ``lax.max`` and ``lax.min`` as the computation.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray
from ..core.errors import DTypeError, ShapeError
from ..core.primitive import OPAQUE, Primitive
from ..core.trace import Tracer, get_aval
from .conv import conv_output_shape, dilate_shape, padtype_to_pads, window_view
from .layout import pad_p

SELECT_PRIMS = ("ge", "le")   # "ge": the maximum wins; "le": the minimum wins


# ------------------------------------------------------------------ shared helpers

def _identity(kind: str, dtype: np.dtype):
    """The value that pads a window without changing its reduction."""
    dtype = np.dtype(dtype)
    if kind == "sum":
        return np.zeros((), dtype)
    big = np.inf if dtype.kind == "f" else (True if dtype.kind == "b" else np.iinfo(dtype).max)
    small = -np.inf if dtype.kind == "f" else (False if dtype.kind == "b" else np.iinfo(dtype).min)
    return np.asarray(small if kind == "max" else big, dtype)


def _padded(x: np.ndarray, fill, padding, base_dilation) -> np.ndarray:
    """``x`` with base dilation holes and edge padding filled with ``fill``."""
    config = tuple((lo, hi, d - 1) for (lo, hi), d in zip(padding, base_dilation))
    if all(c == (0, 0, 0) for c in config):
        return np.asarray(x)
    return pad_p.impl(np.asarray(x), np.asarray(fill, np.asarray(x).dtype), config)


def _windows(x, fill, window_dimensions, window_strides, padding, base_dilation, window_dilation):
    """Every window as a view: shape ``out_shape + window_dimensions``."""
    xp = _padded(x, fill, padding, base_dilation)
    return window_view(xp[None], window_dimensions, window_strides, window_dilation)[0]


def _check_window_params(name: str, aval: ShapedArray, window_dimensions, window_strides,
                         padding, base_dilation, window_dilation) -> tuple[int, ...]:
    nd = aval.ndim
    for what, v in (("window_dimensions", window_dimensions), ("window_strides", window_strides),
                    ("padding", padding), ("base_dilation", base_dilation),
                    ("window_dilation", window_dilation)):
        if len(v) != nd:
            raise ShapeError(f"{name}: {what} {tuple(v)} needs one entry per axis of "
                             f"{aval.str_short()}",
                             hint="Windows cover every axis; use size 1 on axes not pooled "
                                  "(e.g. (1, 1, 2, 2) for NCHW max pooling).")
    if any(w < 0 for w in window_dimensions) or any(s < 1 for s in window_strides) or \
            any(d < 1 for d in tuple(base_dilation) + tuple(window_dilation)):
        raise ShapeError(f"{name}: window sizes must be >= 0, strides and dilations >= 1, got "
                         f"window {tuple(window_dimensions)}, strides {tuple(window_strides)}")
    return conv_output_shape(aval.shape, window_dimensions, window_strides, padding,
                             base_dilation, window_dilation)


# ------------------------------------------------------------------ reduce_window_{sum,max,min}

def _reduce_window(kind: str, np_reduce: Callable) -> Primitive:
    p = Primitive(f"reduce_window_{kind}", OPAQUE)

    def impl(operand, window_dimensions, window_strides, padding, base_dilation,
             window_dilation):
        x = np.asarray(operand)
        fill = _identity(kind, x.dtype)
        win = _windows(x, fill, window_dimensions, window_strides, padding, base_dilation,
                       window_dilation)
        axes = tuple(range(x.ndim, 2 * x.ndim))
        if win.size == 0:
            return np.full(win.shape[:x.ndim], fill, x.dtype)
        return np.asarray(np_reduce(win, axis=axes), dtype=x.dtype)

    def rule(operand, window_dimensions, window_strides, padding, base_dilation,
             window_dilation):
        if kind == "sum" and not (dtypes.is_int(operand.dtype) or dtypes.is_float(operand.dtype)):
            raise DTypeError(f"{p.name} does not accept {operand.str_short()}")
        shape = _check_window_params(p.name, operand, window_dimensions, window_strides, padding,
                                     base_dilation, window_dilation)
        return ShapedArray(shape, operand.dtype, operand.weak_type)

    p.impl, p.abstract_eval = impl, rule
    return p


reduce_window_sum_p = _reduce_window("sum", np.sum)
reduce_window_max_p = _reduce_window("max", np.max)
reduce_window_min_p = _reduce_window("min", np.min)


# ------------------------------------------------------------------ select_and_gather_add

select_and_gather_add_p = Primitive("select_and_gather_add", OPAQUE)


def _winner_index(operand, select_prim, window_dimensions, window_strides, padding,
                  base_dilation, window_dilation) -> np.ndarray:
    """Flat index, within each window, of the first maximum (ge) / minimum (le)."""
    x = np.asarray(operand)
    fill = _identity("max" if select_prim == "ge" else "min", x.dtype)
    win = _windows(x, fill, window_dimensions, window_strides, padding, base_dilation,
                   window_dilation)
    out_shape = win.shape[:x.ndim]
    flat = win.reshape(out_shape + (-1,))
    if flat.shape[-1] == 0:
        return np.zeros(out_shape, np.int64)
    return (np.argmax if select_prim == "ge" else np.argmin)(flat, axis=-1)


@select_and_gather_add_p.def_impl
def _select_and_gather_add_impl(tangents, operand, select_prim, window_dimensions,
                                window_strides, padding, base_dilation, window_dilation):
    t = np.asarray(tangents)
    idx = _winner_index(operand, select_prim, window_dimensions, window_strides, padding,
                        base_dilation, window_dilation)
    t_win = _windows(t, np.zeros((), t.dtype), window_dimensions, window_strides, padding,
                     base_dilation, window_dilation)
    if idx.size == 0 or t_win.size == 0:
        return np.zeros(idx.shape, t.dtype)
    flat = t_win.reshape(idx.shape + (-1,))
    return np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]


@select_and_gather_add_p.def_abstract_eval
def _select_and_gather_add_rule(tangents, operand, select_prim, window_dimensions,
                                window_strides, padding, base_dilation, window_dilation):
    name = "select_and_gather_add"
    if select_prim not in SELECT_PRIMS:
        raise ValueError(f"{name}: select_prim must be one of {SELECT_PRIMS}, got {select_prim!r}")
    if tangents.shape != operand.shape:
        raise ShapeError(f"{name}: tangents {tangents.str_short()} and operand "
                         f"{operand.str_short()} must have the same shape")
    shape = _check_window_params(name, operand, window_dimensions, window_strides, padding,
                                 base_dilation, window_dilation)
    return ShapedArray(shape, tangents.dtype, tangents.weak_type)


# ------------------------------------------------------------------ select_and_scatter_add

select_and_scatter_add_p = Primitive("select_and_scatter_add", OPAQUE)


@select_and_scatter_add_p.def_impl
def _select_and_scatter_add_impl(source, operand, select_prim, window_dimensions,
                                 window_strides, padding, window_dilation):
    x = np.asarray(operand)
    src = np.asarray(source)
    ones = (1,) * x.ndim
    idx = _winner_index(x, select_prim, window_dimensions, window_strides, padding, ones,
                        window_dilation)
    out = np.zeros(x.shape, src.dtype)
    if idx.size == 0 or 0 in window_dimensions:
        return out
    taps = np.unravel_index(idx, tuple(window_dimensions))
    mask = np.ones(idx.shape, bool)
    coords = []
    for d in range(x.ndim):
        pos = np.arange(idx.shape[d]).reshape((-1,) + (1,) * (x.ndim - 1 - d))
        c = pos * window_strides[d] + taps[d] * window_dilation[d] - padding[d][0]
        mask &= (c >= 0) & (c < x.shape[d])
        coords.append(c)
    coords = [np.broadcast_to(c, idx.shape)[mask] for c in coords]
    # Accumulate with bincount on flat indices (np.add.at is an order of magnitude slower).
    flat = np.ravel_multi_index(tuple(coords), x.shape) if coords else np.zeros(0, np.intp)
    values = src[mask]
    if out.dtype.kind == "f" and values.size:
        out += np.bincount(flat, weights=values.astype(np.float64),
                           minlength=out.size).astype(out.dtype).reshape(out.shape)
    else:
        np.add.at(out, tuple(coords), values)
    return out


@select_and_scatter_add_p.def_abstract_eval
def _select_and_scatter_add_rule(source, operand, select_prim, window_dimensions,
                                 window_strides, padding, window_dilation):
    name = "select_and_scatter_add"
    if select_prim not in SELECT_PRIMS:
        raise ValueError(f"{name}: select_prim must be one of {SELECT_PRIMS}, got {select_prim!r}")
    ones = (1,) * operand.ndim
    shape = _check_window_params(name, operand, window_dimensions, window_strides, padding,
                                 ones, window_dilation)
    if source.shape != shape:
        raise ShapeError(f"{name}: source {source.str_short()} must have the window output "
                         f"shape {shape} of operand {operand.str_short()}")
    return ShapedArray(operand.shape, source.dtype, source.weak_type)


# ------------------------------------------------------------------ the lax function

def reduce_window(operand, init_value, computation: Callable, window_dimensions: Sequence[int],
                  window_strides: Sequence[int], padding,
                  base_dilation: Sequence[int] | None = None,
                  window_dilation: Sequence[int] | None = None):
    """``jax.lax.reduce_window`` for the monoids ``lax.add``, ``lax.max`` and ``lax.min``.

    ``padding`` is ``"SAME"``, ``"VALID"`` or (low, high) pairs, one per axis. An
    ``init_value`` other than the computation's identity is folded into every window.
    """
    from .. import lax
    aval = get_aval(operand)
    nd = aval.ndim
    window_dimensions = tuple(int(w) for w in window_dimensions)
    window_strides = tuple(int(s) for s in window_strides)
    base_dilation = (1,) * nd if base_dilation is None else tuple(int(d) for d in base_dilation)
    window_dilation = (1,) * nd if window_dilation is None else tuple(int(d) for d in window_dilation)
    if isinstance(padding, str):
        in_shape = dilate_shape(aval.shape, base_dilation)
        padding = padtype_to_pads(in_shape, dilate_shape(window_dimensions, window_dilation),
                                  window_strides, padding)
    padding = tuple(tuple(int(v) for v in p) for p in padding)
    kinds = {lax.add: ("sum", reduce_window_sum_p), lax.max: ("max", reduce_window_max_p),
             lax.min: ("min", reduce_window_min_p)}
    if computation not in kinds:
        raise NotImplementedError(
            "jitgrad.lax.reduce_window supports computation=lax.add, lax.max or lax.min, got "
            f"{getattr(computation, '__name__', computation)!r}")
    kind, prim = kinds[computation]
    out = prim.bind(operand, window_dimensions=window_dimensions, window_strides=window_strides,
                    padding=padding, base_dilation=base_dilation, window_dilation=window_dilation)
    if not isinstance(init_value, Tracer):
        init = np.asarray(init_value)
        if init.shape == () and init == _identity(kind, aval.dtype):
            return out
    return computation(out, lax.convert_element_type(init_value, aval.dtype))


# ------------------------------------------------------------------ autodiff rules
from ..core.rules import Zero, defjvp, deflinear  # noqa: E402
from .conv import _vjp_lhs_padding  # noqa: E402
from .layout import slice_p  # noqa: E402


def _reduce_window_sum_transpose(ct, operand, *, window_dimensions, window_strides, padding,
                                 base_dilation, window_dilation):
    # Every input element receives the cotangents of the windows that cover it: pad the
    # cotangent (strides become interior padding) and sum it over the same windows.
    if type(ct) is Zero:
        return [None]
    in_shape = operand.aval.shape
    pads = _vjp_lhs_padding(in_shape, window_dimensions, window_strides, get_aval(ct).shape,
                            padding, base_dilation, window_dilation)
    config = tuple((lo, hi, s - 1) for (lo, hi), s in zip(pads, window_strides))
    padded = pad_p.bind(ct, np.zeros((), get_aval(ct).dtype), padding_config=config)
    out = reduce_window_sum_p.bind(padded, window_dimensions=window_dimensions,
                                   window_strides=base_dilation, padding=((0, 0),) * len(in_shape),
                                   base_dilation=(1,) * len(in_shape),
                                   window_dilation=window_dilation)
    return [out]


deflinear(reduce_window_sum_p, _reduce_window_sum_transpose)


def _chooser_jvp(select_prim):
    def jvp(g, operand, *, window_dimensions, window_strides, padding, base_dilation,
            window_dilation):
        return select_and_gather_add_p.bind(
            g, operand, select_prim=select_prim, window_dimensions=window_dimensions,
            window_strides=window_strides, padding=padding, base_dilation=base_dilation,
            window_dilation=window_dilation)
    return jvp


defjvp(reduce_window_max_p, _chooser_jvp("ge"))
defjvp(reduce_window_min_p, _chooser_jvp("le"))


def _select_and_gather_add_transpose(ct, tangents, operand, *, select_prim, window_dimensions,
                                     window_strides, padding, base_dilation, window_dilation):
    if type(ct) is Zero:
        return [None, None]
    nd = len(window_dimensions)
    dilated = any(d != 1 for d in base_dilation)
    if dilated:
        # Scatter into the dilated operand (holes hold the identity, so they never win),
        # then keep the real positions.
        fill = _identity("max" if select_prim == "ge" else "min", get_aval(operand).dtype)
        operand = pad_p.bind(operand, fill, padding_config=tuple((0, 0, d - 1) for d in base_dilation))
    out = select_and_scatter_add_p.bind(
        ct, operand, select_prim=select_prim, window_dimensions=window_dimensions,
        window_strides=window_strides, padding=padding, window_dilation=window_dilation)
    if dilated:
        shape = get_aval(out).shape
        out = slice_p.bind(out, start_indices=(0,) * nd, limit_indices=shape,
                           strides=tuple(base_dilation))
    return [out, None]


def _select_and_gather_add_jvp(primals, tangents, **params):
    t, x = primals
    out = select_and_gather_add_p.bind(t, x, **params)
    if type(tangents[0]) is Zero:
        return out, Zero(get_aval(out).strong())
    return out, select_and_gather_add_p.bind(tangents[0], x, **params)


select_and_gather_add_p.jvp = _select_and_gather_add_jvp
select_and_gather_add_p.transpose = _select_and_gather_add_transpose


def _select_and_scatter_add_transpose(ct, source, operand, *, select_prim, window_dimensions,
                                      window_strides, padding, window_dilation):
    if type(ct) is Zero:
        return [None, None]
    out = select_and_gather_add_p.bind(
        ct, operand, select_prim=select_prim, window_dimensions=window_dimensions,
        window_strides=window_strides, padding=padding,
        base_dilation=(1,) * len(window_dimensions), window_dilation=window_dilation)
    return [out, None]


def _select_and_scatter_add_jvp(primals, tangents, **params):
    s, x = primals
    out = select_and_scatter_add_p.bind(s, x, **params)
    if type(tangents[0]) is Zero:
        return out, Zero(get_aval(out).strong())
    return out, select_and_scatter_add_p.bind(tangents[0], x, **params)


select_and_scatter_add_p.jvp = _select_and_scatter_add_jvp
select_and_scatter_add_p.transpose = _select_and_scatter_add_transpose


# ------------------------------------------------------------------ batching rules
# The window ops treat every axis alike: put the vmapped axis first and give it a window
# of 1 (stride 1, no padding, no dilation).
from ..core.rules import axis_size_of, bdim_to_front  # noqa: E402


def _with_batch_axis(params: dict) -> dict:
    out = dict(params)
    for key, value in params.items():
        if key in ("window_dimensions", "window_strides", "base_dilation", "window_dilation"):
            out[key] = (1,) + tuple(value)
        elif key == "padding":
            out[key] = ((0, 0),) + tuple(value)
    return out


def _window_batch_rule(prim):
    def rule(vals, dims, **params):
        size = axis_size_of(vals, dims)
        args = [bdim_to_front(v, d, size) for v, d in zip(vals, dims)]
        return prim.bind(*args, **_with_batch_axis(params)), 0
    return rule


for _p in (reduce_window_sum_p, reduce_window_max_p, reduce_window_min_p,
           select_and_gather_add_p, select_and_scatter_add_p):
    _p.batch = _window_batch_rule(_p)
