"""jitgrad: a JIT compiler for numerical Python with JAX's programming model.

    import jitgrad
    import jitgrad.numpy as jnp
    from jitgrad import jit

See README.md for a tour; ``jitgrad.make_ir(f)(*args)`` shows what a function traces to.
"""
from .core.config import config
from .core.array import Array
from .core.errors import (ConcretizationTypeError, JitgradError, NonConcreteBooleanIndexError,
                          ShapeError, DTypeError, TracerArrayConversionError,
                          TracerBoolConversionError, TracerIntegerConversionError,
                          UnexpectedTracerError, InvalidArgumentError)
from . import numpy, lax, tree  # noqa: F401  (installs Array's operators)
from .api import jit, make_ir, make_jaxpr  # noqa: F401
from .core import pytree as tree_util  # noqa: F401

__version__ = "0.1.0"


def block_until_ready(x):
    """Wait for every array in the pytree ``x`` (CPU results are always ready)."""
    return tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def device_get(x):
    """The pytree ``x`` with every array converted to a numpy array."""
    import numpy as _np
    return tree.map(lambda a: _np.asarray(a) if isinstance(a, Array) else a, x)
