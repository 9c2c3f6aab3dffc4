"""Which trace handles a primitive right now. One per thread, so threads can trace at once."""
from __future__ import annotations

import contextlib
import threading


class _State(threading.local):
    trace = None          # the current trace; None means the eager evaluator
    source = None         # a SourceInfo that overrides the caller's line (re-staging an IR)


_state = _State()
_default = None


def set_default(trace) -> None:
    """Install the eager evaluator (done once by jitgrad.core.trace)."""
    global _default
    _default = trace


def current():
    """The trace that handles the next primitive application."""
    t = _state.trace
    return _default if t is None else t


def is_eager() -> bool:
    """True when no trace or transformation is active: operations run on data right away."""
    return _state.trace is None


@contextlib.contextmanager
def set_current(trace):
    """Make ``trace`` handle primitives inside the block (restored afterwards)."""
    previous = _state.trace
    _state.trace = None if trace is _default else trace
    try:
        yield trace
    finally:
        _state.trace = previous


@contextlib.contextmanager
def source_override(source):
    """Record ``source`` as the user line of equations staged inside the block."""
    previous = _state.source
    _state.source = source
    try:
        yield
    finally:
        _state.source = previous


def source() -> object:
    return _state.source
