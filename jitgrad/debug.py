"""Debugging compiled programs: print runtime values, find the operation that made a NaN.

``jitgrad.debug.print(fmt, *args, **kwargs)`` prints values *while the program runs*,
under ``jit``, ``grad`` and ``vmap`` alike, in program order, like ``jax.debug.print``::

    @jit
    def step(w, x):
        loss = jnp.mean((x @ w) ** 2)
        jitgrad.debug.print("loss {}", loss)      # prints the number, not a tracer
        return loss

``fmt`` is a ``str.format`` string; array arguments arrive as numpy arrays, other
arguments (strings, None, ...) are kept as they are. Under ``grad`` it prints the primal
values once (the forward pass); under ``vmap`` it prints once per example, in order (as
JAX does). It is an equation of the program (``debug_callback``, see
``jitgrad/ops/debugging.py``) that the optimisation passes never remove or merge.
``jitgrad.debug.callback(fn, *args)`` is the general form: it calls ``fn`` on the values.

``jitgrad.config.update("debug_nans", True)`` checks every result of a jitted call for
NaN. When one is found, the call is replayed equation by equation on the reference
interpreter to find the first equation whose result contains a NaN, and a
:class:`FloatingPointError` (``jitgrad.debug.NaNError``) is raised naming that operation
and the user's source line that created it. Like JAX, jitgrad checks only the outermost
jitted call (not programs inlined into an outer trace) and only floating-point results.
"""
from __future__ import annotations

import builtins
import string
from typing import Any, Callable, Sequence

import numpy as np

from .core.array import Array
from .core.config import config
from .core.errors import JitgradError
from .core.ir import IR, ClosedIR, Literal
from .core.pytree import tree_flatten, tree_unflatten
from .core.trace import to_numpy
from .ops.debugging import debug_callback_p

__all__ = ["print", "callback", "NaNError", "check_nans", "find_first_nan"]


# ----------------------------------------------------------------------------- callbacks

def _is_dynamic(leaf: Any) -> bool:
    """Whether a leaf is a runtime value (an operand of the equation) or kept static."""
    return isinstance(leaf, (Array, np.ndarray, np.generic, int, float, complex))


def _static_key(value: Any) -> Any:
    try:
        hash(value)
        return (type(value), value)
    except TypeError:      # an unhashable static leaf compares by identity
        return (type(value), id(value))


class _Callback:
    """The hashable ``callback`` param: the user's function, the argument tree and the
    static leaves, so that the equation carries only the runtime values as operands."""

    __slots__ = ("fn", "treedef", "static", "dynamic_mask", "label")

    def __init__(self, fn: Callable, treedef, static: tuple, dynamic_mask: tuple, label: str):
        self.fn, self.treedef, self.static = fn, treedef, static
        self.dynamic_mask, self.label = dynamic_mask, label

    def __call__(self, *values: Any) -> None:
        dyn = iter(values)
        stat = iter(self.static)
        leaves = [np.asarray(next(dyn)) if is_dyn else next(stat) for is_dyn in self.dynamic_mask]
        args, kwargs = tree_unflatten(self.treedef, leaves)
        self.fn(*args, **kwargs)

    def _key(self) -> tuple:
        return (self.fn, self.treedef, tuple(_static_key(s) for s in self.static),
                self.dynamic_mask)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Callback) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        # Printed in the IR, whose text is hashed into cache keys: keep it deterministic.
        return self.label


def _bind(fn: Callable, fmt: str | None, label: str, args: tuple, kwargs: dict) -> None:
    leaves, treedef = tree_flatten((args, kwargs))
    mask = tuple(_is_dynamic(x) for x in leaves)
    dynamic = [x for x, d in zip(leaves, mask) if d]
    static = tuple(x for x, d in zip(leaves, mask) if not d)
    cb = _Callback(fn, treedef, static, mask, label)
    debug_callback_p.bind(*dynamic, callback=cb, fmt=fmt)


