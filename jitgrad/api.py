"""The user-facing transformations that tie the stages together: ``jit`` and ``make_ir``.

``jit(f)`` traces ``f`` once per distinct (argument tree structure, shapes, dtypes, weak
types, static argument values, config) into an IR, optimises it, compiles it with a
backend, and keeps the executable in a cache. A call whose signature is in the cache
goes straight to the executable. Inside another trace (an outer ``jit``, ``grad``,
``vmap``) the traced program is inlined into that trace instead, so it fuses with the
code around it and is transformed like any other code.
"""
from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
import weakref
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from . import backends
from . import debug as _debug
from .core import dtypes, trace_state
from .core.abstract import ShapedArray
from .core.array import Array, ArrayImpl
from .core.config import config
from .core.errors import InvalidArgumentError
from .core.ir import ClosedIR
from .core.pytree import (builder_expression, compile_matcher, keystr, tree_flatten,
                           tree_flatten_with_path, tree_unflatten)
from .core.trace import Tracer, eval_ir, get_aval, to_numpy, trace_to_ir

logger = logging.getLogger("jitgrad")

_PY_SCALARS = (int, float, bool)


# ------------------------------------------------------------------------ signatures

def _leaf_signature(x: Any) -> tuple:
    """(shape, dtype, weak_type) of one argument leaf; raises for non-array leaves."""
    t = type(x)
    if t is ArrayImpl:
        v = x._value
        return (v.shape, v.dtype, x._weak_type)
    if t is np.ndarray:
        return (x.shape, dtypes.canonicalize_dtype(x.dtype), False)
    if t is float or t is int or t is bool or isinstance(x, (Array, np.generic)):
        a = get_aval(x)
        return (a.shape, a.dtype, a.weak_type)
    raise TypeError(type(x).__name__)


def _leaf_value(x: Any) -> Any:
    """The concrete value of an argument leaf, as the executable wants it."""
    t = type(x)
    if t is ArrayImpl:
        return x._value
    if isinstance(x, Array) and not isinstance(x, Tracer):
        # A GPU array given to a host executable: never copied back implicitly.
        from .core.errors import host_executable_error
        raise host_executable_error(x, "cpu/reference")
    return to_numpy(x)


class _CacheEntry:
    """One traced signature: its optimised IR, and the executable once it is first run.

    Compilation is deferred to the first eager call: a jitted function called only inside
    other traces (``jit(grad(jit(f)))``) is inlined there and never needs its own binary.
    """
    __slots__ = ("closed", "executable", "out_tree", "out_avals", "in_avals", "device_call",
                 "backend", "_lock", "donation", "fast")

    def __init__(self, closed, out_tree, in_avals, backend: str):
        self.closed = closed
        self.out_tree = out_tree
        self.in_avals = in_avals
        self.out_avals = closed.ir.out_avals
        self.backend = backend
        self.executable = None
        self.device_call = None
        self.donation = None   # [(leaf index, output position, dtype)], set on first eager call
        self.fast = {}         # kinds of argument leaves -> fast path (or None)
        self._lock = threading.Lock()

    def compile(self) -> None:
        """Build the executable (once, even when several threads ask at the same time)."""
        with self._lock:
            if self.executable is None:
                executable = backends.get(self.backend).compile(self.closed)
                # Device backends (cuda) take jitgrad arrays and return arrays that stay there.
                self.device_call = getattr(executable, "call_arrays", None)
                self.executable = executable


def _static_key(value: Any, where: str) -> Hashable:
    try:
        hash(value)
    except TypeError:
        raise InvalidArgumentError(
            f"static argument {where} has type {type(value).__name__}, which is not hashable",
            hint="Static arguments are part of the compilation cache key and must be hashable "
                 "(use a tuple instead of a list, or pass arrays as ordinary arguments).") from None
    return (type(value), value)


# ------------------------------------------------------------------------ fast dispatch
#
# A jitted function is usually called again and again with arguments of one structure and
# signature. For the last signature called eagerly, jit compiles (pytree.compile_matcher)
# straight-line code that checks the arguments against it and reads their numpy values,
# and code that wraps the outputs and builds the output tree: a repeated call runs no
# generic flatten, signature tuple, cache lookup or unflatten. Anything unexpected (another
# structure, shape, dtype, a deleted array, a flag change) takes the general path.

