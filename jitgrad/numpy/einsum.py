"""``jnp.einsum``: Einstein summation as a sequence of ``dot_general`` contractions.

The plan, for ``einsum("ij,jk,kl->il", a, b, c)``:

1. Parse the subscripts (explicit ``->`` or implicit output; ``...`` for broadcast axes;
   also the interleaved form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``).
2. Per operand, single-operand steps: a label repeated within one operand takes a
   diagonal (a gather, like ``jnp.diagonal``); an axis of size 1 whose label is larger
   elsewhere is dropped (broadcast); a label that no other operand and not the output
   uses is summed out right away.
3. Pairwise contractions, chosen greedily: among the pairs of remaining operands that
   share a label, the pair whose contraction removes the most memory (the size of both
   inputs minus the size of the result; then the smaller result) goes first; with no
   shared labels, the two smallest operands are multiplied (an outer product). Each
   contraction is one ``dot_general``: labels both operands have and that are still
   needed (by another operand or the output) are batch dimensions, labels only these
   two have are contracted, the rest stay free.
4. The last operand is summed over labels the output does not have and transposed to
   the output's order.

``optimize`` (JAX's contraction-order strategy) is accepted and ignored: the order is
always the greedy one above, which gives the same result up to float rounding.
"""
from __future__ import annotations

import itertools
import string
from typing import Any, Sequence

import numpy as np

from .. import lax
from ..core.errors import ShapeError
from ._util import as_array, check_no_out, promote_dtypes
from .linalg_ops import _preferred, diagonal

ArrayLike = Any

_LETTERS = string.ascii_letters


# ------------------------------------------------------------------ parsing