class _ArrayFormatter(string.Formatter):
    """``str.format`` that writes an array with an empty spec as ``str(array)``: a float32
    scalar prints as ``0.6931472``, not as the float64 digits ``format()`` would give."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if not format_spec and isinstance(value, np.ndarray):
            return str(value)
        return super().format_field(value, format_spec)


_FORMATTER = _ArrayFormatter()


class _Formatter:
    """Prints ``fmt.format(*args, **kwargs)``; equal formatters are equal (cache hits)."""

    __slots__ = ("fmt",)

    def __init__(self, fmt: str):
        self.fmt = fmt

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        builtins.print(_FORMATTER.format(self.fmt, *args, **kwargs), flush=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Formatter) and other.fmt == self.fmt

    def __hash__(self) -> int:
        return hash((_Formatter, self.fmt))


def print(fmt: str, *args: Any, ordered: bool = False, **kwargs: Any) -> None:  # noqa: A001
    """Print ``fmt.format(*args, **kwargs)`` with the runtime values of ``args`` (``jax.debug.print``).

    Works eagerly and inside ``jit``, ``grad`` and ``vmap``; calls run in program order
    (``ordered`` is accepted for compatibility: jitgrad always keeps program order).
    """
    if not isinstance(fmt, str):
        raise TypeError(f"jitgrad.debug.print: the format must be a str, got {type(fmt).__name__}")
    _bind(_Formatter(fmt), fmt, f"print({fmt!r})", args, kwargs)


def callback(fn: Callable[..., Any], *args: Any, ordered: bool = False, **kwargs: Any) -> None:
    """Call ``fn(*args, **kwargs)`` with runtime values from inside a program (``jax.debug.callback``).

    ``fn``'s return value is ignored. Array arguments arrive as numpy arrays.
    """
    if not callable(fn):
        raise TypeError(f"jitgrad.debug.callback: {type(fn).__name__} is not callable")
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    _bind(fn, None, f"callback({name})", args, kwargs)


# ----------------------------------------------------------------------------- debug_nans

class NaNError(JitgradError, FloatingPointError):
    """A NaN appeared in a jitted program while ``debug_nans`` is on (JAX: FloatingPointError)."""


def nan_checks_enabled() -> bool:
    """Whether ``debug_nans`` (or its JAX spelling ``jax_debug_nans``) is on."""
    return bool(config.read("debug_nans") or config.read("jax_debug_nans"))


class _NanChecking:
    """``nan_checking.on`` mirrors the flags, so jit's hot path reads one attribute."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = nan_checks_enabled()


nan_checking = _NanChecking()


def _on_config_update(name: str, value: Any) -> None:
    if name in ("debug_nans", "jax_debug_nans"):
        nan_checking.on = nan_checks_enabled()


config.on_update(_on_config_update)


def _has_nan(x: Any) -> bool:
    a = np.asarray(x)
    return a.dtype.kind in "fc" and bool(np.isnan(a).any())


def find_first_nan(closed: ClosedIR, args: Sequence[Any]):
    """Replay ``closed`` on the reference interpreter, equation by equation.

    Returns ``(eqn, index, operand_had_nan)`` for the first equation whose result holds a
    NaN, or ``None`` when the replay produces none. Effectful equations (debug prints) are
    skipped so that the replay prints nothing twice.
    """
    ir: IR = closed.ir
    env: dict[int, Any] = {}
    for v, c in zip(ir.constvars, closed.consts):
        env[id(v)] = to_numpy(c)
    for v, x in zip(ir.invars, args):
        env[id(v)] = np.asarray(x)

    def read(a):
        return a.value if type(a) is Literal else env[id(a)]

    with np.errstate(all="ignore"):
        for i, eqn in enumerate(ir.eqns):
            if getattr(eqn.primitive, "has_effects", False):
                continue
            operands = [read(a) for a in eqn.invars]
            out = eqn.primitive.impl(*operands, **eqn.params)
            outs = list(out) if eqn.primitive.multiple_results else [out]
            for v, o in zip(eqn.outvars, outs):
                env[id(v)] = np.asarray(o)
            if any(_has_nan(o) for o in outs):
                return eqn, i, any(_has_nan(o) for o in operands)
    return None


def _signature(eqn) -> str:
    ins = ", ".join(a.aval.str_short() for a in eqn.invars)
    outs = ", ".join(v.aval.str_short() for v in eqn.outvars)
    return f"({ins}) -> {outs}"


def check_nans(closed: ClosedIR, args: Sequence[Any], outs: Sequence[Any], name: str) -> None:
    """Raise :class:`NaNError` if an output of the jitted call ``name`` holds a NaN.

    Called by ``jit`` after each outermost call while ``debug_nans`` is on; ``args`` and
    ``outs`` are the flat numpy inputs and outputs of the executable.
    """
    bad = [i for i, o in enumerate(outs) if _has_nan(o)]
    if not bad:
        return
    found = find_first_nan(closed, args)
    if found is None:
        raise NaNError(
            f"debug_nans: output {bad[0]} of jit({name}) contains NaN, but replaying the program "
            "on the reference interpreter produced none: the compiled kernels and the reference "
            "disagree (fast-math, or a backend bug).",
            hint="Run with jax_platform_name='reference' to compare, and report the difference.",
            find_source=False)
    eqn, index, from_input = found
    # No earlier equation made a NaN, so a NaN operand came in through an argument.
    cause = (f" (an operand already held NaN: it came from an argument of jit({name}))"
             if from_input else "")
    msg = (f"debug_nans: invalid value (NaN) encountered in {eqn.primitive.name} "
           f"{_signature(eqn)}, equation {index} of jit({name}){cause}")
    hint = None
    if eqn.primitive.kind == "control":
        hint = "The NaN appears inside this control-flow primitive's body; debug.print inside it can narrow it down."
    raise NaNError(msg, hint=hint, source=eqn.source, find_source=eqn.source is None)
