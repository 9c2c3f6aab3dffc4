"""Shared machinery of the optimisation passes: substitution, sub-IR recursion, change logs.

Every pass is written the same way: walk the equations in order, build a *new* list of
equations (never editing the input's), map old variables to the atoms that now stand for
them, and return the very same IR object when nothing changed, so the pipeline can tell
cheaply whether it reached a fixed point. Variables (``Var``) are immutable and shared
between the input and output IRs, as are equations that did not change.

Conventions on primitives that passes respect (read with ``getattr``, so a primitive
opts in by setting the attribute, and the core needs no change):

* ``prim.has_effects = True``: the equation does something besides computing its
  outputs (a debug print, a callback). Dead-code elimination keeps it, CSE never merges
  it, constant folding never runs it. An equation holding a sub-IR that has such an
  equation counts as effectful too.
* ``prim.no_cse = True``: never merge two equations of this primitive, even when they
  are identical (rematerialisation: ``remat``/checkpoint wants its recomputation kept).
  An equation whose params say ``prevent_cse=True`` (JAX's spelling) is treated alike.

Sub-IRs live in the params of control primitives (``kind == CONTROL``: cond, while,
scan, remat, custom_jvp/vjp calls); every pass also rewrites them, keeping their interface.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from ..core.abstract import ShapedArray
from ..core.array import ArrayImpl
from ..core.ir import IR, ClosedIR, Eqn, Literal, Var, _Namer, format_literal
from ..core.primitive import CONTROL
from ..core.trace import Tracer

# A pass's core: (ir, consts or None for a bare sub-IR, log) -> (ir, consts). It returns
# the same ``ir`` object when it changed nothing. With ``consts=None`` the IR's constvars
# are bound by whoever holds it (a control primitive), so the core must keep the IR's
# interface (constvars, invars, number and avals of outvars) exactly.
PassCore = Callable[[IR, "list | None", "ChangeLog"], "tuple[IR, list | None]"]


# ---------------------------------------------------------------- primitive conventions

def has_effects(prim) -> bool:
    """True for primitives whose equations must run even if their outputs are unused."""
    return bool(getattr(prim, "has_effects", False))


def no_cse(prim) -> bool:
    """True for primitives whose identical equations must not be merged (remat)."""
    return bool(getattr(prim, "no_cse", False))


def eqn_has_effects(eqn: Eqn) -> bool:
    """An equation is effectful if its primitive is, or any equation of its sub-IRs is."""
    if has_effects(eqn.primitive):
        return True
    return any(eqn_has_effects(e) for sub in eqn_subirs(eqn) for e in _ir_of(sub).eqns)


def is_control(eqn: Eqn) -> bool:
    return eqn.primitive.kind == CONTROL


def eqn_subirs(eqn: Eqn) -> Iterator[IR | ClosedIR]:
    """The sub-IRs of an equation. Only control primitives hold them (the core's
    convention), which spares scanning every other equation's params."""
    if eqn.primitive.kind != CONTROL or not eqn.params:
        return iter(())
    return iter_subirs(eqn.params)


# ---------------------------------------------------------------- sub-IRs in params

def _ir_of(x) -> IR:
    return x.ir if isinstance(x, ClosedIR) else x


def _is_subir(x) -> bool:
    return isinstance(x, (IR, ClosedIR))


def iter_subirs(params: dict) -> Iterator[IR | ClosedIR]:
    """The IRs/ClosedIRs held in params (directly or inside tuples/lists)."""
    stack = list(params.values())
    while stack:
        x = stack.pop()
        if _is_subir(x):
            yield x
        elif isinstance(x, (tuple, list)):
            stack.extend(x)


def _map_param(x, fn):
    if _is_subir(x):
        return fn(x)
    if isinstance(x, (tuple, list)) and any(_is_subir(y) or isinstance(y, (tuple, list)) for y in x):
        mapped = [_map_param(y, fn) for y in x]
        if all(a is b for a, b in zip(mapped, x)):
            return x
        return type(x)(mapped)
    return x