# JitFunctions holding a fast path. A config update may select another executable for
# the same arguments (the flags are part of the cache key), so it drops their fast paths.
_FAST_OWNERS: "weakref.WeakSet[JitFunction]" = weakref.WeakSet()


def _drop_fast_paths(name: str, value: Any) -> None:
    for jf in list(_FAST_OWNERS):
        jf._fast = None


config.on_update(_drop_fast_paths)
_trace_local = trace_state._state
_MISS = object()   # what a fast path returns when the arguments do not fit it


def _leaf_code(k: int, x: str, leaf, sig, ns: dict, read: bool) -> list[str] | None:
    """Check lines for the k-th argument leaf (held in local ``x``), binding ``v{k}`` to
    the value the executable takes; None if this kind of leaf has no fast check. ``read``:
    the compiled entry takes this value, and its typed signature rejects another dtype
    (the call then takes the general path), so the dtype need not be checked here."""
    shape, dtype, weak = sig
    ns[f"S{k}"], ns[f"D{k}"], ns[f"W{k}"] = shape, dtype, weak
    t = type(leaf)
    if t is ArrayImpl:
        dtype_check = "" if read else f" or v{k}.dtype is not D{k}"
        return [f"if type({x}) is not AI: return None",
                f"v{k} = {x}._value",
                f"if v{k}.shape != S{k} or {x}._weak_type is not W{k}{dtype_check}: return None"]
    if t is np.ndarray:
        ns[f"R{k}"] = leaf.dtype
        conv = f"v{k} = {x}" if leaf.dtype is dtype else f"v{k} = {x}.astype(D{k})"
        return [f"if type({x}) is not ND or {x}.shape != S{k} or {x}.dtype is not R{k}: return None",
                conv]
    if t in _PY_SCALARS:
        ns[f"P{k}"] = t
        return [f"if type({x}) is not P{k}: return None", f"v{k} = LV({x})"]
    return None


def _build_fast_path(entry, in_tree, leaves, sigs, donate) -> Callable | None:
    """The fast path for one signature of positional arguments (None if unsupported): one
    generated function that checks the arguments, allocates the outputs, calls the
    compiled entry and builds the output tree. ``donate``: [(leaf, output position, dtype)]."""
    spec = getattr(entry.executable, "call_spec", None)
    if spec is None or entry.device_call is not None or in_tree.num_leaves != len(leaves):
        return None
    args_tree, kwargs_tree = in_tree.children()
    if kwargs_tree.node_data() != (dict, ()):
        return None
    fn, sources, allocs, temps, out_index = spec
    ns = {"AI": ArrayImpl, "ND": np.ndarray, "LV": _leaf_value, "FN": fn, "MISS": _MISS,
          "TAKE": _take_buffer, "DEL": _mark_donated, "GRC": sys.getrefcount,
          "RING_REFS": _RING_REFS}
    codes = []
    read = {s for s in sources if type(s) is int}
    for k, (leaf, sig) in enumerate(zip(leaves, sigs)):
        code = _leaf_code(k, "x", leaf, sig, ns, k in read)
        if code is None:
            return None
        codes.append(code)
    donate_at = {j: k for k, j, _ in donate}
    tail = []
    for j, alloc in enumerate(allocs):
        ns[f"ALLOC{j}"] = alloc
        out = entry.executable._seg.outputs[j].aval
        small = int(np.prod(out.shape, dtype=np.int64)) * np.dtype(out.dtype).itemsize < _RING_BYTES
        if small and j not in donate_at:
            # A small output: two buffers of this call site taken in turn, each only when
            # nothing references it any more (cheaper than np.empty; see _RING_REFS).
            ns[f"R{j}"] = [alloc(), alloc()]
            tail += [f"o{j} = R{j}[0]",
                     f"if GRC(o{j}) != RING_REFS:",
                     f"    o{j} = R{j}[1]",
                     f"    if GRC(o{j}) != RING_REFS: o{j} = ALLOC{j}()"]
        elif j in donate_at:
            k = donate_at[j]
            ns[f"DT{j}"] = np.dtype(entry.executable._seg.outputs[j].aval.dtype)
            tail.append(f"o{j} = TAKE(x{k}, v{k}, DT{j})")
            tail.append(f"if o{j} is None: o{j} = ALLOC{j}()")
        else:
            tail.append(f"o{j} = ALLOC{j}()")
    call_args = []
    for i, src in enumerate(sources):
        if type(src) is int:
            call_args.append(f"v{src}")
        else:
            ns[f"C{i}"] = src
            call_args.append(f"C{i}")
    call_args += [f"o{j}" for j in range(len(allocs))]
    if temps is not None:
        ns["ACQ"], ns["REL"] = temps
        tail.append("t = ACQ()")
        call = f"FN({', '.join(call_args)}, *t)"
        tail += ["try:", f"    {call}", "except TypeError:",
                 "    return MISS   # another layout (an eager view): the general path converts",
                 "finally:", "    REL(t)"]
    else:
        tail += ["try:", f"    FN({', '.join(call_args)})", "except TypeError:", "    return MISS"]
    for j, k in donate_at.items():
        tail.append(f"if o{j} is v{k}: DEL(x{k})")
    weak = [a.weak_type for a in entry.out_avals]
    expr = builder_expression(entry.out_tree, lambda r: f"AI(o{out_index[r]}, {weak[r]})", ns)
    tail.append(f"return {expr}")
    donated_leaves = set(donate_at.values())

    def leaf_code(k, expr):
        lines = [f"x = {expr}"] + codes[k]
        if k in donated_leaves:
            lines.append(f"x{k} = x")
        return lines
    return compile_matcher(args_tree, leaf_code, tail, ns, miss="MISS")


