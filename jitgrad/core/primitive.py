"""Primitives: the operations the IR is made of, each holding all of its rules.

A primitive is a name plus rules, set side by side in the module that defines it:

* ``impl(*arrays, **params)``            the numpy reference implementation (ground truth);
* ``abstract_eval(*avals, **params)``    the shape/dtype rule, raising clear errors;
* ``jvp``, ``transpose``, ``batch``      the transformation rules (autodiff, vmap);
* ``kind``                               how the fusion pass sees it.

``bind`` hands the operation to whichever trace is current: the eager evaluator, an IR
builder under ``jit``, or a transformation. Backends do not appear here; they lower
*kinds* of fused groups, keyed by primitive name.
"""
from __future__ import annotations

from typing import Any, Callable

from . import trace_state

# How the fusion pass sees a primitive.
ELEMENTWISE = "elementwise"   # out[i] = f(in0[i], in1[i], ...); rank-0 operands broadcast
REDUCTION = "reduction"       # reduces some axes of one operand
LAYOUT = "layout"             # moves data without arithmetic: reshape, transpose, slice, ...
OPAQUE = "opaque"             # its own kernel: matmul, gather/scatter, conv, sort
CONTROL = "control"           # holds sub-programs: cond, scan, while, calls
KINDS = (ELEMENTWISE, REDUCTION, LAYOUT, OPAQUE, CONTROL)

registry: dict[str, "Primitive"] = {}


class Primitive:
    """One IR operation and its rules. See the module docstring."""

    def __init__(self, name: str, kind: str, multiple_results: bool = False):
        assert kind in KINDS, kind
        if name in registry:
            raise ValueError(f"primitive {name!r} is defined twice")
        self.name = name
        self.kind = kind
        self.multiple_results = multiple_results
        self.impl: Callable[..., Any] | None = None
        self.abstract_eval: Callable[..., Any] | None = None
        self.jvp: Callable[..., Any] | None = None
        self.transpose: Callable[..., Any] | None = None
        self.batch: Callable[..., Any] | None = None
        registry[name] = self

    def bind(self, *args, **params):
        """Apply the primitive under the current trace (eager, staging or a transform)."""
        return trace_state.current().process_primitive(self, args, params)

    def def_impl(self, fn: Callable) -> Callable:
        """Decorator: set the numpy reference implementation."""
        self.impl = fn
        return fn

    def def_abstract_eval(self, fn: Callable) -> Callable:
        """Decorator: set the shape/dtype rule."""
        self.abstract_eval = fn
        return fn

    def __repr__(self) -> str:
        return self.name