def rewrite_subirs(eqn: Eqn, core: PassCore, log: "ChangeLog") -> Eqn:
    """Apply a pass core to every sub-IR of ``eqn``, keeping each sub-IR's interface.

    A ``ClosedIR`` param owns its constants, so the pass may change them; a bare ``IR``
    param's constvars are bound by the primitive, so they are left as they are. Returns
    ``eqn`` itself when no sub-IR changed.
    """
    if next(eqn_subirs(eqn), None) is None:
        return eqn

    def fn(sub):
        # A sub-IR object shared by several equations is rewritten once and stays shared
        # (so CSE can still see that those equations are the same).
        done = log.subirs.get(id(sub))
        if done is not None:
            return done
        where = f"in {eqn.primitive.name}: "
        if isinstance(sub, ClosedIR):
            sublog = ChangeLog(sub.ir)
            ir, consts = core(sub.ir, list(sub.consts), sublog)
            new = sub if ir is sub.ir else ClosedIR(ir, consts)
        else:
            sublog = ChangeLog(sub)
            new, _ = core(sub, None, sublog)
        log.absorb(sublog, where)
        log.subirs[id(sub)] = new
        return new

    new_params = {k: _map_param(v, fn) for k, v in eqn.params.items()}
    if all(new_params[k] is eqn.params[k] for k in eqn.params):
        return eqn
    return eqn.replace(params=new_params)


# ---------------------------------------------------------------- substitution

class Env:
    """Old variable -> the atom that now stands for it (in the IR being built)."""

    __slots__ = ("map",)

    def __init__(self):
        self.map: dict[int, Any] = {}

    def __call__(self, a):
        if type(a) is Var:
            return self.map.get(id(a), a)
        return a

    def set(self, var: Var, atom) -> None:
        self.map[id(var)] = atom

    def atoms(self, atoms) -> list:
        return [self(a) for a in atoms]

    def eqn(self, eqn: Eqn) -> Eqn:
        """``eqn`` with its operands substituted (the same object when none changed)."""
        m = self.map
        if not m:
            return eqn
        changed = False
        new = []
        for a in eqn.invars:
            b = m.get(id(a), a) if type(a) is Var else a
            changed |= b is not a
            new.append(b)
        return eqn.replace(invars=new) if changed else eqn


def use_counts(ir: IR) -> dict[int, int]:
    """How many times each variable is read (by equations and by the outputs)."""
    counts: dict[int, int] = {}
    for eqn in ir.eqns:
        for a in eqn.invars:
            if type(a) is Var:
                counts[id(a)] = counts.get(id(a), 0) + 1
    for a in ir.outvars:
        if type(a) is Var:
            counts[id(a)] = counts.get(id(a), 0) + 1
    return counts


def same_eqns(a: list[Eqn], b: list[Eqn]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def rebuild(ir: IR, eqns: list[Eqn], outvars: list, constvars: list[Var] | None = None) -> IR:
    """A new IR with ``ir``'s invars, or ``ir`` itself when nothing differs."""
    constvars = ir.constvars if constvars is None else constvars
    if (same_eqns(eqns, ir.eqns) and len(outvars) == len(ir.outvars)
            and all(a is b for a, b in zip(outvars, ir.outvars))
            and len(constvars) == len(ir.constvars)
            and all(a is b for a, b in zip(constvars, ir.constvars))):
        return ir
    return IR(constvars, ir.invars, eqns, outvars)


def check_eqn(eqn: Eqn) -> bool:
    """Whether the primitive's shape/dtype rule gives exactly ``eqn``'s output avals.

    Rewrites build new equations that must compute values of the very same type as the
    ones they replace (weak type included: it decides promotion in code around a jitted
    call); this is the safety net every rewrite goes through.
    """
    prim = eqn.primitive
    if prim.abstract_eval is None:
        return False
    try:
        out = prim.abstract_eval(*[a.aval for a in eqn.invars], **eqn.params)
    except Exception:
        return False
    outs = list(out) if prim.multiple_results else [out]
    return len(outs) == len(eqn.outvars) and all(o == v.aval for o, v in zip(outs, eqn.outvars))


# ---------------------------------------------------------------- constants

def concrete_value(c: Any) -> np.ndarray | None:
    """The numpy value of a constant, or None if it is not concrete (an outer tracer)."""
    if isinstance(c, Tracer):
        return None
    if isinstance(c, ArrayImpl):
        return c._value
    if isinstance(c, (np.ndarray, np.generic)):
        return np.asarray(c)
    if isinstance(c, (bool, int, float)):
        return np.asarray(c)
    return None


def make_const(value: np.ndarray) -> ArrayImpl:
    """Wrap a folded value as the constants of a ClosedIR are usually held."""
    return ArrayImpl(np.array(value))


def literal_like(value, aval: ShapedArray) -> Literal:
    """A scalar literal of ``aval``'s dtype and weak type."""
    return Literal(np.asarray(value, dtype=aval.dtype), ShapedArray((), aval.dtype, aval.weak_type))


def literal_key(lit: Literal) -> tuple:
    """Literals are equal when dtype, weak type and bits are: -0.0 != 0.0, NaN == NaN."""
    return ("lit", lit.aval.dtype.str, lit.aval.weak_type, lit.value.tobytes())


def freeze(x: Any) -> Any:
    """A hashable key for a param value that tells apart what Python's == would merge.

    ``0.0 == -0.0`` and ``1 == 1.0 == True`` in Python, but they are different params.
    Sub-IRs and other objects are compared by identity.
    """
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, int):
        return ("int", x)
    if isinstance(x, float):
        return ("float", x.hex() if x == x else "nan")
    if isinstance(x, (tuple, list)):
        return (type(x).__name__,) + tuple(freeze(y) for y in x)
    if isinstance(x, dict):
        return ("dict",) + tuple((k, freeze(x[k])) for k in sorted(x))
    if isinstance(x, np.dtype):
        return ("dtype", x.str)
    if isinstance(x, type) and issubclass(x, np.generic):
        return ("dtype", np.dtype(x).str)
    if isinstance(x, (np.ndarray, np.generic)):
        a = np.asarray(x)
        return ("array", a.dtype.str, a.shape, a.tobytes())
    return ("id", type(x).__name__, id(x))


