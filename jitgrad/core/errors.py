"""jitgrad's exceptions, and where in the user's code an operation came from.

Every error a user can cause names the operation, the shapes/dtypes involved, the user's
own source line, and what to do instead. The classes also derive from the builtin
exception JAX raises in the same situation (mostly TypeError), so ``except TypeError``
code written for JAX keeps working.
"""
from __future__ import annotations

import linecache
import os
import sys
from typing import Optional

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SourceInfo:
    """A place in the user's code: file, line and function, shown in IR dumps and errors."""

    __slots__ = ("filename", "lineno", "function")

    def __init__(self, filename: str, lineno: int, function: str):
        self.filename, self.lineno, self.function = filename, lineno, function

    def line_text(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip()

    def __str__(self) -> str:
        text = self.line_text()
        where = f"{self.filename}:{self.lineno} ({self.function})"
        return f"{where}: {text}" if text else where

    def short(self) -> str:
        return f"{os.path.basename(self.filename)}:{self.lineno}"


def _is_internal(filename: str) -> bool:
    # jitgrad's own modules, generated kernels ("<jitgrad-...>") and the import machinery.
    return (filename.startswith(_PACKAGE_DIR) or filename.startswith("<frozen")
            or filename.startswith("<jitgrad"))


def user_source_info(skip: int = 1) -> Optional[SourceInfo]:
    """The innermost frame on the stack that is not jitgrad's own code (the user's line)."""
    frame = sys._getframe(skip)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_internal(filename):
            return SourceInfo(filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


class JitgradError(Exception):
    """Base class of every error jitgrad raises about a user's program."""

    def __init__(self, message: str, *, hint: str | None = None,
                 source: SourceInfo | None = None, find_source: bool = True):
        if source is None and find_source:
            source = user_source_info(2)
        self.message, self.hint, self.source = message, hint, source
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.source is not None:
            text += f"\n  at {self.source}"
        if self.hint:
            text += f"\n  {self.hint}"
        return text

    def with_source(self, source: SourceInfo | None) -> "JitgradError":
        """Point the error at ``source`` (the equation's recorded user line) and re-render."""
        if source is not None:
            self.source = source
            self.args = (self._render(),)
        return self


class ShapeError(JitgradError, TypeError):
    """Operands whose shapes do not fit the operation (JAX raises TypeError here)."""


class DTypeError(JitgradError, TypeError):
    """Operands whose dtypes do not fit the operation."""


class ConcretizationTypeError(JitgradError, TypeError):
    """Python needed a concrete value (for ``if``, ``int()``, a shape) but got a traced one."""


class TracerBoolConversionError(ConcretizationTypeError):
    """``bool()`` / ``if`` / ``while`` on a traced value."""


class TracerIntegerConversionError(ConcretizationTypeError):
    """``int()`` / ``operator.index`` on a traced value."""


class TracerArrayConversionError(JitgradError, TypeError):
    """``np.asarray`` on a traced value."""


class UnexpectedTracerError(JitgradError):
    """A traced value escaped the function that was being traced (stored in a global, say)."""


class NonConcreteBooleanIndexError(JitgradError, IndexError):
    """Boolean-mask indexing whose result shape depends on traced values."""


class InvalidArgumentError(JitgradError, TypeError):
    """An argument that jitgrad cannot trace (a string, a function) or an unknown keyword."""


class DeviceMismatchError(JitgradError, ValueError):
    """Arrays on different devices met in one computation (JAX raises ValueError here)."""


def host_executable_error(x, backend: str) -> DeviceMismatchError:
    """The error for a device (GPU) array ``x`` given to a host (cpu/reference) executable.

    Here rather than in ``backends/cuda`` so that ``api`` and the cuda backend can both
    import it downward.
    """
    return DeviceMismatchError(
        f"an argument {x.aval.str_short()} lives on {x.device}, but this computation runs on "
        f"the host (backend {backend!r}); jitgrad never copies device arrays back implicitly",
        hint="Copy it explicitly with jitgrad.device_get(x), or compile with "
             "jit(f, backend='cuda') (or jitgrad.config.update('jax_platform_name', 'cuda')).")