_getrefcount = sys.getrefcount
# Outputs smaller than this get a two-buffer ring in their fast path (larger ones come from
# the shared pool, jitgrad.backends.buffers, which bounds the bytes it keeps).
_RING_BYTES = 64 * 1024


def _calibrate_ring() -> int:
    """getrefcount of a ring's first buffer seen from the generated code when only the
    ring holds it: the ring list, the local ``o``, the call's argument."""
    ring = [np.empty(1)]
    o = ring[0]
    return _getrefcount(o)


_RING_REFS = _calibrate_ring()


def _buffer_refs(x, vals) -> int:
    # Same frame shape as in _take_donations: x._value held by x, by vals and by ``v``.
    v = x._value
    return _getrefcount(v)


def _calibrate_refs() -> int:
    x = ArrayImpl(np.empty(1))
    vals = [x._value]
    return _buffer_refs(x, vals)


_DONATABLE_REFS = _calibrate_refs()


def _take_donations(vals, xs, plan):
    """Buffers of donated arguments that outputs may overwrite: {output position: buffer}.

    ``xs`` are the donated leaves (in ``plan``'s order: [(leaf index, output position)]).
    A buffer is taken only if nothing but its array and this call can see it (no numpy
    view, no other array sharing it, not passed twice), it owns its memory and is a
    writable C-contiguous array of the output's dtype; the others stay untouched."""
    donated, dead = {}, []
    for x, (k, j, dtype) in zip(xs, plan):
        if type(x) is not ArrayImpl or _buffer_refs(x, vals) != _DONATABLE_REFS:
            continue
        v = x._value
        if vals[k] is v and _writable_own_buffer(v, dtype):
            donated[j] = v
            dead.append(x)
    return donated, dead


def _mark_donated(dead) -> None:
    if type(dead) is ArrayImpl:
        dead = (dead,)
    for x in dead:
        x.delete("donated to a jitted call")


def _probe_refs(x, v, dtype) -> int:
    return _getrefcount(v)


def _calibrate_take() -> int:
    x = ArrayImpl(np.empty(1))
    v = x._value
    return _probe_refs(x, v, None)


_TAKE_REFS = _calibrate_take()


