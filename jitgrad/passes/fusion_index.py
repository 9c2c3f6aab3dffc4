"""Index maps: how a fused kernel reads a layout op's output without materialising it.

A layout op (broadcast_in_dim, reshape, transpose, squeeze, rev, slice, pad,
concatenate) and ``iota`` compute no arithmetic: element ``idx`` of the output is some
element of an operand (or, for pad/concatenate, one of several, chosen by a condition).
So a kernel that consumes a layout op's output can read its operand directly, at a
rewritten index, instead of reading a materialised copy. This module holds those
rewrites, one rule per primitive, shared by the fusion pass (to decide what it can fuse)
and by every backend (to emit the reads).

Index and value expressions are Python expression strings over the kernel's loop
variables (``i0``, ``i1``, ...): both backends generate Python (numba and numba.cuda), so
one spelling serves all. ``read_expr`` resolves a variable at an index through any chain
of layout ops, asking a ``ReadContext`` (the backend, or the fusion pass) how to read
the variables it reaches: a scalar computed in the same kernel, an element of an array
in memory, or a literal.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..core.ir import Eqn, Literal, Var

Index = tuple[str, ...]

# The primitives this module can read through (iota is a leaf: its value is its index).
VIEW_PRIMITIVES = frozenset({"broadcast_in_dim", "reshape", "transpose", "squeeze", "rev",
                             "slice", "pad", "concatenate", "iota"})


class NotReadable(Exception):
    """The variable cannot be read at this index inside the kernel; ``str(e)`` says why."""


class ReadContext:
    """What ``read_expr`` asks about the variables it reaches. Subclassed by each user."""

    def view_eqn(self, var: Var) -> Eqn | None:
        """The layout/iota equation to read ``var`` through, or None if ``var`` is a leaf."""
        raise NotImplementedError

    def leaf(self, var: Var, idx: Index) -> str:
        """Expression for element ``idx`` of a leaf variable (raise NotReadable if impossible)."""
        raise NotImplementedError

    def literal(self, lit: Literal) -> str:
        """Expression for a scalar literal."""
        raise NotImplementedError

    def cast_index(self, expr: str, dtype: np.dtype) -> str:
        """Expression converting the integer ``expr`` to ``dtype`` (iota)."""
        raise NotImplementedError


def read_expr(atom: Var | Literal, idx: Sequence[str], ctx: ReadContext) -> str:
    """Expression for element ``idx`` of ``atom``, reading through layout ops and iota."""
    if isinstance(atom, Literal):
        return ctx.literal(atom)
    idx = tuple(idx)
    eqn = ctx.view_eqn(atom)
    if eqn is None:
        return ctx.leaf(atom, idx)
    return read_view_eqn(eqn, idx, ctx)


def read_view_eqn(eqn: Eqn, idx: Sequence[str], ctx: ReadContext) -> str:
    """Expression for element ``idx`` of the output of the layout/iota equation ``eqn``."""
    if eqn.primitive.name == "iota":
        return ctx.cast_index(idx[eqn.params["dimension"]], eqn.outvars[0].aval.dtype)
    return _RULES[eqn.primitive.name](eqn, tuple(idx), lambda a, i: read_expr(a, i, ctx))


# ------------------------------------------------------------------ expression helpers

def affine(expr: str, scale: int = 1, offset: int = 0) -> str:
    """``offset + scale * expr``, written without no-op terms."""
    if expr == "0":
        return str(offset)
    term = expr if scale == 1 else f"{scale} * {expr}"
    if offset == 0:
        return term if scale == 1 else f"({term})"
    if offset < 0:
        return f"({term} - {-offset})"
    return f"({term} + {offset})"


def conditional(then: str, cond: str, other: str) -> str:
    return f"({then} if {cond} else {other})"


def linear_index(idx: Sequence[str], shape: Sequence[int]) -> str:
    """Row-major flat index of ``idx`` in ``shape``."""
    terms, stride = [], 1
    for e, n in reversed(list(zip(idx, shape))):
        if n != 1 and e != "0":
            terms.append(e if stride == 1 else f"{stride} * {e}")
        stride *= n
    if not terms:
        return "0"
    return terms[0] if len(terms) == 1 else "(" + " + ".join(reversed(terms)) + ")"


def unravel(flat: str, shape: Sequence[int]) -> list[str]:
    """Row-major index expressions of the flat index ``flat`` in ``shape``."""
    out, stride = [], 1
    strides = []
    for n in reversed(shape):
        strides.append(stride)
        stride *= n
    strides.reverse()
    for k, (n, s) in enumerate(zip(shape, strides)):
        if n == 1:
            out.append("0")
            continue
        e = flat if s == 1 else f"({flat} // {s})"
        if k > 0:
            e = f"({e} % {n})"
        out.append(e)
    return out


def reshape_index(idx: Sequence[str], out_shape: Sequence[int], in_shape: Sequence[int]) -> list[str]:
    """Index into ``in_shape`` of element ``idx`` of a row-major reshape to ``out_shape``.

    Axes are paired into groups of equal size products (XLA's reshape decomposition), so
    inserting or removing size-1 axes, or reshaping untouched axes, keeps plain indices;
    only axes that are really merged or split get division and remainder.
    """
    res = ["0"] * len(in_shape)
    if int(np.prod(in_shape, dtype=np.int64)) == 0:
        return res
    outs = [(k, n) for k, n in enumerate(out_shape) if n != 1]
    ins = [(j, n) for j, n in enumerate(in_shape) if n != 1]
    oi = ii = 0
    while oi < len(outs) and ii < len(ins):
        og, ig = [outs[oi]], [ins[ii]]
        po, pi = outs[oi][1], ins[ii][1]
        oi, ii = oi + 1, ii + 1
        while po != pi:
            if po < pi:
                og.append(outs[oi])
                po *= outs[oi][1]
                oi += 1
            else:
                ig.append(ins[ii])
                pi *= ins[ii][1]
                ii += 1
        if len(og) == 1 and len(ig) == 1:
            res[ig[0][0]] = idx[og[0][0]]
            continue
        flat = linear_index([idx[k] for k, _ in og], [n for _, n in og])
        for (j, _), e in zip(ig, unravel(flat, [n for _, n in ig])):
            res[j] = e
    return res


# ------------------------------------------------------------------ the rules
# rule(eqn, out_idx, read) -> expression; read(atom, idx) reads an operand.

Read = Callable[[object, Index], str]


def _broadcast_in_dim(eqn: Eqn, idx: Index, read: Read) -> str:
    x = eqn.invars[0]
    dims = eqn.params["broadcast_dimensions"]
    xshape = x.aval.shape
    return read(x, tuple("0" if xshape[j] == 1 else idx[d] for j, d in enumerate(dims)))


def _reshape(eqn: Eqn, idx: Index, read: Read) -> str:
    x = eqn.invars[0]
    new_sizes = tuple(eqn.params["new_sizes"])
    dims = eqn.params.get("dimensions")
    if dims is None:
        return read(x, tuple(reshape_index(idx, new_sizes, x.aval.shape)))
    tshape = [x.aval.shape[d] for d in dims]
    t_idx = reshape_index(idx, new_sizes, tshape)
    x_idx = ["0"] * x.aval.ndim
    for k, d in enumerate(dims):
        x_idx[d] = t_idx[k]
    return read(x, tuple(x_idx))


def _transpose(eqn: Eqn, idx: Index, read: Read) -> str:
    x = eqn.invars[0]
    perm = eqn.params["permutation"]
    x_idx = ["0"] * len(perm)
    for i, p in enumerate(perm):
        x_idx[p] = idx[i]
    return read(x, tuple(x_idx))


def _squeeze(eqn: Eqn, idx: Index, read: Read) -> str:
    x = eqn.invars[0]
    dims = set(eqn.params["dimensions"])
    it = iter(idx)
    return read(x, tuple("0" if d in dims else next(it) for d in range(x.aval.ndim)))


def _rev(eqn: Eqn, idx: Index, read: Read) -> str:
    x = eqn.invars[0]
    dims = set(eqn.params["dimensions"])
    shape = x.aval.shape
    return read(x, tuple(affine(e, -1, shape[d] - 1) if d in dims and shape[d] > 1 else e
                         for d, e in enumerate(idx)))


def _slice(eqn: Eqn, idx: Index, read: Read) -> str:
    x = eqn.invars[0]
    starts = eqn.params["start_indices"]
    strides = eqn.params.get("strides") or (1,) * len(starts)
    return read(x, tuple(affine(e, st, s) for e, s, st in zip(idx, starts, strides)))


def _pad(eqn: Eqn, idx: Index, read: Read) -> str:
    x, padding_value = eqn.invars
    shape = x.aval.shape
    pad_read = read(padding_value, ())
    if 0 in shape:
        return pad_read
    conds, x_idx = [], []
    for e, n, (lo, hi, interior) in zip(idx, shape, eqn.params["padding_config"]):
        rel = affine(e, 1, -lo)
        step = interior + 1
        if lo > 0:
            conds.append(f"{rel} >= 0")
        if step == 1:
            if hi > 0:
                conds.append(f"{rel} < {n}")
            x_idx.append(rel)
        else:
            conds.append(f"{rel} % {step} == 0")
            if hi > 0:
                conds.append(f"{rel} <= {(n - 1) * step}")
            x_idx.append(f"({rel} // {step})")
    x_read = read(x, tuple(x_idx))
    if not conds:
        return x_read
    return conditional(x_read, " and ".join(conds), pad_read)


def _concatenate(eqn: Eqn, idx: Index, read: Read) -> str:
    d = eqn.params["dimension"]
    parts, offset = [], 0
    for x in eqn.invars:
        n = x.aval.shape[d]
        if n:
            parts.append((x, offset, n))
        offset += n
    if not parts:   # an empty output is never read
        return read(eqn.invars[0], tuple("0" for _ in idx))

    def part_read(x, off):
        i = list(idx)
        i[d] = affine(idx[d], 1, -off)
        return read(x, tuple(i))

    x, off, _ = parts[-1]
    expr = part_read(x, off)
    for x, off, n in reversed(parts[:-1]):
        expr = conditional(part_read(x, off), f"{idx[d]} < {off + n}", expr)
    return expr


_RULES: dict[str, Callable[[Eqn, Index, Read], str]] = {
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "transpose": _transpose,
    "squeeze": _squeeze,
    "rev": _rev,
    "slice": _slice,
    "pad": _pad,
    "concatenate": _concatenate,
}
