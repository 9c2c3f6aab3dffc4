"""Evaluate an IR on numpy values with each primitive's ``impl``: the ground-truth interpreter.

The reference backend (``jitgrad/backends/reference``) compiles an IR to this loop, and the
``impl`` rules of primitives that hold sub-programs (``cond``, ``while``, ``scan`` in
``jitgrad/ops/control.py``) run their sub-IRs with it. It lives in the core because it
needs nothing but the IR, so both can import it downward.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .ir import IR, Literal


def evaluate(ir: IR, consts: Sequence[Any], args: Sequence[Any]) -> list[np.ndarray]:
    """Run ``ir`` on concrete numpy inputs, returning numpy outputs."""
    env: dict[int, Any] = {}
    for v, x in zip(ir.constvars, consts):
        env[id(v)] = x
    for v, x in zip(ir.invars, args):
        env[id(v)] = x

    def read(a):
        return a.value if type(a) is Literal else env[id(a)]

    for eqn in ir.eqns:
        out = eqn.primitive.impl(*[read(a) for a in eqn.invars], **eqn.params)
        if eqn.primitive.multiple_results:
            for v, o in zip(eqn.outvars, out):
                env[id(v)] = np.asarray(o)
        else:
            env[id(eqn.outvars[0])] = np.asarray(out)
    return [np.asarray(read(a)) for a in ir.outvars]
