"""The IR: a typed, first-order, SSA program, printed like a jaxpr.

    { lambda a:f32[4,3]; b:f32[8,4] c:f32[3]. let
        d:f32[8,3] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] b a
        e:f32[8,3] = add d c
      in (e,) }

* ``Var``     a value, known by its abstract value (shape, dtype).
* ``Literal`` a constant scalar written into the program.
* ``Eqn``     ``outvars = primitive[params](invars)``, with the user's source line.
* ``IR``      ``constvars`` (arrays the program closed over), ``invars``, ``eqns``, ``outvars``.

Params are hashable; sub-programs of control flow (``cond``, ``scan``) are IRs held in
params. The printed text is deterministic, so it can be hashed into a cache key.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from .abstract import ShapedArray
from .errors import SourceInfo


class Var:
    """An SSA value. Identity is the object; names are given only when printing."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:
        return f"Var({self.aval.str_short()})"


class Literal:
    """A scalar constant written into the program text (``2.0:f32[]``)."""

    __slots__ = ("value", "aval")

    def __init__(self, value: Any, aval: ShapedArray):
        self.value = np.asarray(value, dtype=aval.dtype)
        self.aval = aval

    def __repr__(self) -> str:
        return f"Literal({format_literal(self)})"


Atom = Var | Literal


def format_literal(lit: Literal) -> str:
    v = lit.value.item()
    if isinstance(v, float):
        text = repr(v)
    elif isinstance(v, bool):
        text = str(v)
    else:
        text = str(v)
    return f"{text}:{lit.aval.str_short()}"


class Eqn:
    """One operation: ``outvars = primitive[params](invars)``, remembering where the user wrote it."""

    __slots__ = ("primitive", "invars", "outvars", "params", "source")

    def __init__(self, primitive, invars: Sequence[Atom], outvars: Sequence[Var],
                 params: dict, source: SourceInfo | None):
        self.primitive = primitive
        self.invars = list(invars)
        self.outvars = list(outvars)
        self.params = params
        self.source = source

    def replace(self, **changes) -> "Eqn":
        """A copy of this equation with some fields replaced."""
        fields = dict(primitive=self.primitive, invars=self.invars, outvars=self.outvars,
                      params=self.params, source=self.source)
        fields.update(changes)
        return Eqn(**fields)

    def __repr__(self) -> str:
        return f"Eqn({self.primitive.name}, {len(self.invars)} in, {len(self.outvars)} out)"


class IR:
    """A whole program: constvars and invars in, equations in order, outvars out."""

    __slots__ = ("constvars", "invars", "eqns", "outvars", "__weakref__")

    def __init__(self, constvars: Sequence[Var], invars: Sequence[Var],
                 eqns: Sequence[Eqn], outvars: Sequence[Atom]):
        self.constvars = list(constvars)
        self.invars = list(invars)
        self.eqns = list(eqns)
        self.outvars = list(outvars)

    @property
    def in_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.invars]

    @property
    def out_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.outvars]

    def __str__(self) -> str:
        return pretty_print(self)

    def __repr__(self) -> str:
        return pretty_print(self)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(pretty_print(self))


class ClosedIR:
    """An IR together with the values of its constvars: a self-contained program."""

    __slots__ = ("ir", "consts")

    def __init__(self, ir: IR, consts: Sequence[Any]):
        assert len(ir.constvars) == len(consts)
        self.ir = ir
        self.consts = list(consts)

    @property
    def in_avals(self) -> list[ShapedArray]:
        return self.ir.in_avals

    @property
    def out_avals(self) -> list[ShapedArray]:
        return self.ir.out_avals

    def __str__(self) -> str:
        return pretty_print(self.ir)

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(pretty_print(self.ir))


# ---------------------------------------------------------------------------- printing

def _names() -> Iterator[str]:
    """a, b, ..., z, ba, bb, ...: the jaxpr naming scheme."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    n = 0
    while True:
        k, s = n, ""
        while True:
            s = letters[k % 26] + s
            k //= 26
            if k == 0:
                break
        yield s
        n += 1


class _Namer:
    def __init__(self):
        self.names: dict[int, str] = {}
        self.gen = _names()

    def bind(self, v: Var) -> str:
        name = next(self.gen)
        self.names[id(v)] = name
        return name

    def atom(self, a: Atom) -> str:
        if isinstance(a, Literal):
            return format_literal(a)
        return self.names.get(id(a), "?" + a.aval.str_short())


def _format_param(value: Any, indent: int) -> str:
    if isinstance(value, ClosedIR):
        value = value.ir
    if isinstance(value, IR):
        # A sub-program (cond branch, loop body) prints nested, one level right of its equation.
        inner = pretty_print(value, indent + 8)
        return "\n" + inner
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if isinstance(value, (tuple, list)) and any(isinstance(x, (IR, ClosedIR)) for x in value):
        return "(" + ",".join(_format_param(x, indent) for x in value) + ")"
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return repr(value)


def pretty_print(ir: IR, indent: int = 0) -> str:
    """The jaxpr-style text of an IR. Deterministic: the same program prints the same."""
    namer = _Namer()
    pad = " " * indent

    def binders(vs):
        return " ".join(f"{namer.bind(v)}:{v.aval.str_short()}" for v in vs)

    consts = binders(ir.constvars)
    ins = binders(ir.invars)
    lines = [f"{pad}{{ lambda {consts}; {ins}. let"]
    for eqn in ir.eqns:
        args = " ".join(namer.atom(a) for a in eqn.invars)
        outs = " ".join(f"{namer.bind(v)}:{v.aval.str_short()}" for v in eqn.outvars) or "_"
        params = ""
        if eqn.params:
            items = ", ".join(f"{k}={_format_param(eqn.params[k], indent)}"
                              for k in sorted(eqn.params))
            params = f"[{items}]"
        lines.append(f"{pad}    {outs} = {eqn.primitive.name}{params} {args}".rstrip())
    outs = ", ".join(namer.atom(a) for a in ir.outvars)
    trailing = "," if len(ir.outvars) == 1 else ""
    lines.append(f"{pad}  in ({outs}{trailing}) }}")
    return "\n".join(lines)


def ir_fingerprint(ir: IR) -> str:
    """A stable digest of the program text (for cache keys)."""
    import hashlib
    return hashlib.sha256(pretty_print(ir).encode()).hexdigest()
