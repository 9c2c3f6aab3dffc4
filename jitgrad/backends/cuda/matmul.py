"""The tiled shared-memory matmul kernel, with the epilogue fused into the write-back.

Every ``dot_general`` is one kernel over output tiles of ``TILE x TILE`` (16 on a GPU),
one thread per output element, blocks striding over the tiles of all batch entries:

    for each K-tile:  load A[b, m-tile, k-tile] and B[b, k-tile, n-tile] into shared
                      memory (one element per thread, zero outside the matrix),
                      syncthreads, accumulate the tile product, syncthreads
    write back:       the elementwise epilogue (bias, activation, residual, scale) is
                      evaluated on the accumulator before the single store.

Operands are never rearranged in memory: batch, free and contracting axes of each
operand, in whatever order ``dimension_numbers`` gives them (a transposed operand, a
batch axis in the middle), are folded into the index arithmetic of the tile loads, and
operands that are layout views (a broadcast, a transpose the optimiser did not fold) are
read through their index maps.

Accumulation is in the operand dtype for floats (float32 stays float32, float16 uses
float32) and in 64 bits for integers, which wrap on the final conversion exactly as
numpy's integer matmul; bool matmul is "any product true", as in the reference.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...core.ir import Eqn, Var
from ...ops.linalg import free_axes
from ...passes import fusion_index as fi
from ...passes.fusion import canonical_map, index_of_map
from .codegen import Buffers, KernelBuilder, KernelInfo, ModuleWriter, Values
from .loops import Launch, PhaseContext, _PhaseValues, _prod
from .runtime import LaunchPolicy
from .scalar import compute_dtype, type_name


def accumulate_dtype(lhs: np.dtype, out: np.dtype) -> np.dtype:
    """The in-kernel accumulator dtype for a product of ``lhs`` operands giving ``out``."""
    lhs, out = np.dtype(lhs), np.dtype(out)
    if lhs.kind == "b":
        return np.dtype(np.int64)
    if lhs.kind in "iu":
        return np.dtype(np.uint64 if lhs.kind == "u" and out.kind == "u" else np.int64)
    acc = out if out.kind == lhs.kind else lhs
    return compute_dtype(acc)


def _split_axes(eqn: Eqn):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lhs, rhs = eqn.invars
    lf = free_axes(lhs.aval.ndim, lc, lb)
    rf = free_axes(rhs.aval.ndim, rc, rb)
    return tuple(lc), tuple(rc), tuple(lb), tuple(rb), lf, rf


def _names_for(kb: KernelBuilder, flat: str, shape: Sequence[int]) -> list[str]:
    """Index expressions of the flat index ``flat`` in ``shape``, bound to temporaries."""
    out = []
    for expr, n in zip(fi.unravel(flat, shape), shape):
        out.append("0" if n == 1 else kb.bind(expr, prefix="x"))
    return out


def _operand_index(ndim: int, groups: Sequence[tuple[Sequence[int], Sequence[str]]]) -> tuple[str, ...]:
    idx = ["0"] * ndim
    for axes, names in groups:
        for a, e in zip(axes, names):
            idx[a] = e
    return tuple(idx)


def emit_matmul(mw: ModuleWriter, eqn: Eqn, name: str, policy: LaunchPolicy,
                views: dict[int, Eqn], producer: dict[int, Eqn], store_dot: bool,
                epilogue: PhaseContext | None, describe) -> Launch:
    """The tiled matmul kernel for ``eqn``, with ``epilogue`` (a loop phase over the
    product's shape) fused into its write-back when given. Raises ``fi.NotReadable`` if
    the epilogue reads the product anywhere but at the element being written."""
    lhs, rhs = eqn.invars
    out = eqn.outvars[0]
    lc, rc, lb, rb, lf, rf = _split_axes(eqn)
    ls, rs = lhs.aval.shape, rhs.aval.shape
    bshape = [ls[a] for a in lb]
    mshape = [ls[a] for a in lf]
    nshape = [rs[a] for a in rf]
    kshape = [ls[a] for a in lc]
    NB, M, N, K = _prod(bshape), _prod(mshape), _prod(nshape), _prod(kshape)
    T = policy.tile
    TM, TN = -(-M // T), -(-N // T)
    ntiles = NB * TM * TN
    acc_dt = accumulate_dtype(lhs.aval.dtype, out.aval.dtype)
    acc_t = type_name(acc_dt)

    kb = KernelBuilder(mw)
    bufs = Buffers()
    local: dict[int, tuple[str, ...]] = {}
    store: list[Var] = [out] if store_dot else []
    if epilogue is not None:
        local.update(epilogue.local)
        local[id(out)] = index_of_map(canonical_map(out.aval.shape, out.aval.shape, ()))
        store += epilogue.store

        def operand_index(e: Eqn, atom: Var):
            return epilogue.operand_index(e, atom)
        vals: Values = _PhaseValues(kb, bufs, dict(views), local, producer, operand_index, describe)
    else:
        vals = Values(kb, bufs, dict(views), local, producer, lambda e, a: (), describe)

    zero = kb.const(0, acc_dt)
    kb.line(f"sa = cuda.shared.array(({T}, {T}), {acc_t})")
    kb.line(f"sb = cuda.shared.array(({T}, {T}), {acc_t})")
    kb.line("tx = cuda.threadIdx.x")
    kb.line("ty = cuda.threadIdx.y")
    with kb.block(f"for tile in range(cuda.blockIdx.x, {ntiles}, cuda.gridDim.x):"):
        kb.line(f"b = tile // {TM * TN}")
        kb.line(f"tm = (tile // {TN}) % {TM}")
        kb.line(f"tn = tile % {TN}")
        kb.line(f"m = tm * {T} + ty")
        kb.line(f"n = tn * {T} + tx")
        kb.line(f"acc = {zero}")
        bnames = _names_for(kb, "b", bshape)
        with kb.block(f"for k0 in range(0, {K}, {T}):"):
            kb.line("ka = k0 + tx")
            kb.line("kb = k0 + ty")
            with kb.block(f"if m < {M} and ka < {K}:"):
                idx = _operand_index(lhs.aval.ndim, [(lb, bnames), (lf, _names_for(kb, "m", mshape)),
                                                     (lc, _names_for(kb, "ka", kshape))])
                kb.line(f"sa[ty, tx] = {kb.scalar.cast(vals.read(lhs, idx), acc_dt)}")
            with kb.block("else:"):
                kb.line(f"sa[ty, tx] = {zero}")
            with kb.block(f"if kb < {K} and n < {N}:"):
                idx = _operand_index(rhs.aval.ndim, [(rb, bnames), (rc, _names_for(kb, "kb", kshape)),
                                                     (rf, _names_for(kb, "n", nshape))])
                kb.line(f"sb[ty, tx] = {kb.scalar.cast(vals.read(rhs, idx), acc_dt)}")
            with kb.block("else:"):
                kb.line(f"sb[ty, tx] = {zero}")
            kb.line("cuda.syncthreads()")
            with kb.block(f"for j in range({T}):"):
                kb.line(f"acc = {kb.scalar.cast('acc + sa[ty, j] * sb[j, tx]', acc_dt)}")
            kb.line("cuda.syncthreads()")
        with kb.block(f"if m < {M} and n < {N}:"):
            # The output index: batch axes, then lhs free axes, then rhs free axes.
            flat_names = (bnames + _names_for(kb, "m", mshape) + _names_for(kb, "n", nshape))
            for k, e in enumerate(flat_names):
                if out.aval.shape[k] != 1:
                    kb.line(f"i{k} = {e}")
            if lhs.aval.dtype == np.bool_:
                product = f"(acc > {zero})"
            else:
                product = kb.scalar.cast(kb.scalar.cast("acc", lhs.aval.dtype), out.aval.dtype) \
                    if acc_dt.kind in "iu" else kb.scalar.cast("acc", out.aval.dtype)
            pv = kb.bind(product, prefix="prod")
            vals.bind_value(out, pv)
            canon = index_of_map(canonical_map(out.aval.shape, out.aval.shape, ()))
            for var in store:
                where = canon if var is out else local[id(var)]
                vals.store(var, where, vals.value(var))
    grid = min(policy.grid, max(ntiles, 1))
    flops = 2 * NB * M * N * K
    nbytes = sum(v.aval.size * v.aval.dtype.itemsize for v in bufs.vars)
    mw.add_kernel(kb.finish(name, list(bufs.names.values())),
                  KernelInfo(name, "matmul", [v.aval.dtype for v in bufs.vars], grid, T * T,
                             nbytes, flops))
    return Launch(name, grid, (T, T), list(bufs.vars))