# ---------------------------------------------------------------- change logs

class ChangeLog:
    """What a pass changed, grouped by kind, naming equations as the printed IR does.

    ``add("merged {n} equation{s}", eqn)`` records one change; ``summary()`` gives
    ``"merged 3 equations (exp b, mul c d, add e f, ...)"``. Variable names are those of
    the pass's *input* IR as ``print(ir)`` shows it.
    """

    LIMIT = 3

    def __init__(self, ir: IR):
        self._ir = ir
        self._names: _Namer | None = None
        self.groups: dict[str, list] = {}
        self.subirs: dict[int, Any] = {}     # id(sub-IR) -> its rewrite, in this pass run

    def _namer(self) -> _Namer:
        if self._names is None:
            namer = _Namer()
            for v in self._ir.constvars:
                namer.bind(v)
            for v in self._ir.invars:
                namer.bind(v)
            for e in self._ir.eqns:
                for v in e.outvars:
                    namer.bind(v)
            self._names = namer
        return self._names

    def name(self, atom) -> str:
        if isinstance(atom, Literal):
            return format_literal(atom)
        return self._namer().atom(atom)

    def describe(self, eqn: Eqn) -> str:
        """``exp b``: the equation as its right-hand side prints."""
        return " ".join([eqn.primitive.name] + [self.name(a) for a in eqn.invars])

    def add(self, kind: str, what: "Eqn | Var | str") -> None:
        """Record one change of ``kind``; ``what`` (an equation, a variable or text) is
        only turned into text by ``summary``, so ``optimize`` pays nothing for it."""
        self.groups.setdefault(kind, []).append(what)

    def _text(self, what) -> str:
        if isinstance(what, tuple):          # (sub-IR log, item) from ``absorb``
            return what[0]._text(what[1])
        if isinstance(what, Eqn):
            return self.describe(what)
        if isinstance(what, (Var, Literal)):
            return f"{self.name(what)}:{what.aval.str_short()}"
        return str(what)

    def absorb(self, other: "ChangeLog", prefix: str) -> None:
        """Take over a sub-IR's log (its items keep the sub-IR's own variable names)."""
        for kind, items in other.groups.items():
            self.groups.setdefault(prefix + kind, []).extend((other, w) for w in items)

    def __bool__(self) -> bool:
        return bool(self.groups)

    def summary(self) -> str:
        parts = []
        for kind, items in self.groups.items():
            n = len(items)
            head = kind.format(n=n, s="" if n == 1 else "s")
            shown = ", ".join(self._text(w) for w in items[: self.LIMIT])
            shown += ", ..." if n > self.LIMIT else ""
            parts.append(f"{head} ({shown})")
        return "; ".join(parts) if parts else "no change"


def run_pass(core: PassCore, closed: ClosedIR) -> tuple[ClosedIR, ChangeLog]:
    """Run a pass core on a whole program; returns ``closed`` itself when nothing changed."""
    log = ChangeLog(closed.ir)
    ir, consts = core(closed.ir, list(closed.consts), log)
    if ir is closed.ir:
        return closed, log
    return ClosedIR(ir, consts), log
