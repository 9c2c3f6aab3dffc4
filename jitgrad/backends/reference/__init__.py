"""The reference backend: evaluates the IR one equation at a time with numpy.

Slow and simple, and always right: every other backend and every fused kernel is tested
against it. It runs each primitive's ``impl`` rule directly, without the trace machinery.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...core.evaluate import evaluate  # the op-by-op numpy interpreter (also used by ops)
from ...core.ir import ClosedIR
from ...core.trace import to_numpy


def compile(closed: ClosedIR, options: dict | None = None) -> Callable[..., list[np.ndarray]]:
    """An executable for ``closed``: call it with the flat argument arrays."""
    ir = closed.ir
    consts = [to_numpy(c) for c in closed.consts]

    def run(*args):
        return evaluate(ir, consts, args)
    run.ir = ir
    return run
