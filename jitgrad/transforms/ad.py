"""Automatic differentiation as transformations (JAX's model), and the rule conventions.

Reverse mode is built from forward mode, one idea per module:

* ``jvp.py``          forward mode: ``JVPTrace`` runs each primitive's JVP rule, with
                      symbolic ``Zero`` tangents; ``jvp_ir`` differentiates a whole IR.
* ``partial_eval.py`` ``PartialEvalTrace`` runs known work and stages unknown work into
                      an IR. ``linearize`` = JVP over partial evaluation: the tangent
                      computation becomes a *linear IR* whose constvars are residuals.
                      ``partial_eval_ir`` splits a whole IR into known and unknown parts.
* ``transpose.py``    ``backward_pass`` runs a linear IR backwards through each
                      primitive's transpose rule: that is ``vjp`` and ``grad``.
* ``custom_derivatives.py`` ``custom_jvp`` / ``custom_vjp``; ``checkpoint.py`` remat;
  ``ad_api.py`` the user-facing ``jvp``, ``linearize``, ``vjp``, ``grad``,
  ``value_and_grad``, ``jacfwd``, ``jacrev``, ``hessian``, ``linear_transpose``.

Rules live beside each primitive, at the end of its module in ``jitgrad/ops`` (block
``# --- autodiff rules``), written with the helpers of ``jitgrad/core/rules.py`` (``Zero``,
``UndefinedPrimal``, ``defjvp``, ...; re-exported here), so that ``ops`` imports only the
core. Rules of primitives holding sub-programs also need ``jvp_ir``, ``partial_eval_ir``
and ``backward_pass``; they import them when they run (transforms sit above ops).

Rule conventions
================

**JVP** -- ``prim.jvp(primals, tangents, **params) -> (primal_out, tangent_out)``

* ``primals``: the operand values (of the parent trace: concrete arrays eagerly,
  tracers under ``jit`` or an outer transformation). ``tangents``: one per operand,
  each an array of the operand's shape and dtype or the symbolic ``Zero(aval)``. At
  least one tangent is nonzero (otherwise the rule is not called). Integer and boolean
  operands always have ``Zero`` tangents.
* Return the primal output (compute it with ``prim.bind(*primals, **params)``) and its
  tangent (an array or ``Zero``); both are lists for ``multiple_results`` primitives.
  The tangent may be rank-0 for a full-shape output (it is broadcast) and may have
  another float dtype (it is converted); integer/boolean outputs get ``Zero`` whatever
  the rule says.
* The rule runs under the parent trace: bind primitives (or call ``jitgrad.lax``/``jnp``)
  freely. The tangent must be *linear* in the input tangents, using only primitives
  that have transpose rules, with everything else computed from the primals: under
  ``linearize``, the primal-only work runs now and the tangent work is staged.
* Write constants as ``const_like(x, 0.5)`` (numpy scalars of the operand's dtype), never
  Python floats, so that float64 programs stay float64.
* Helpers: ``defjvp``, ``defjvp2``, ``defjvp_elementwise`` (from partial derivatives;
  ``singular=True`` for derivatives that are infinite somewhere, see ``scale_tangent``),
  ``defjvp_zero`` (piecewise-constant and integer primitives), ``deflinear``.
* Primitives holding sub-programs (``cond``, ``scan``, ``while``): differentiate the
  sub-IR with ``jvp_ir(ir, nonzero_tangents, instantiate)``, which returns an IR taking
  ``primals + nonzero tangents`` and returning ``outputs + nonzero output tangents``;
  bind the primitive again on it. Loops need the carry's tangents to be nonzero-or-not
  the same in every iteration: iterate ``jvp_ir`` to a fixed point of ``out_nonzero``,
  passing ``instantiate`` for the carry.

**Transpose** -- ``prim.transpose(ct, *args, **params) -> list``

* Only for primitives that can appear *linearly* in a tangent computation (add, mul by
  a constant, layout ops, dot_general, gather/scatter-add, select_n on its cases, ...).
* ``ct``: the cotangent of the output (never ``Zero`` for a single-result primitive; for
  ``multiple_results`` a list whose entries may be ``Zero``).
* ``args``: the operands; a linear operand arrives as ``UndefinedPrimal(aval)`` (test
  with ``is_undefined_primal``), the others (coefficients, indices, predicates) with
  their values.
* Return one entry per operand: the cotangent for each ``UndefinedPrimal`` operand
  (``None`` or ``Zero`` if it is zero) and ``None`` for the others. A full-shape
  cotangent for a rank-0 operand is summed, and dtypes are converted, by the caller.
* The rule runs under the current trace (eager, ``jit``, an outer ``jvp``...), so a
  transposed program can itself be differentiated (``grad(grad(f))``).
* ``backward_pass(ir, consts, args, cts_out)`` transposes a whole IR (``args`` with
  ``UndefinedPrimal`` for its linear inputs): use it for sub-programs, e.g. a scan body.
  Equations of the IR that do not depend on a linear input are evaluated first,
  forwards, so the IR may mix residual computations with linear ones.

**Partial evaluation** -- optional ``prim.partial_eval(trace, args, params) -> outputs``

* Called by ``PartialEvalTrace`` when some operand is unknown (``trace.is_known(x)``
  tells which). Without it the equation is staged whole into the linear IR, taking its
  known operands as residuals -- correct, but then the transpose rule receives a
  non-linear equation: it gets the known operands as values and must recompute whatever
  it needs from them (``checkpoint`` does this on purpose).
* A rule splits the primitive: bind the known part on ``trace.parent`` (inside
  ``trace_state.set_current(trace.parent)``) and stage the unknown part with
  ``trace.stage(prim, operands, params)``, which records an equation and turns known
  operands into residuals. Return the outputs (known values and staged tracers mixed).
* ``partial_eval_ir(ir, unknowns, instantiate)`` splits a sub-IR for such rules: it
  returns ``(known, unknown, out_unknowns, num_res)`` where ``known`` maps the known
  inputs to the known outputs plus ``num_res`` residuals and ``unknown`` maps
  ``residuals + unknown inputs`` to the unknown outputs. ``dce_ir``, ``prune_inputs`` and
  ``hoist_consts`` (consts -> leading operands) help rebuild the equations.
* A primitive that cannot be reverse-differentiated (``while_loop``) should raise a
  clear error from its ``partial_eval`` rule when an operand is unknown.

**Custom derivatives** -- a trace may define ``process_custom_jvp_call(call, args)`` and
``process_custom_vjp_call(call, args)`` (see custom_derivatives.py); traces without them
(staging, vmap) receive the ``custom_jvp_call`` / ``custom_vjp_call`` primitives (params:
``call_ir``, a const-free IR whose first ``num_consts`` operands are closed-over values,
and the rule as a Python callable). Their batching rules batch the body and ``vmap`` the
rule, so a custom rule survives ``jit`` and ``vmap`` and is still used by a later ``grad``.

**Higher-order primitives defined here** -- ``remat`` (checkpoint.py), ``custom_jvp_call``,
``custom_vjp_call`` and ``custom_lin`` (custom_derivatives.py) hold all their rules (impl,
abstract_eval, jvp, transpose, partial_eval, batch) in their own module.
"""
from .jvp import (JVPTrace, JVPTracer, Zero, add_tangents, const_like, defjvp,  # noqa: F401
                  defjvp2, defjvp_elementwise, defjvp_zero, deflinear, fit_to_aval,
                  instantiate_zeros, is_float, is_zero, jvp_flat, jvp_ir, scale_tangent,
                  zeros_like_aval)
from .partial_eval import (PartialEvalTrace, dce_ir, hoist_consts, linearize_flat,  # noqa: F401
                           partial_eval_ir, prune_inputs)
from .transpose import (NonLinearError, UndefinedPrimal, backward_pass,  # noqa: F401
                        fit_cotangent, is_undefined_primal, linear_transpose_ir)
from .custom_derivatives import (CustomDerivativeError, custom_jvp, custom_jvp_call_p,  # noqa: F401
                                 custom_lin_p, custom_vjp, custom_vjp_call_p)
from .checkpoint import checkpoint, remat, remat_p  # noqa: F401
from .ad_api import (grad, hessian, jacfwd, jacrev, jvp, linear_transpose,  # noqa: F401
                     linearize, value_and_grad, vjp)