def _take_buffer(x, v, dtype):
    """``v`` (the buffer of the donated array ``x``, also held in the caller's local) if an
    output may overwrite it: nothing else sees it, it owns its memory, it is a writable
    C-contiguous array of ``dtype``. Else None."""
    if _getrefcount(v) == _TAKE_REFS and type(x) is ArrayImpl and _writable_own_buffer(v, dtype):
        return v
    return None


def _writable_own_buffer(v, dtype) -> bool:
    """Whether ``v`` owns its memory (no other array can view it but through ``v``), is
    C-contiguous and of ``dtype``; made writable (eager results are flagged read-only)."""
    if v.base is not None or v.dtype != dtype or not v.flags.c_contiguous:
        return False
    if not v.flags.writeable:
        v.flags.writeable = True
    return True


# ------------------------------------------------------------------------ jit

# Executables are cached per Python function (weakly, so functions can be collected) and
# per jit options, so ``jit(f)(x)`` written inside a loop still hits the cache.
_CACHES: "weakref.WeakKeyDictionary[Callable, dict]" = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _function_cache(fun: Callable) -> dict:
    try:
        cache = _CACHES.get(fun)
        if cache is None:
            with _CACHES_LOCK:
                cache = _CACHES.setdefault(fun, {})
        return cache
    except TypeError:   # not weak-referenceable (e.g. some builtins): a private cache
        return {}


def _normalize_argnums(fun, static_argnums, static_argnames):
    """Resolve static_argnums <-> static_argnames through the function's signature, as JAX does."""
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums or ())
    names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames or ())
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return nums, names, None
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for n in nums:
        if -len(positional) <= n < len(positional):
            name = positional[n]
            if name not in names:
                names = names + (name,)
    for name in names:
        if name in positional:
            i = positional.index(name)
            if i not in nums:
                nums = nums + (i,)
    known = {p.name for p in params}
    has_var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    for name in names:
        if name not in known and not has_var_kw:
            raise InvalidArgumentError(
                f"jit: static_argnames contains {name!r}, which is not a parameter of "
                f"{getattr(fun, '__name__', fun)}", hint=f"Its parameters are: {', '.join(known)}")
    return nums, names, positional


def _out_dtype(entry, j: int) -> np.dtype:
    """dtype of the executable's j-th segment output (where a donated buffer goes)."""
    seg = entry.executable._seg
    return np.dtype(seg.outputs[j].aval.dtype)


