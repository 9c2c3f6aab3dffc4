"""Hypothesis strategies for random jitgrad programs, for testing backends against the
reference interpreter (the CPU backend now, the CUDA backend later).

``programs(dtype=...)`` draws a ``RandomProgram``: input arrays over random
broadcastable shapes (size-0 and size-1 dimensions included) holding NaN, +-inf, zeros
and ordinary values, and a random DAG of ``jitgrad.numpy`` operations over them:
elementwise ops with broadcasting, reductions (any axes, keepdims or not), row-wise
patterns (softmax, logsumexp, normalisation), layout ops (transpose, reshape, slice,
flip, broadcast, expand_dims) and matmuls. Calling the program runs it on whatever trace
is current, so the same object is the eager oracle and the function to ``jit``.

Operations are chosen to be *numerically stable* (``log(|x| + 1)``, division by
``|y| + 1``): backends may legitimately round differently (a different summation order),
and an unstable op would turn a last-bit difference into NaN versus a number. Special
values still flow through every op from the inputs.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from hypothesis import strategies as st

import jitgrad.numpy as jnp

SPECIAL_FLOATS = (np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0)
DIM_SIZES = (0, 1, 2, 3, 5)


def _relu(x):
    return jnp.maximum(x, 0)


def _softmax(x):
    m = jnp.max(x, axis=-1, keepdims=True)
    e = jnp.exp(x - m)
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _logsumexp(x):
    m = jnp.max(x, axis=-1, keepdims=True)
    return jnp.log(jnp.sum(jnp.exp(x - m), axis=-1)) + jnp.squeeze(m, -1)


def _normalize(x):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1.0)


UNARY: dict[str, Callable] = {
    "neg": jnp.negative,
    "abs": jnp.abs,
    "exp_tanh": lambda x: jnp.exp(jnp.tanh(x)),
    "log1abs": lambda x: jnp.log(jnp.abs(x) + 1),
    "sqrt_abs": lambda x: jnp.sqrt(jnp.abs(x)),
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "relu": _relu,
    "square_tanh": lambda x: jnp.square(jnp.tanh(x)),
    "floor": jnp.floor,
    "sign": jnp.sign,
    "double": lambda x: x * 2 + 1,
}
BINARY: dict[str, Callable] = {
    "add": jnp.add,
    "sub": jnp.subtract,
    "mul": lambda x, y: jnp.tanh(x) * y,
    "div": lambda x, y: x / (jnp.abs(y) + 1),
    "max": jnp.maximum,
    "min": jnp.minimum,
    "where": lambda x, y: jnp.where(x > y, x, y * 0.5),
}
REDUCTIONS: dict[str, Callable] = {
    "sum": jnp.sum,
    "max": jnp.max,
    "min": jnp.min,
    "mean": jnp.mean,
}
ROWWISE: dict[str, Callable] = {
    "softmax": _softmax,
    "logsumexp": _logsumexp,
    "normalize": _normalize,
}


@dataclasses.dataclass
class RandomProgram:
    """A random program: call it with ``*inputs`` (eagerly, or under ``jit``)."""

    inputs: list[np.ndarray]
    steps: list[tuple]          # (op kind, name, operand indices, extra) per new value
    outputs: list[int]          # indices of the values returned
    shapes: list[tuple]         # shape of every value (inputs first)

    def __call__(self, *args):
        vals = list(args)
        for kind, name, operands, extra in self.steps:
            xs = [vals[i] for i in operands]
            vals.append(_apply(kind, name, xs, extra))
        return [vals[i] for i in self.outputs]

    def __repr__(self) -> str:
        n = len(self.inputs)
        lines = [f"inputs: " + ", ".join(f"v{i}:{a.dtype}{list(a.shape)}"
                                         for i, a in enumerate(self.inputs))]
        for j, (kind, name, operands, extra) in enumerate(self.steps):
            args = ", ".join(f"v{i}" for i in operands)
            lines.append(f"v{n + j}{list(self.shapes[n + j])} = {kind}.{name}({args}"
                         + (f", {extra}" if extra is not None else "") + ")")
        lines.append("outputs: " + ", ".join(f"v{i}" for i in self.outputs))
        return "\n".join(lines)


def _apply(kind: str, name: str, xs: list, extra):
    if kind == "unary":
        return UNARY[name](xs[0])
    if kind == "binary":
        return BINARY[name](xs[0], xs[1])
    if kind == "reduce":
        axis, keepdims = extra
        return REDUCTIONS[name](xs[0], axis=axis, keepdims=keepdims)
    if kind == "rowwise":
        return ROWWISE[name](xs[0])
    if kind == "matmul":
        return jnp.matmul(xs[0], xs[1])
    if kind == "layout":
        x = xs[0]
        if name == "transpose":
            return jnp.transpose(x, extra)
        if name == "reshape":
            return jnp.reshape(x, extra)
        if name == "slice":
            axis, start, step = extra
            index = [slice(None)] * x.ndim
            index[axis] = slice(start, None, step)
            return x[tuple(index)]
        if name == "flip":
            return jnp.flip(x, axis=extra)
        if name == "broadcast":
            return jnp.broadcast_to(x, extra)
        if name == "expand_dims":
            return jnp.expand_dims(x, extra)
    raise ValueError((kind, name))


def _broadcastable(a: tuple, b: tuple) -> tuple | None:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


@st.composite
def shapes(draw, max_rank: int = 3) -> tuple:
    """A random base shape, sizes drawn from DIM_SIZES (0 and 1 included)."""
    rank = draw(st.integers(0, max_rank))
    return tuple(draw(st.sampled_from(DIM_SIZES)) for _ in range(rank))


@st.composite
def arrays(draw, shape: tuple, dtype) -> np.ndarray:
    """Values ~ N(0, 2) with some special values (NaN, +-inf, zeros) mixed in."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * 2).astype(dtype)
    if a.size:
        n_special = draw(st.integers(0, min(3, a.size)))
        flat = a.reshape(-1)
        for _ in range(n_special):
            pos = draw(st.integers(0, a.size - 1))
            flat[pos] = draw(st.sampled_from(SPECIAL_FLOATS))
    return a


