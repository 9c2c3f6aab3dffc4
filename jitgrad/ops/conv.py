"""Convolution: the ``conv_general_dilated`` primitive (``jax.lax.conv_general_dilated``).

One primitive covers every convolution a network uses, in any number of spatial
dimensions and any layout::

    out = conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                               rhs_dilation, dimension_numbers, feature_group_count,
                               batch_group_count)

* ``dimension_numbers`` is a ``ConvDimensionNumbers(lhs_spec, rhs_spec, out_spec)``: for
  the input, the positions of its (batch, feature, spatial...) axes; for the kernel,
  (out feature, in feature, spatial...); for the output, (batch, feature, spatial...).
  ``conv_dimension_numbers`` builds it from strings such as ``("NCHW", "OIHW", "NCHW")``.
* ``padding`` is explicit ``(low, high)`` per spatial axis in the primitive; the ``lax``
  functions also take ``"SAME"``/``"VALID"`` and resolve them (``padtype_to_pads``).
* ``lhs_dilation`` inserts ``d - 1`` zeros between input elements (a transposed, or
  "fractionally strided", convolution); ``rhs_dilation`` spreads the kernel taps (atrous).
* ``feature_group_count = G`` splits input and output features into G independent groups
  (G = C is a depthwise convolution); ``batch_group_count`` does the same with the input
  batch (it arises in the gradient of a grouped convolution with respect to the kernel).

Like XLA's, this is a cross-correlation (the kernel is not flipped).

The numpy reference implementation brings both operands to the canonical layout
(N, C, spatial...) / (O, I, spatial...), dilates and pads the input, takes every window
as a strided view and contracts windows with the kernel in one batched matmul (im2col).
The JVP, transpose and batching rules at the end of this module are those of JAX.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray
from ..core.errors import DTypeError, ShapeError
from ..core.primitive import OPAQUE, Primitive


class ConvDimensionNumbers(NamedTuple):
    """Axis positions: lhs (batch, feature, spatial...), rhs (out feature, in feature,
    spatial...), out (batch, feature, spatial...). As ``jax.lax.ConvDimensionNumbers``."""

    lhs_spec: tuple[int, ...]
    rhs_spec: tuple[int, ...]
    out_spec: tuple[int, ...]


# ------------------------------------------------------------------ shape helpers

def dilate_shape(shape: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """Size after inserting ``d - 1`` holes between elements: ``1 + d (n - 1)`` (0 stays 0)."""
    return tuple(0 if n == 0 else 1 + d * (n - 1) for n, d in zip(shape, dilation))


def conv_output_shape(in_spatial, window, strides, padding, lhs_dilation, rhs_dilation):
    """The spatial output sizes of a convolution (or a reduce_window)."""
    in_d = dilate_shape(in_spatial, lhs_dilation)
    win_d = dilate_shape(window, rhs_dilation)
    out = []
    for n, w, s, (lo, hi) in zip(in_d, win_d, strides, padding):
        padded = n + lo + hi
        out.append(0 if padded < w or w == 0 else (padded - w) // s + 1)
    return tuple(out)


def padtype_to_pads(in_shape: Sequence[int], window_shape: Sequence[int],
                    window_strides: Sequence[int], padding) -> list[tuple[int, int]]:
    """Explicit (low, high) pads for ``"SAME"``, ``"SAME_LOWER"`` or ``"VALID"`` (as JAX).

    ``SAME`` makes the output size ``ceil(in / stride)``, putting the odd pad element at
    the end (``SAME_LOWER``: at the start). Explicit pads are returned unchanged.
    """
    if not isinstance(padding, str):
        pads = [tuple(int(v) for v in p) for p in padding]
        if len(pads) != len(in_shape) or any(len(p) != 2 for p in pads):
            raise ShapeError(f"padding must have one (low, high) pair per spatial axis "
                             f"({len(in_shape)}), got {padding}")
        return pads
    kind = padding.upper()
    if kind == "VALID":
        return [(0, 0)] * len(in_shape)
    if kind in ("SAME", "SAME_LOWER"):
        pads = []
        for n, w, s in zip(in_shape, window_shape, window_strides):
            out = -(-n // s)
            total = max((out - 1) * s + w - n, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if kind == "SAME" else (big, small))
        return pads
    raise ValueError(f"padding must be 'SAME', 'SAME_LOWER', 'VALID' or explicit pairs, "
                     f"got {padding!r}")


def conv_dimension_numbers(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                           dimension_numbers) -> ConvDimensionNumbers:
    """``ConvDimensionNumbers`` from ``None`` (NC..., OI..., NC...), a
    ``ConvDimensionNumbers``, or three layout strings like ``("NHWC", "HWIO", "NHWC")``."""
    nd = len(lhs_shape)
    if len(rhs_shape) != nd:
        raise ShapeError(f"conv: input and kernel must have the same rank, got shapes "
                         f"{tuple(lhs_shape)} and {tuple(rhs_shape)}")
    if dimension_numbers is None:
        default = tuple(range(nd))
        return ConvDimensionNumbers(default, default, default)
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return ConvDimensionNumbers(*(tuple(int(a) for a in s) for s in dimension_numbers))
    if len(dimension_numbers) != 3:
        raise ValueError(f"dimension_numbers must be three layout specs, got {dimension_numbers}")
    lhs, rhs, out = dimension_numbers
    if isinstance(lhs, str):
        if not (len(lhs) == len(rhs) == len(out) == nd):
            raise ShapeError(f"conv: layout strings {dimension_numbers} must each have "
                             f"{nd} letters for rank-{nd} operands")
        return _specs_from_strings(lhs, rhs, out)
    return ConvDimensionNumbers(tuple(lhs), tuple(rhs), tuple(out))


def _specs_from_strings(lhs: str, rhs: str, out: str) -> ConvDimensionNumbers:
    # Spatial axes are matched by letter across the three strings, in the rhs's order.
    spatial = [c for c in rhs if c not in "OI"]
    for name, s, special in (("lhs", lhs, "NC"), ("rhs", rhs, "OI"), ("out", out, "NC")):
        if sorted(s) != sorted(set(s)) or any(c not in s for c in special) or \
                sorted(c for c in s if c not in special) != sorted(spatial):
            raise ValueError(f"conv: invalid {name} layout {s!r} for kernel layout {rhs!r}")
    return ConvDimensionNumbers(
        (lhs.index("N"), lhs.index("C")) + tuple(lhs.index(c) for c in spatial),
        (rhs.index("O"), rhs.index("I")) + tuple(rhs.index(c) for c in spatial),
        (out.index("N"), out.index("C")) + tuple(out.index(c) for c in spatial))


# ------------------------------------------------------------------ the primitive

conv_general_dilated_p = Primitive("conv_general_dilated", OPAQUE)


def _pad_zeros(x: np.ndarray, pads, interior) -> np.ndarray:
    """Interior (dilation) and edge padding with zeros on the trailing spatial axes;
    negative edge pads crop."""
    nspatial = len(pads)
    lead = x.ndim - nspatial
    if any(d > 1 for d in interior):
        shape = x.shape[:lead] + dilate_shape(x.shape[lead:], interior)
        dilated = np.zeros(shape, x.dtype)
        dilated[(slice(None),) * lead + tuple(slice(None, None, d) for d in interior)] = x
        x = dilated
    if any(lo != 0 or hi != 0 for lo, hi in pads):
        grow = [(0, 0)] * lead + [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
        x = np.pad(x, grow)
        crop = (slice(None),) * lead + tuple(
            slice(-min(lo, 0), x.shape[lead + i] + min(hi, 0)) for i, (lo, hi) in enumerate(pads))
        x = x[crop]
    return x


def window_view(x: np.ndarray, window, strides, window_dilation) -> np.ndarray:
    """All windows of the trailing ``len(window)`` axes of ``x`` as a strided view:
    shape ``x.shape[:lead] + out_spatial + window``."""
    nspatial = len(window)
    lead = x.ndim - nspatial
    eff = dilate_shape(window, window_dilation)
    out = tuple((n - w) // s + 1 if n >= w and w > 0 else 0
                for n, w, s in zip(x.shape[lead:], eff, strides))
    if 0 in out or 0 in window:
        return np.zeros(x.shape[:lead] + out + tuple(window), x.dtype)
    st = x.strides
    shape = x.shape[:lead] + out + tuple(window)
    strides_ = (st[:lead] + tuple(st[lead + i] * strides[i] for i in range(nspatial))
                + tuple(st[lead + i] * window_dilation[i] for i in range(nspatial)))
    return np.lib.stride_tricks.as_strided(x, shape, strides_, writeable=False)


def _conv_canonical(lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, groups, out_dtype):
    """Convolution of (N, C, S...) with (O, I, K...), C = groups * I: (N, O, out...)."""
    n, c = lhs.shape[:2]
    o, i = rhs.shape[:2]
    window = rhs.shape[2:]
    ns = len(window)
    x = _pad_zeros(lhs, padding, lhs_dilation)
    win = window_view(x, window, strides, rhs_dilation)         # (N, C, out..., K...)
    out_sp = win.shape[2:2 + ns]
    p, kk = int(np.prod(out_sp, dtype=np.int64)), int(np.prod(window, dtype=np.int64))
    # im2col: (G, N * P, I * K) patches times (G, I * K, O / G) weights.
    win = win.reshape((n, groups, i) + out_sp + tuple(window))
    perm = (1, 0) + tuple(range(3, 3 + ns)) + (2,) + tuple(range(3 + ns, 3 + 2 * ns))
    patches = np.ascontiguousarray(np.transpose(win, perm)).reshape(groups, n * p, i * kk)
    weights = rhs.reshape(groups, o // groups, i * kk).transpose(0, 2, 1)
    acc = out_dtype if out_dtype.kind == lhs.dtype.kind else lhs.dtype
    res = np.matmul(patches.astype(acc, copy=False), weights.astype(acc, copy=False))
    res = res.reshape((groups, n) + out_sp + (o // groups,))
    res = np.transpose(res, (1, 0, 2 + ns) + tuple(range(2, 2 + ns)))   # (N, G, O/G, out...)
    return res.reshape((n, o) + out_sp).astype(out_dtype, copy=False)


@conv_general_dilated_p.def_impl
def _conv_impl(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count=1, batch_group_count=1,
               preferred_element_type=None):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    lhs = np.transpose(np.asarray(lhs), lhs_spec)
    rhs = np.transpose(np.asarray(rhs), rhs_spec)
    out_dtype = np.dtype(preferred_element_type) if preferred_element_type else lhs.dtype
    args = (window_strides, padding, lhs_dilation, rhs_dilation)
    if batch_group_count > 1:
        # Batch groups: input batch group b meets output features of group b only.
        nb = lhs.shape[0] // batch_group_count
        ob = rhs.shape[0] // batch_group_count
        res = np.concatenate(
            [_conv_canonical(lhs[b * nb:(b + 1) * nb], rhs[b * ob:(b + 1) * ob], *args, 1,
                             out_dtype) for b in range(batch_group_count)], axis=1)
    else:
        res = _conv_canonical(lhs, rhs, *args, feature_group_count, out_dtype)
    # A fresh C-ordered array: compiled backends take the result as a contiguous buffer.
    return np.ascontiguousarray(np.transpose(res, np.argsort(out_spec)))


@conv_general_dilated_p.def_abstract_eval
def _conv_rule(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count=1, batch_group_count=1,
               preferred_element_type=None):
    name = "conv_general_dilated"
    shapes = f"input {lhs.str_short()} and kernel {rhs.str_short()}"
    if lhs.dtype != rhs.dtype:
        raise DTypeError(f"{name}: input and kernel must share a dtype, got {shapes}",
                         hint="Convert one of them with .astype(...).")
    if dtypes.is_bool(lhs.dtype):
        raise DTypeError(f"{name} does not accept boolean operands ({shapes})")
    if lhs.ndim != rhs.ndim or lhs.ndim < 2:
        raise ShapeError(f"{name}: input and kernel must have the same rank >= 2, got {shapes}")
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    nd, ns = lhs.ndim, lhs.ndim - 2
    for spec in dimension_numbers:
        if sorted(spec) != list(range(nd)):
            raise ShapeError(f"{name}: dimension_numbers {dimension_numbers} are not "
                             f"permutations of the {nd} axes ({shapes})")
    for what, v in (("window_strides", window_strides), ("padding", padding),
                    ("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
        if len(v) != ns:
            raise ShapeError(f"{name}: {what} {tuple(v)} needs one entry per spatial axis ({ns})")
    if any(s < 1 for s in window_strides) or any(d < 1 for d in lhs_dilation + rhs_dilation):
        raise ShapeError(f"{name}: strides and dilations must be >= 1")
    n, c = lhs.shape[lhs_spec[0]], lhs.shape[lhs_spec[1]]
    o, i = rhs.shape[rhs_spec[0]], rhs.shape[rhs_spec[1]]
    g, b = feature_group_count, batch_group_count
    if g < 1 or b < 1 or (g > 1 and b > 1):
        raise ShapeError(f"{name}: feature_group_count={g} and batch_group_count={b} must be "
                         ">= 1, and at most one of them > 1")
    if c != i * g:
        raise ShapeError(
            f"{name}: the input has {c} features but the kernel expects {i} * "
            f"feature_group_count {g} = {i * g} ({shapes})",
            hint="The kernel's in-feature axis must equal the input's feature axis divided "
                 "by feature_group_count (check the layouts in dimension_numbers).")
    if o % g or o % b or n % b:
        raise ShapeError(f"{name}: {o} output features / batch {n} do not divide into "
                         f"{max(g, b)} groups ({shapes})")
    in_sp = tuple(lhs.shape[d] for d in lhs_spec[2:])
    window = tuple(rhs.shape[d] for d in rhs_spec[2:])
    out_sp = conv_output_shape(in_sp, window, window_strides, padding, lhs_dilation, rhs_dilation)
    out_shape = [0] * nd
    out_shape[out_spec[0]] = n // b
    out_shape[out_spec[1]] = o
    for d, size in zip(out_spec[2:], out_sp):
        out_shape[d] = size
    dt = lhs.dtype if preferred_element_type is None else np.dtype(preferred_element_type)
    return ShapedArray(tuple(out_shape), dt, lhs.weak_type and rhs.weak_type)


# ------------------------------------------------------------------ the lax functions

def _ints(xs, n: int, default: int = 1) -> tuple[int, ...]:
    return (default,) * n if xs is None else tuple(int(x) for x in xs)


def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding,
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers=None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision=None,
                         preferred_element_type=None):
    """General n-d convolution (``jax.lax.conv_general_dilated``); see the module docstring.

    ``padding``: ``"SAME"``, ``"SAME_LOWER"``, ``"VALID"`` or a sequence of (low, high)
    pairs. ``dimension_numbers``: ``None`` (NCH..W / OIH..W / NCH..W), a
    ``ConvDimensionNumbers``, or layout strings like ``("NHWC", "HWIO", "NHWC")``.
    ``precision`` is accepted and ignored.
    """
    from ..core.trace import get_aval
    la, ra = get_aval(lhs), get_aval(rhs)
    dn = conv_dimension_numbers(la.shape, ra.shape, dimension_numbers)
    ns = la.ndim - 2
    strides = _ints(window_strides, ns)
    lhs_dil, rhs_dil = _ints(lhs_dilation, ns), _ints(rhs_dilation, ns)
    if isinstance(padding, str):
        in_sp = tuple(la.shape[d] for d in dn.lhs_spec[2:])
        window = dilate_shape(tuple(ra.shape[d] for d in dn.rhs_spec[2:]), rhs_dil)
        padding = padtype_to_pads(in_sp, window, strides, padding)
    else:
        padding = padtype_to_pads((0,) * ns, (0,) * ns, strides, padding)
    pet = None if preferred_element_type is None else dtypes.canonicalize_dtype(preferred_element_type)
    return conv_general_dilated_p.bind(
        lhs, rhs, window_strides=strides, padding=tuple(padding), lhs_dilation=lhs_dil,
        rhs_dilation=rhs_dil, dimension_numbers=dn, feature_group_count=int(feature_group_count),
        batch_group_count=int(batch_group_count), preferred_element_type=pet)


def conv(lhs, rhs, window_strides: Sequence[int], padding, precision=None,
         preferred_element_type=None):
    """Convolution of NCHW input with OIHW kernel (``jax.lax.conv``)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                              precision=None, preferred_element_type=None):
    """NCHW/OIHW convolution with dilations (``jax.lax.conv_with_general_padding``)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                precision=precision, preferred_element_type=preferred_element_type)


# ------------------------------------------------------------------ autodiff rules
# Bilinear: the tangent is conv(dlhs, rhs) + conv(lhs, drhs). The transposes are
# convolutions again (JAX's formulas): for the input, the output cotangent convolved with
# the spatially reversed kernel, strides becoming input dilation; for the kernel, the
# input convolved with the cotangent, batch and feature roles exchanged.
from ..core.trace import get_aval  # noqa: E402
from ..core.rules import Zero, defjvp, is_undefined_primal  # noqa: E402
from .layout import reshape_p, rev_p  # noqa: E402


def _spec_swap(spec):
    return (spec[1], spec[0]) + tuple(spec[2:])


def _reshape_axis_out_of(src: int, size1: int, x):
    """Split axis ``src`` (of size size1 * k) into two axes (size1, k)."""
    shape = list(get_aval(x).shape)
    shape[src:src + 1] = [size1, shape[src] // size1]
    return reshape_p.bind(x, new_sizes=tuple(shape), dimensions=None)


def _reshape_axis_into(src: int, dst: int, x):
    """Merge axis ``src`` into axis ``dst`` (numbered after removing src) as its major part."""
    shape = get_aval(x).shape
    perm = [i for i in range(len(shape)) if i != src]
    perm.insert(dst, src)
    new = [s for i, s in enumerate(shape) if i != src]
    new[dst] *= shape[src]
    return reshape_p.bind(x, new_sizes=tuple(new), dimensions=tuple(perm))


def _vjp_lhs_padding(in_shape, window, strides, out_shape, padding, lhs_dil, rhs_dil):
    lhs_d = dilate_shape(in_shape, lhs_dil)
    rhs_d = dilate_shape(window, rhs_dil)
    out_d = dilate_shape(out_shape, strides)
    before = [w - lo - 1 for w, (lo, _) in zip(rhs_d, padding)]
    after = [l + w - 1 - o - b for l, w, o, b in zip(lhs_d, rhs_d, out_d, before)]
    return tuple(zip(before, after))


def _vjp_rhs_padding(in_shape, window, strides, out_shape, padding, lhs_dil, rhs_dil):
    lhs_d = dilate_shape(in_shape, lhs_dil)
    rhs_d = dilate_shape(window, rhs_dil)
    out_d = dilate_shape(out_shape, strides)
    lows = [lo for lo, _ in padding]
    highs = [o - l + w - lo - 1 for o, l, w, lo in zip(out_d, lhs_d, rhs_d, lows)]
    return tuple(zip(lows, highs))


def _conv_transpose_lhs(g, rhs, lhs_aval, *, window_strides, padding, lhs_dilation,
                        rhs_dilation, dimension_numbers, feature_group_count,
                        batch_group_count, preferred_element_type):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    rhs_aval = get_aval(rhs)
    if feature_group_count > 1 or batch_group_count > 1:
        # Move the group axis from the kernel's out features into its in features.
        groups = max(feature_group_count, batch_group_count)
        rhs = _reshape_axis_out_of(rhs_spec[0], groups, rhs)
        rhs = _reshape_axis_into(rhs_spec[0], rhs_spec[1], rhs)
    sdims = lambda spec, aval: tuple(aval.shape[d] for d in spec[2:])  # noqa: E731
    pads = _vjp_lhs_padding(sdims(lhs_spec, lhs_aval), sdims(rhs_spec, rhs_aval), window_strides,
                            sdims(out_spec, get_aval(g)), padding, lhs_dilation, rhs_dilation)
    out = conv_general_dilated_p.bind(
        g, rev_p.bind(rhs, dimensions=tuple(rhs_spec[2:])), window_strides=lhs_dilation,
        padding=pads, lhs_dilation=window_strides, rhs_dilation=rhs_dilation,
        dimension_numbers=ConvDimensionNumbers(out_spec, _spec_swap(rhs_spec), lhs_spec),
        feature_group_count=max(feature_group_count, batch_group_count), batch_group_count=1,
        preferred_element_type=None)
    if batch_group_count > 1:
        out = _reshape_axis_out_of(lhs_spec[1], batch_group_count, out)
        out = _reshape_axis_into(lhs_spec[1], lhs_spec[0], out)
    return out


def _conv_transpose_rhs(g, lhs, rhs_aval, *, window_strides, padding, lhs_dilation,
                        rhs_dilation, dimension_numbers, feature_group_count,
                        batch_group_count, preferred_element_type):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    # Feature groups of the forward conv are batch groups of this one, and vice versa.
    fgc, bgc = batch_group_count, feature_group_count
    sdims = lambda spec, aval: tuple(aval.shape[d] for d in spec[2:])  # noqa: E731
    pads = _vjp_rhs_padding(sdims(lhs_spec, get_aval(lhs)), sdims(rhs_spec, rhs_aval),
                            window_strides, sdims(out_spec, get_aval(g)), padding,
                            lhs_dilation, rhs_dilation)
    return conv_general_dilated_p.bind(
        lhs, g, window_strides=rhs_dilation, padding=pads, lhs_dilation=lhs_dilation,
        rhs_dilation=window_strides,
        dimension_numbers=ConvDimensionNumbers(_spec_swap(lhs_spec), _spec_swap(out_spec),
                                               _spec_swap(rhs_spec)),
        feature_group_count=fgc, batch_group_count=bgc, preferred_element_type=None)


def _conv_transpose(ct, lhs, rhs, **params):
    if type(ct) is Zero:
        return [None, None]
    if is_undefined_primal(lhs):
        return [_conv_transpose_lhs(ct, rhs, lhs.aval, **params), None]
    if get_aval(ct).size == 0:
        return [None, Zero(rhs.aval)]
    return [None, _conv_transpose_rhs(ct, lhs, rhs.aval, **params)]


defjvp(conv_general_dilated_p,
       lambda g, lhs, rhs, **params: conv_general_dilated_p.bind(g, rhs, **params),
       lambda g, lhs, rhs, **params: conv_general_dilated_p.bind(lhs, g, **params))
conv_general_dilated_p.transpose = _conv_transpose


# ------------------------------------------------------------------ batching rules
# The vmapped axis is folded into an axis the convolution already has: the input batch
# (input batched), the kernel's out features (kernel batched), or feature groups (both).

def _conv_batch(vals, dims, *, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count, batch_group_count,
                preferred_element_type):
    (lhs, rhs), (ld, rd) = vals, dims
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                  preferred_element_type=preferred_element_type)
    bind = conv_general_dilated_p.bind
    if ld is not None and rd is not None:
        size = get_aval(lhs).shape[ld]
        if batch_group_count > 1:
            new_lhs = _reshape_axis_into(ld, lhs_spec[0], lhs)
            fgc, bgc = feature_group_count, batch_group_count * size
        else:
            new_lhs = _reshape_axis_into(ld, lhs_spec[1], lhs)
            fgc, bgc = feature_group_count * size, batch_group_count
        new_rhs = _reshape_axis_into(rd, rhs_spec[0], rhs)
        out = bind(new_lhs, new_rhs, feature_group_count=fgc, batch_group_count=bgc, **params)
        return _reshape_axis_out_of(out_spec[1], size, out), out_spec[1]
    if ld is not None:
        size = get_aval(lhs).shape[ld]
        if batch_group_count == 1:
            new_lhs = _reshape_axis_into(ld, lhs_spec[0], lhs)
        else:
            # Keep the batch groups outermost: (groups, vmapped, per-group batch).
            new_lhs = _reshape_axis_out_of(lhs_spec[0] + int(ld <= lhs_spec[0]),
                                           batch_group_count, lhs)
            new_lhs = _reshape_axis_into(ld + int(lhs_spec[0] < ld), lhs_spec[0] + 1, new_lhs)
            new_lhs = _reshape_axis_into(lhs_spec[0], lhs_spec[0], new_lhs)
        out = bind(new_lhs, rhs, feature_group_count=feature_group_count,
                   batch_group_count=batch_group_count, **params)
        return _reshape_axis_out_of(out_spec[0], size, out), out_spec[0]
    size = get_aval(rhs).shape[rd]
    if feature_group_count == 1 and batch_group_count == 1:
        new_rhs = _reshape_axis_into(rd, rhs_spec[0], rhs)
        out = bind(lhs, new_rhs, feature_group_count=1, batch_group_count=1, **params)
        return _reshape_axis_out_of(out_spec[1], size, out), out_spec[1]
    # Groups stay outermost in the out features: (groups, vmapped, per-group features).
    groups = max(feature_group_count, batch_group_count)
    new_rhs = _reshape_axis_out_of(rhs_spec[0] + int(rd <= rhs_spec[0]), groups, rhs)
    new_rhs = _reshape_axis_into(rd + int(rhs_spec[0] < rd), rhs_spec[0] + 1, new_rhs)
    new_rhs = _reshape_axis_into(rhs_spec[0], rhs_spec[0], new_rhs)
    out = bind(lhs, new_rhs, feature_group_count=feature_group_count,
               batch_group_count=batch_group_count, **params)
    out = _reshape_axis_out_of(out_spec[1], groups, out)
    out = _reshape_axis_out_of(out_spec[1] + 1, size, out)
    out = _reshape_axis_into(out_spec[1], out_spec[1] + 1, out)
    return out, out_spec[1]


conv_general_dilated_p.batch = _conv_batch
