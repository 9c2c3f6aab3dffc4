"""debug_callback: call a Python function on runtime values from inside a compiled program.

    _ = debug_callback[callback=print('loss {}'), fmt='loss {}'] a

The equation has operands and no results. It is *effectful* (``has_effects = True``):
dead-code elimination keeps it although nobody reads its (absent) outputs, CSE never
merges two of them, constant folding never runs it (see ``passes/_ir_tools.py``).

Params:

* ``callback``  a hashable object called with the operands' values as numpy arrays,
  ``callback(*arrays)``; its ``repr`` is what the IR prints, so it is stable text.
* ``fmt``       the format string of ``jitgrad.debug.print`` (or ``None`` for a plain
  ``jitgrad.debug.callback``): shown in the IR and available to backends that print
  from device code instead of calling back into Python.

Rules, following JAX's semantics:

* ``impl`` calls the callback: every backend that runs an equation through its ``impl``
  (the reference interpreter; a backend splitting its program around the callback)
  prints at the point of the program where the equation stands.
* ``jvp`` calls it on the primal values only: ``grad(f)`` prints what ``f`` prints, once.
* ``batch`` unrolls the callback over the mapped axis (one call per example, in order),
  as ``jax.debug.print`` does under ``vmap``.
* no ``transpose`` rule is needed: the equation has no outputs, so nothing is linear in it.
"""
from __future__ import annotations

from typing import Any

from ..core.primitive import OPAQUE, Primitive

debug_callback_p = Primitive("debug_callback", OPAQUE, multiple_results=True)
# Read by the passes (DCE, CSE, constant folding) and by backends: keep it, in order.
debug_callback_p.has_effects = True


@debug_callback_p.def_impl
def _debug_callback_impl(*args: Any, callback, fmt=None) -> list:
    callback(*args)
    return []


@debug_callback_p.def_abstract_eval
def _debug_callback_abstract_eval(*avals, callback, fmt=None) -> list:
    return []


# ------------------------------------------------------------------ batching rules

def _example(v, i: int, axis: int):
    """Entry ``i`` along ``axis`` of ``v``, that axis removed (one example of a batch)."""
    from ..core.trace import get_aval
    from .layout import slice_p, squeeze_p
    shape = get_aval(v).shape
    starts, limits = [0] * len(shape), list(shape)
    starts[axis], limits[axis] = i, i + 1
    one = slice_p.bind(v, start_indices=tuple(starts), limit_indices=tuple(limits),
                       strides=(1,) * len(shape))
    return squeeze_p.bind(one, dimensions=(axis,))


def _debug_callback_batch(vals, dims, callback, fmt=None):
    # One call per example, in order; unmapped operands are passed whole to each call.
    from ..core.rules import axis_size_of
    size = axis_size_of(vals, dims)
    for i in range(size):
        example = [v if d is None else _example(v, i, d) for v, d in zip(vals, dims)]
        debug_callback_p.bind(*example, callback=callback, fmt=fmt)
    return [], []


debug_callback_p.batch = _debug_callback_batch


# ------------------------------------------------------------------ autodiff rules

def _debug_callback_jvp(primals, tangents, callback, fmt=None):
    # Print the primal values only (as JAX does): tangents are not user-visible values.
    debug_callback_p.bind(*primals, callback=callback, fmt=fmt)
    return [], []


debug_callback_p.jvp = _debug_callback_jvp