@st.composite
def programs(draw, dtype=np.float32, max_inputs: int = 3, max_steps: int = 8,
             max_rank: int = 3) -> RandomProgram:
    """A random program over broadcastable inputs (see the module docstring)."""
    base = draw(shapes(max_rank))
    n_in = draw(st.integers(1, max_inputs))
    in_shapes = []
    for _ in range(n_in):
        # Broadcastable to the base: drop leading axes, set some axes to 1.
        drop = draw(st.integers(0, len(base)))
        s = list(base[drop:])
        for i in range(len(s)):
            if draw(st.booleans()) and draw(st.booleans()):
                s[i] = 1
        in_shapes.append(tuple(s))
    inputs = [draw(arrays(s, dtype)) for s in in_shapes]
    shapes_ = list(in_shapes)
    steps = []
    n_steps = draw(st.integers(1, max_steps))
    for _ in range(n_steps):
        kind = draw(st.sampled_from(("unary", "binary", "binary", "reduce", "rowwise", "layout",
                                     "matmul")))
        i = draw(st.integers(0, len(shapes_) - 1))
        s = shapes_[i]
        step, out = None, None
        if kind == "binary":
            partners = [j for j, t in enumerate(shapes_) if _broadcastable(s, t) is not None]
            j = draw(st.sampled_from(partners))
            step = ("binary", draw(st.sampled_from(sorted(BINARY))), (i, j), None)
            out = _broadcastable(s, shapes_[j])
        elif kind == "reduce":
            if s:
                axis = draw(st.one_of(st.none(), st.integers(0, len(s) - 1)))
            else:
                axis = None
            keepdims = draw(st.booleans())
            name = draw(st.sampled_from(sorted(REDUCTIONS)))
            red_axes = range(len(s)) if axis is None else [axis]
            if name in ("max", "min") and any(s[a] == 0 for a in red_axes):
                name = "sum"     # max of an empty axis is an error in numpy semantics
            step = ("reduce", name, (i,), (axis, keepdims))
            if keepdims:
                out = tuple(1 if (axis is None or k == axis) else d for k, d in enumerate(s))
            else:
                out = tuple(d for k, d in enumerate(s) if axis is not None and k != axis)
        elif kind == "rowwise" and s and s[-1] > 0:   # max over an empty row is an error
            step = ("rowwise", draw(st.sampled_from(sorted(ROWWISE))), (i,), None)
            out = s[:-1] if step[1] == "logsumexp" else s
        elif kind == "layout" and s:
            what = draw(st.sampled_from(("transpose", "reshape", "slice", "flip", "broadcast",
                                         "expand_dims")))
            if what == "transpose":
                perm = tuple(draw(st.permutations(range(len(s)))))
                step, out = ("layout", "transpose", (i,), perm), tuple(s[p] for p in perm)
            elif what == "reshape":
                n = int(np.prod(s))
                new = (n,) if draw(st.booleans()) or n == 0 else (1, n)
                step, out = ("layout", "reshape", (i,), new), new
            elif what == "slice":
                axis = draw(st.integers(0, len(s) - 1))
                start = draw(st.integers(0, 1))
                stride = draw(st.integers(1, 2))
                step = ("layout", "slice", (i,), (axis, start, stride))
                out = tuple(len(range(start, d, stride)) if k == axis else d for k, d in enumerate(s))
            elif what == "flip":
                axis = draw(st.integers(0, len(s) - 1))
                step, out = ("layout", "flip", (i,), axis), s
            elif what == "broadcast":
                new = (draw(st.sampled_from((1, 2, 3))),) + s
                step, out = ("layout", "broadcast", (i,), new), new
            else:
                axis = draw(st.integers(0, len(s)))
                step, out = ("layout", "expand_dims", (i,), axis), s[:axis] + (1,) + s[axis:]
        elif kind == "matmul" and len(s) in (1, 2):
            k = s[-1]
            partners = [j for j, t in enumerate(shapes_) if len(t) in (1, 2)
                        and t[0] == k and not (len(s) == 1 and len(t) == 1)]
            if partners:
                j = draw(st.sampled_from(partners))
                t = shapes_[j]
                out = s[:-1] + t[1:]
                step = ("matmul", "matmul", (i, j), None)
        if step is None:
            step = ("unary", draw(st.sampled_from(sorted(UNARY))), (i,), None)
            out = s
        steps.append(step)
        shapes_.append(tuple(out))
    n_vals = len(shapes_)
    extra = draw(st.lists(st.integers(n_in, n_vals - 1), max_size=2, unique=True))
    outputs = sorted(set(extra) | {n_vals - 1})
    return RandomProgram(inputs, steps, outputs, shapes_)