class JitFunction:
    """The callable ``jit(f)`` returns. Keeps ``f``'s name and docstring."""

    def __init__(self, fun: Callable, static_argnums=(), static_argnames=(), donate_argnums=(),
                 backend: str | None = None, inline: bool = False):
        if not callable(fun):
            raise TypeError(f"jit expects a callable, got {type(fun).__name__}")
        self.fun = fun
        self.static_argnums, self.static_argnames, self._positional = _normalize_argnums(
            fun, static_argnums, static_argnames)
        self.donate_argnums = (donate_argnums,) if isinstance(donate_argnums, int) \
            else tuple(donate_argnums or ())
        self.backend = backend
        self.inline = inline
        self._options = (self.static_argnums, self.static_argnames, self.donate_argnums, backend)
        self._cache = _function_cache(fun)
        self._lock = threading.Lock()
        self._name = getattr(fun, "__name__", type(fun).__name__)
        self._fast: Callable | None = None   # for the last signature called eagerly
        # Not fun's __dict__: a custom_jvp/custom_vjp object keeps its own `fun` there.
        functools.update_wrapper(self, fun, updated=())

    # -- the hot path
    def __call__(self, *args, **kwargs):
        fast = self._fast
        if fast is not None and not kwargs and _trace_local.trace is None:
            out = fast(args)
            if out is not _MISS:
                return out
        return self._call(args, kwargs)

    def _call(self, args, kwargs):
        """The general path: flatten, look the signature up, compile if needed, run."""
        key, leaves, in_tree, static = self._signature(args, kwargs)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(key, args, kwargs, leaves, in_tree, static)
        if trace_state.is_eager():
            if entry.executable is None:
                entry.compile()
            if entry.device_call is not None:
                outs = entry.device_call(leaves, lambda: self._labels(args, kwargs))
                return tree_unflatten(entry.out_tree, outs)
            if entry.donation is None:
                entry.donation = self._donation_plan(entry, in_tree, static)
            vals = [_leaf_value(x) for x in leaves]
            donated = dead = None
            if entry.donation:
                donated, dead = _take_donations(vals, [leaves[k] for k, _, _ in entry.donation],
                                                entry.donation)
            run_values = getattr(entry.executable, "run_values", None)
            if donated and run_values is not None:
                outs = run_values(vals, donated)
            else:
                outs = entry.executable(*vals)
            if dead:
                _mark_donated(dead)
            if _debug.nan_checking.on:   # debug_nans: find and name the op that made a NaN
                _debug.check_nans(entry.closed, vals, outs, self._name)
            outs = [ArrayImpl(o, a.weak_type) for o, a in zip(outs, entry.out_avals)]
            if not static and not kwargs and not _debug.nan_checking.on:
                self._fast = self._fast_path_for(entry, in_tree, leaves, key[1])
                if self._fast is not None:
                    _FAST_OWNERS.add(self)
        else:
            outs = eval_ir(entry.closed.ir, entry.closed.consts, leaves)
        return tree_unflatten(entry.out_tree, outs)

    def _fast_path_for(self, entry, in_tree, leaves, sigs) -> Callable | None:
        """The entry's fast path for these kinds of leaves (built once, then cached)."""
        kinds = tuple(type(x) for x in leaves)
        table = entry.fast
        fast = table.get(kinds, _MISS)
        if fast is _MISS:
            fast = table[kinds] = _build_fast_path(entry, in_tree, leaves, sigs,
                                                   entry.donation or [])
        return fast

    def _donation_plan(self, entry, in_tree, static) -> list:
        """[(leaf index, output position, dtype)] for the leaves of donated arguments that
        an output can be written into (see ``CpuExecutable.donation_plan``)."""
        if not self.donate_argnums:
            return []
        plan_of = getattr(entry.executable, "donation_plan", None)
        if plan_of is None:
            return []
        static_pos = {k for k, _ in static if isinstance(k, int)}
        arg_trees = in_tree.children()[0].children()
        n_args = len(arg_trees) + len(static_pos)
        donate = {d % n_args for d in self.donate_argnums if -n_args <= d < n_args}
        leaf_ranges, start, dyn = [], 0, 0
        for pos in range(n_args):
            if pos in static_pos:
                continue
            n = arg_trees[dyn].num_leaves
            if pos in donate:
                leaf_ranges.extend(range(start, start + n))
            start += n
            dyn += 1
        plan = plan_of(leaf_ranges)
        return sorted((k, j, _out_dtype(entry, j)) for k, j in plan.items())

    def _split_static(self, args, kwargs):
        nums, names = self.static_argnums, self.static_argnames
        static = []
        if nums:
            n = len(args)
            dyn_args = []
            for i, a in enumerate(args):
                if i in nums or (i - n) in nums:
                    static.append((i, _static_key(a, f"{i} of {self._name}")))
                else:
                    dyn_args.append(a)
            dyn_args = tuple(dyn_args)
        else:
            dyn_args = args
        if names and kwargs:
            dyn_kwargs = {}
            for k, v in kwargs.items():
                if k in names:
                    static.append((k, _static_key(v, f"{k!r} of {self._name}")))
                else:
                    dyn_kwargs[k] = v
        else:
            dyn_kwargs = kwargs
        return dyn_args, dyn_kwargs, tuple(static)

    def _signature(self, args, kwargs):
        dyn_args, dyn_kwargs, static = self._split_static(args, kwargs)
        leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
        try:
            sig = tuple(_leaf_signature(x) for x in leaves)
        except TypeError:
            raise self._bad_argument(dyn_args, dyn_kwargs) from None
        key = (in_tree, sig, static, config.trace_key(), self._options)
        return key, leaves, in_tree, static

    def _bad_argument(self, dyn_args, dyn_kwargs):
        for path, leaf in tree_flatten_with_path((dyn_args, dyn_kwargs))[0]:
            try:
                _leaf_signature(leaf)
            except TypeError:
                return InvalidArgumentError(
                    f"jit({self._name}): argument {self._describe_path(path)} has type "
                    f"{type(leaf).__name__}, which is not a valid jitgrad array type",
                    hint="Arrays and numbers are traced; mark other arguments as static with "
                         "static_argnums=... or static_argnames=... (they must be hashable).")
        return InvalidArgumentError(f"jit({self._name}): invalid argument")

    def _describe_path(self, path) -> str:
        """``'params'['w1']`` for the leaf at ``path`` of (args, kwargs)."""
        if not path:
            return "?"
        first = path[0]
        rest = keystr(tuple(path[2:])) if len(path) > 2 else ""
        if getattr(first, "idx", None) == 0 and len(path) > 1:
            i = path[1].idx
            positional_dyn = [j for j in range(len(self._positional or [])) if j not in self.static_argnums]
            if self._positional is not None and i < len(positional_dyn):
                return f"'{self._positional[positional_dyn[i]]}'{rest}"
            return f"{i}{rest}"
        if len(path) > 1:
            return f"'{path[1].key}'{rest}"
        return "?"

    # -- tracing and compiling
    def _compile(self, key, args, kwargs, leaves, in_tree, static) -> _CacheEntry:
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                return entry
            in_avals = [ShapedArray(*sig) for sig in key[1]]
            labels = self._labels(args, kwargs)
            if config.log_compiles or config.jax_log_compiles:
                logger.warning("%s", self._compile_message(key, in_avals, labels))
            static_positions = dict(static)
            out_tree_box = []

            def flat_fun(*tracers):
                dyn_args, dyn_kwargs = tree_unflatten(in_tree, tracers)
                call_args, call_kwargs = self._merge_static(args, kwargs, dyn_args, dyn_kwargs,
                                                            static_positions)
                out = self.fun(*call_args, **call_kwargs)
                out_leaves, out_tree = tree_flatten(out)
                out_tree_box.append(out_tree)
                for leaf in out_leaves:
                    if not isinstance(leaf, (Array, np.ndarray, np.generic) + _PY_SCALARS):
                        raise InvalidArgumentError(
                            f"jit({self._name}) returned a {type(leaf).__name__}, which is not "
                            "an array", hint="Return arrays, numbers or pytrees of them.")
                return out_leaves

            closed, _ = trace_to_ir(flat_fun, in_avals, labels,
                                    description=f"jit({self._name})")
            closed = optimize(closed)
            entry = _CacheEntry(closed, out_tree_box[0], in_avals,
                                self.backend or config.jax_platform_name)
            if not any(isinstance(c, Tracer) for c in closed.consts):
                self._cache[key] = entry   # a closure over an outer trace's value is not reusable
            return entry

    def _merge_static(self, args, kwargs, dyn_args, dyn_kwargs, static_positions):
        call_args = list(dyn_args)
        for i in sorted(k for k in static_positions if isinstance(k, int)):
            idx = i if i >= 0 else len(args) + i
            call_args.insert(idx, args[idx])
        call_kwargs = dict(dyn_kwargs)
        for k in static_positions:
            if isinstance(k, str):
                call_kwargs[k] = kwargs[k]
        return call_args, call_kwargs

    def _labels(self, args, kwargs) -> list[str]:
        dyn_args, dyn_kwargs, _ = self._split_static(args, kwargs)
        return [f"argument {self._describe_path(path)} of {self._name}"
                for path, _ in tree_flatten_with_path((dyn_args, dyn_kwargs))[0]]

    def _compile_message(self, key, in_avals, labels) -> str:
        sig = ", ".join(a.str_short() for a in in_avals)
        msg = f"Compiling {self._name} for args ({sig})"
        similar = [k for k in self._cache if k[4] == key[4] and k != key]
        if not similar:
            return msg + ": first call."
        return msg + ": " + _retrace_reason(similar[-1], key, labels)

    def lower(self, *args, **kwargs) -> ClosedIR:
        """The optimised IR this function compiles to for these arguments."""
        key, leaves, in_tree, static = self._signature(args, kwargs)
        entry = self._cache.get(key) or self._compile(key, args, kwargs, leaves, in_tree, static)
        return entry.closed

    def _cache_size(self) -> int:
        """How many executables are cached for this function and these jit options."""
        return sum(1 for k in self._cache if k[4] == self._options)

    def clear_cache(self) -> None:
        """Forget the compiled executables of this function."""
        for k in [k for k in self._cache if k[4] == self._options]:
            del self._cache[k]

    def __get__(self, obj, objtype=None):
        # Support decorating methods: bind ``self`` like a plain function would.
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self) -> str:
        return f"<jitted function {self._name}>"