def _parse_subscripts(subscripts: str, ndims: Sequence[int]) -> tuple[list[list[str]], list[str]]:
    """Per-operand label lists and the output label list; '...' expands to fresh labels."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, out = spec.split("->")
        if "->" in out:
            raise ValueError("einsum: subscripts may contain '->' only once")
        explicit = True
    else:
        lhs, out, explicit = spec, "", False
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: {len(terms)} operand subscripts given for {len(ndims)} operands")
    for t in terms + [out]:
        bad = set(t.replace("...", "")) - set(_LETTERS)
        if bad or t.replace("...", "").count(".") or t.count("...") > 1:
            raise ValueError(f"einsum: invalid subscript {t!r} (letters and one '...' only)")
    # Ellipsis axes: aligned from the right across operands, named by fresh labels.
    ell_ndim = 0
    for t, nd in zip(terms, ndims):
        n_named = len(t.replace("...", ""))
        if "..." in t:
            ell_ndim = max(ell_ndim, nd - n_named)
        elif n_named != nd:
            raise ValueError(f"einsum: subscript {t!r} has {n_named} labels for an operand with "
                             f"{nd} dimensions")
        if nd < n_named:
            raise ValueError(f"einsum: subscript {t!r} has more labels than the operand's "
                             f"{nd} dimensions")
    ell_labels = [f"...{i}" for i in range(ell_ndim)]
    inputs = []
    for t, nd in zip(terms, ndims):
        if "..." in t:
            before, after = t.split("...")
            k = nd - len(before) - len(after)
            inputs.append(list(before) + ell_labels[ell_ndim - k:] + list(after))
        else:
            inputs.append(list(t))
    if explicit:
        if "..." in out:
            before, after = out.split("...")
            output = list(before) + ell_labels + list(after)
        else:
            output = list(out)
        used = set(itertools.chain.from_iterable(inputs))
        for lab in output:
            if lab not in used:
                raise ValueError(f"einsum: output subscript {lab!r} does not appear in the inputs")
        if len(set(output)) != len(output):
            raise ValueError(f"einsum: output subscript {out!r} repeats a label")
    else:
        counts: dict[str, int] = {}
        for lab in itertools.chain.from_iterable(inputs):
            counts[lab] = counts.get(lab, 0) + 1
        output = ell_labels + sorted(l for l, c in counts.items()
                                     if c == 1 and not l.startswith("..."))
    return inputs, output


def _parse_interleaved(args) -> tuple[str, list]:
    """``einsum(a, [0, 1], b, [1, 2], [0, 2])`` -> ('ab,bc->ac', [a, b])."""
    args = list(args)
    operands, subs = [], []
    while len(args) >= 2:
        operands.append(args.pop(0))
        subs.append(args.pop(0))
    out = args[0] if args else None

    def term(sub):
        s = ""
        for v in sub:
            if v is Ellipsis:
                s += "..."
            else:
                v = int(v)
                if not 0 <= v < len(_LETTERS):
                    raise ValueError(f"einsum: sublist labels must be in [0, {len(_LETTERS)}), got {v}")
                s += _LETTERS[v]
        return s
    spec = ",".join(term(s) for s in subs)
    if out is not None:
        spec += "->" + term(out)
    return spec, operands


# ------------------------------------------------------------------ single-operand steps

def _take_diagonals(x, labels: list[str]):
    """Resolve labels repeated within one operand by taking diagonals."""
    while True:
        seen: dict[str, int] = {}
        dup = None
        for i, lab in enumerate(labels):
            if lab in seen:
                dup = (seen[lab], i)
                break
            seen[lab] = i
        if dup is None:
            return x, labels
        i, j = dup
        if x.shape[i] != x.shape[j]:
            raise ShapeError(f"einsum: label {labels[i]!r} is repeated over axes of different "
                             f"sizes {x.shape[i]} and {x.shape[j]} of an operand of shape {x.shape}")
        x = diagonal(x, 0, i, j)      # the diagonal becomes the last axis
        lab = labels[i]
        labels = [l for k, l in enumerate(labels) if k not in (i, j)] + [lab]


def _sum_labels(x, labels: list[str], drop: set[str]):
    axes = tuple(i for i, l in enumerate(labels) if l in drop)
    if not axes:
        return x, labels
    from .reductions import sum
    return sum(x, axis=axes, dtype=x.dtype), [l for l in labels if l not in drop]


def _squeeze_labels(x, labels: list[str], drop_axes: list[int]):
    if not drop_axes:
        return x, labels
    return (lax.reshape(x, [d for i, d in enumerate(x.shape) if i not in drop_axes]),
            [l for i, l in enumerate(labels) if i not in drop_axes])


# ------------------------------------------------------------------ pairwise contraction

def _size(labels, sizes) -> int:
    n = 1
    for l in labels:
        n *= sizes[l]
    return n


def _contract_pair(a, la, b, lb, keep: set[str]):
    """dot_general of two operands; returns the result and its labels."""
    shared = [l for l in la if l in lb]
    batch = [l for l in shared if l in keep]
    contract = [l for l in shared if l not in keep]
    dn = ((tuple(la.index(l) for l in contract), tuple(lb.index(l) for l in contract)),
          (tuple(la.index(l) for l in batch), tuple(lb.index(l) for l in batch)))
    out = lax.dot_general(a, b, dn)
    labels = batch + [l for l in la if l not in shared] + [l for l in lb if l not in shared]
    return out, labels


def _pick_pair(ops, sizes, output: set[str]):
    """The greedy choice of the next two operands to contract (see the module docstring)."""
    best, best_key = None, None
    for i, j in itertools.combinations(range(len(ops)), 2):
        la, lb = ops[i][1], ops[j][1]
        if not set(la) & set(lb):
            continue
        keep = output | set(itertools.chain.from_iterable(
            o[1] for k, o in enumerate(ops) if k not in (i, j)))
        result = [l for l in dict.fromkeys(la + lb) if l in keep]
        rsize = _size(result, sizes)
        key = (rsize - _size(la, sizes) - _size(lb, sizes), rsize, i, j)
        if best_key is None or key < best_key:
            best, best_key = (i, j), key
    if best is None:   # nothing shared: the outer product of the two smallest
        order = sorted(range(len(ops)), key=lambda k: (_size(ops[k][1], sizes), k))
        best = tuple(sorted(order[:2]))
    return best


def einsum(subscripts, /, *operands, out: None = None, optimize: Any = "auto",
           precision=None, preferred_element_type=None, _dot_general=None) -> Any:
    """Einstein summation: ``einsum("ij,jk->ik", a, b)`` is ``a @ b``.

    Supports explicit (``->``) and implicit output, ``...`` broadcasting (size-1 axes
    broadcast, as in numpy), repeated labels within an operand (diagonals), labels summed
    out, and the interleaved form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``. Operands are
    promoted to a common dtype. See the module docstring for the contraction order;
    ``optimize`` and ``precision`` do not change the result.
    """
    check_no_out("einsum", out)
    if _dot_general is not None:
        raise TypeError("einsum: _dot_general is not supported by jitgrad")
    if not isinstance(subscripts, str):
        subscripts, operands = _parse_interleaved((subscripts,) + operands)
    pet = _preferred(preferred_element_type)
    arrays = [as_array(op, "einsum") for op in operands]
    if not arrays:
        raise ValueError("einsum: at least one operand is needed")
    arrays = promote_dtypes(*arrays) if len(arrays) > 1 else arrays
    result_dtype = pet if pet is not None else arrays[0].dtype
    # Accumulate in the preferred dtype (the operands are converted once, so that every
    # pairwise dot_general sees one dtype); bools count in int32 and become bools at the end.
    work_dtype = result_dtype if result_dtype != np.bool_ else np.dtype(np.int32)
    arrays = [lax.convert_element_type(a, work_dtype) for a in arrays]
    inputs, output = _parse_subscripts(subscripts, [a.ndim for a in arrays])

    # Label sizes; an axis of size 1 broadcasts against a larger size elsewhere.
    sizes: dict[str, int] = {}
    for x, labels in zip(arrays, inputs):
        for lab, d in zip(labels, x.shape):
            if sizes.get(lab, 1) == 1:
                sizes[lab] = d
            elif d != 1 and d != sizes[lab]:
                raise ShapeError(f"einsum: size of label {lab!r} is {sizes[lab]} in one operand "
                                 f"and {d} in another (subscripts {subscripts!r}, shapes "
                                 f"{[tuple(a.shape) for a in arrays]})")
    ops = []
    for x, labels in zip(arrays, inputs):
        x, labels = _take_diagonals(x, labels)
        squeeze = [i for i, (l, d) in enumerate(zip(labels, x.shape)) if d == 1 and sizes[l] != 1]
        x, labels = _squeeze_labels(x, labels, squeeze)
        ops.append([x, labels])
    out_set = set(output)

    def needed_elsewhere(k):
        return out_set | set(itertools.chain.from_iterable(o[1] for j, o in enumerate(ops) if j != k))

    for k in range(len(ops)):
        x, labels = ops[k]
        ops[k] = list(_sum_labels(x, labels, set(labels) - needed_elsewhere(k)))

    while len(ops) > 1:
        i, j = _pick_pair(ops, sizes, out_set)
        (a, la), (b, lb) = ops[i], ops[j]
        rest = [o for k, o in enumerate(ops) if k not in (i, j)]
        keep = out_set | set(itertools.chain.from_iterable(o[1] for o in rest))
        res, lr = _contract_pair(a, la, b, lb, keep)
        # Labels that only these two had and the output lacks were contracted; a label
        # only one of them had and nobody needs any more is summed out now.
        res, lr = _sum_labels(res, lr, set(lr) - keep)
        ops = rest + [[res, lr]]

    x, labels = ops[0]
    x, labels = _sum_labels(x, labels, set(labels) - out_set)
    # Output labels the operands lost to size-1 broadcasting come back as unit axes.
    missing = [l for l in output if l not in labels]
    if missing:
        x = lax.reshape(x, tuple(x.shape) + (1,) * len(missing))
        labels = labels + missing
    perm = [labels.index(l) for l in output]
    x = lax.transpose(x, perm)
    if result_dtype == np.bool_:
        x = lax.ne(x, np.zeros((), x.dtype))
    return x
