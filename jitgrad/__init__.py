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
from .transforms.batching import vmap  # noqa: F401
from .transforms.ad import (checkpoint, custom_jvp, custom_vjp, grad, hessian,  # noqa: F401
                            jacfwd, jacrev, jvp, linear_transpose, linearize, remat,
                            value_and_grad, vjp)
from .core import pytree as tree_util  # noqa: F401
from . import debug  # noqa: F401  (jitgrad.debug.print, debug_nans)
from .explain import explain, to_dot  # noqa: F401

__version__ = "0.1.0"


def block_until_ready(x):
    """Wait for every array in the pytree ``x`` (CPU results are always ready)."""
    return tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


# Devices and placement (jax.devices, jax.device_put, jax.device_get): see placement.py.
from .placement import (default_backend, device_count, device_get, device_put,  # noqa: E402,F401
                        devices, local_devices)
from .core.device import Device  # noqa: E402,F401


# The user-level libraries load on first use: ``jitgrad.random``, ``jitgrad.nn``, ...
_LAZY_SUBMODULES = ("random", "nn", "optim", "data", "training")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'jitgrad' has no attribute {name!r}")