def _retrace_reason(old, new, labels) -> str:
    """Say which argument's shape/dtype/static value changed between two cache keys."""
    if old[0] != new[0]:
        return f"retracing because the argument structure changed from {old[0]} to {new[0]}."
    for i, (a, b) in enumerate(zip(old[1], new[1])):
        if a != b:
            fa, fb = ShapedArray(*a).str_short(), ShapedArray(*b).str_short()
            what = "shape" if a[0] != b[0] else "dtype" if a[1] != b[1] else "weak type"
            return f"retracing because the {what} of {labels[i]} changed from {fa} to {fb}."
    if old[2] != new[2]:
        return f"retracing because a static argument changed from {old[2]} to {new[2]}."
    if old[3] != new[3]:
        return "retracing because a configuration flag changed."
    return "retracing."


def optimize(closed: ClosedIR) -> ClosedIR:
    """Run the optimisation passes (jitgrad.passes) to a fixed point."""
    from .passes import optimize as run_passes
    return run_passes(closed)


def jit(fun: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (), donate_argnums: int | Sequence[int] = (),
        backend: str | None = None, inline: bool = False) -> Any:
    """Compile ``fun``: trace it once per argument signature, then run the compiled program.

    ``static_argnums``/``static_argnames`` mark arguments whose Python values (hashable)
    are baked into the trace; ``backend`` picks 'cpu', 'cuda' or 'reference' (default:
    ``config.jax_platform_name``). Usable as ``@jit`` or ``jit(f, static_argnums=0)``.

    ``donate_argnums``: arguments whose buffers the outputs may take over, as in JAX
    (``params = step(params, ...)`` then allocates nothing). A donated array whose buffer
    was reused is deleted: using it raises ``DeletedArrayError``. Where jitgrad differs:
    a buffer is reused only where that is safe and free (cpu backend, an output of the
    same shape and dtype, nothing else referencing the buffer, e.g. no live
    ``np.asarray`` view); otherwise the array is left alone, without a warning. Donation
    inside another trace (an outer jit, grad, vmap) is ignored, as in JAX.
    """
    if fun is None:
        return lambda f: JitFunction(f, static_argnums, static_argnames, donate_argnums,
                                     backend, inline)
    return JitFunction(fun, static_argnums, static_argnames, donate_argnums, backend, inline)


def make_ir(fun: Callable, static_argnums: int | Sequence[int] = (),
            static_argnames: str | Sequence[str] = ()) -> Callable[..., ClosedIR]:
    """``make_ir(f)(*args)``: the IR ``f`` traces to for these arguments, like ``jax.make_jaxpr``."""
    jitted = JitFunction(fun, static_argnums, static_argnames, backend="reference")

    @functools.wraps(fun)
    def traced(*args, **kwargs) -> ClosedIR:
        key, leaves, in_tree, static = jitted._signature(args, kwargs)
        in_avals = [ShapedArray(*sig) for sig in key[1]]
        labels = jitted._labels(args, kwargs)
        static_positions = dict(static)

        def flat_fun(*tracers):
            dyn_args, dyn_kwargs = tree_unflatten(in_tree, tracers)
            call_args, call_kwargs = jitted._merge_static(args, kwargs, dyn_args, dyn_kwargs,
                                                          static_positions)
            return tree_flatten(fun(*call_args, **call_kwargs))[0]

        closed, _ = trace_to_ir(flat_fun, in_avals, labels,
                                description=f"make_ir({getattr(fun, '__name__', 'fun')})")
        return closed
    return traced


make_jaxpr = make_ir
