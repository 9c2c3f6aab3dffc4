"""Evaluate an IR on numpy values with each primitive's ``impl``: the ground-truth interpreter.

The reference backend (``jitgrad/backends/reference``) compiles an IR to this loop, and the
``impl`` rules of primitives that hold sub-programs (``cond``, ``while``, ``scan`` in
``jitgrad/ops/control.py``) run their sub-IRs with it. It lives in the core because it
needs nothing but the IR, so both can import it downward.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .ir import IR, Eqn, Literal


def run_equations(ir: IR, consts: Sequence[Any], args: Sequence[Any],
                  apply: Callable[[Eqn, list], Any], wrap: Callable[[Any], Any] = lambda x: x
                  ) -> list[Any]:
    """Walk ``ir`` in order: ``apply(eqn, operand_values)`` computes each equation (one value,
    or a sequence for multiple-result primitives); ``wrap`` is applied to every result."""
    env: dict[int, Any] = {}
    for v, x in zip(ir.constvars, consts):
        env[id(v)] = x
    for v, x in zip(ir.invars, args):
        env[id(v)] = x

    def read(a):
        return a.value if type(a) is Literal else env[id(a)]

    for eqn in ir.eqns:
        out = apply(eqn, [read(a) for a in eqn.invars])
        if eqn.primitive.multiple_results:
            for v, o in zip(eqn.outvars, out):
                env[id(v)] = wrap(o)
        else:
            env[id(eqn.outvars[0])] = wrap(out)
    return [read(a) for a in ir.outvars]


def _impl(eqn: Eqn, operands: list) -> Any:
    return eqn.primitive.impl(*operands, **eqn.params)


def evaluate(ir: IR, consts: Sequence[Any], args: Sequence[Any]) -> list[np.ndarray]:
    """Run ``ir`` on concrete numpy inputs, returning numpy outputs."""
    return [np.asarray(o) for o in run_equations(ir, consts, args, _impl, np.asarray)]
