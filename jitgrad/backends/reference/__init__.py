"""The reference backend: evaluates the IR one equation at a time with numpy.

Slow and simple, and always right: every other backend and every fused kernel is tested
against it. It runs each primitive's ``impl`` rule directly, without the trace machinery.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ...core.ir import IR, ClosedIR, Literal
from ...core.trace import to_numpy


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


def compile(closed: ClosedIR, options: dict | None = None) -> Callable[..., list[np.ndarray]]:
    """An executable for ``closed``: call it with the flat argument arrays."""
    ir = closed.ir
    consts = [to_numpy(c) for c in closed.consts]

    def run(*args):
        return evaluate(ir, consts, args)
    run.ir = ir
    return run
