"""Optimisation passes on the IR: ``ClosedIR -> ClosedIR`` rewrites, each in its own module.

=======================  =====================================================  =========
pass                     what it does                                           module
=======================  =====================================================  =========
``simplify``             exact algebraic rewrites (x*1, neg neg, layout chains)  simplify
``fold_constants``       evaluates equations on literals / small constants      constant_folding
``cse``                  merges equations computing the same value              cse
``fold_transposes``      lets dot_general read transposed operands in place     dot_transpose
``dce``                  drops unused equations and constants                   dce
``matmul_chains``        cheapest association of chains of matrix products      matmul_chain
=======================  =====================================================  =========

A pass never mutates its input; it returns the input object itself when it has nothing
to change, which is how ``optimize`` finds its fixed point cheaply. Every rewrite keeps
results bit-for-bit (NaN, inf and -0.0 included) except the matmul-chain
re-association, which may change float results in their last bits (see matmul_chain).

Primitives opt into two conventions, read with ``getattr`` (``_ir_tools``):
``has_effects = True`` (DCE keeps the equation, CSE and folding leave it alone) and
``no_cse = True`` (identical equations are not merged: remat's recomputation survives).

``optimize(closed)`` is what ``jit`` runs; ``optimize_with_report(closed)`` also returns a
``PassReport`` per pass run: the IR after it and what it changed, for ``jitgrad.explain``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..core.ir import ClosedIR
from ._ir_tools import run_pass
from .constant_folding import _fold as _fold_core, fold_constants
from .cse import _cse, eliminate_common_subexpressions
from .dce import _dce, eliminate_dead_code
from .dot_transpose import _fold as _fold_transposes_core, fold_transposes_into_dot
from .matmul_chain import _reorder, reorder_matmul_chains
from .simplify import _simplify, simplify

__all__ = ["optimize", "optimize_with_report", "PassReport", "PIPELINE", "simplify",
           "fold_constants", "fold_transposes_into_dot", "reorder_matmul_chains",
           "eliminate_common_subexpressions", "eliminate_dead_code"]

# (name, core) in the order one round runs them. simplify first (it composes transpose
# chains before they are folded into dots, and removes no-op reshapes that would hide a
# matmul chain). cse before the two dot passes and dce just before matmul_chains: both dot
# passes rewrite a product only when it has a single reader, and a product computed twice
# or read by a dead equation would look shared, or private when it is not.
PIPELINE: tuple[tuple[str, Callable], ...] = (
    ("simplify", _simplify),
    ("fold_constants", _fold_core),
    ("cse", _cse),
    ("fold_transposes", _fold_transposes_core),
    ("dce", _dce),
    ("matmul_chains", _reorder),
)

# Every pass only removes or cheapens equations, so rounds stop early; this is a backstop.
MAX_ROUNDS = 10


@dataclass(frozen=True)
class PassReport:
    """One pass run: its name, the IR after it, and what it changed in words."""

    name: str
    closed: ClosedIR
    description: str      # e.g. "cse: merged 3 equations (exp b, mul c d, ...)"
    changed: bool
    round: int

    def __str__(self) -> str:
        return self.description


def _run(closed: ClosedIR, reports: list[PassReport] | None) -> ClosedIR:
    for round_ in range(MAX_ROUNDS):
        changed_this_round = False
        for name, core in PIPELINE:
            after, log = run_pass(core, closed)
            changed = after is not closed
            changed_this_round |= changed
            # The first round lists every pass; later rounds only those that did something.
            if reports is not None and (changed or round_ == 0):
                summary = log.summary() if changed else "no change"
                reports.append(PassReport(name, after, f"{name}: {summary}", changed, round_))
            closed = after
        if not changed_this_round:
            break
    return closed


def optimize(closed: ClosedIR) -> ClosedIR:
    """Run the pass pipeline to a fixed point; returns ``closed`` itself if nothing applies."""
    return _run(closed, None)


def optimize_with_report(closed: ClosedIR) -> tuple[ClosedIR, list[PassReport]]:
    """Like ``optimize``, also returning a ``PassReport`` for each pass run (see PassReport)."""
    reports: list[PassReport] = []
    return _run(closed, reports), reports
