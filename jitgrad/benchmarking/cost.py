"""Bytes and flops of IR programs and parts of them, for ``jitgrad bench`` and ``explain``.

The model is the one the built-in suite states by hand (see ``suite.py``): bytes are the
compulsory traffic (each value read from outside once, each result written once), flops
count one per arithmetic result element (transcendentals included), and a contraction
counts ``2 * output elements * contracted size``. It works on the IR by duck typing
(``eqn.primitive.kind``/``name``, ``eqn.params``, ``var.aval``), so this module imports
nothing from jitgrad.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

# Elementwise primitives that move or relabel data without arithmetic.
_FREE = frozenset({"convert_element_type", "copy", "stop_gradient", "iota",
                   "bitcast_convert_type", "broadcast_in_dim", "reshape", "squeeze"})


def nbytes(aval: Any) -> int:
    """Bytes of a value of abstract value ``aval``."""
    return int(math.prod(aval.shape)) * aval.dtype.itemsize


def _subirs(params: dict) -> Iterable[Any]:
    stack = list(params.values())
    while stack:
        x = stack.pop()
        inner = getattr(x, "ir", None)
        if hasattr(x, "eqns"):
            yield x
        elif inner is not None and hasattr(inner, "eqns"):
            yield inner
        elif isinstance(x, (tuple, list)):
            stack.extend(x)


def eqn_flops(eqn: Any) -> int:
    """Floating-point operations of one equation under the model above."""
    prim = eqn.primitive
    name, kind = prim.name, prim.kind
    if kind == "elementwise":
        return 0 if name in _FREE else sum(int(math.prod(v.aval.shape)) for v in eqn.outvars)
    if kind == "reduction":
        return int(math.prod(eqn.invars[0].aval.shape))
    if name == "dot_general":
        (lc, _), _ = eqn.params["dimension_numbers"]
        k = math.prod(eqn.invars[0].aval.shape[a] for a in lc)
        return 2 * int(math.prod(eqn.outvars[0].aval.shape)) * int(k)
    if name.startswith("conv"):
        # Each output element: 2 * (input features per group) * (window size) flops; the
        # kernel's output-feature axis is rhs_spec[0] of the dimension numbers (O of OIHW).
        rhs = eqn.invars[1].aval.shape
        spec = getattr(eqn.params.get("dimension_numbers"), "rhs_spec", None)
        o_axis = spec[0] if spec else 0
        per_out = math.prod(rhs) // max(rhs[o_axis], 1) if rhs else 1
        return 2 * int(math.prod(eqn.outvars[0].aval.shape)) * int(per_out)
    if kind == "control":
        trips = int(eqn.params.get("length", 1) or 1)
        subs = list(_subirs(eqn.params))
        if name == "cond":      # one branch runs: count the most expensive
            return max((ir_flops(s) for s in subs), default=0)
        return trips * sum(ir_flops(s) for s in subs)
    return 0


def ir_flops(ir: Any) -> int:
    """Flops of a whole IR (or ClosedIR)."""
    ir = getattr(ir, "ir", ir)
    return sum(eqn_flops(e) for e in ir.eqns)


def io_bytes(in_avals: Sequence[Any], out_avals: Sequence[Any]) -> int:
    """Compulsory traffic of a program: its inputs read once, its outputs written once."""
    return sum(nbytes(a) for a in in_avals) + sum(nbytes(a) for a in out_avals)


def group_bytes(eqns: Sequence[Any], live_out: set[int] | None = None) -> tuple[int, int]:
    """``(read, written)`` bytes of a group of equations run as one kernel.

    Read: every variable the group uses but does not produce (once each). Written: every
    variable it produces that is read after it (``live_out``: ids of such variables; when
    ``None``, every output counts).
    """
    produced = {id(v) for e in eqns for v in e.outvars}
    read, seen = 0, set()
    for e in eqns:
        for a in e.invars:
            if hasattr(a, "value") or id(a) in produced or id(a) in seen:
                continue       # literals are immediates; internal values stay in registers
            seen.add(id(a))
            read += nbytes(a.aval)
    written = sum(nbytes(v.aval) for e in eqns for v in e.outvars
                  if live_out is None or id(v) in live_out)
    return read, written
