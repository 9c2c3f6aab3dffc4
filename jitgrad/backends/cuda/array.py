"""``DeviceArrayImpl``: a concrete jitgrad array whose data lives on a GPU.

It holds a flat numba device buffer, its abstract value (shape, dtype, weak type) and its
device. It is a ``jitgrad.Array`` like any other: operators, ``jnp`` functions and
``jit`` accept it, and the work runs where the data is:

* an eager operation on a GPU array (``x + 1`` outside ``jit``) compiles that one
  operation for the cuda backend and runs it on the device (cached per primitive and
  parameters, as JAX's eager mode does), so the result stays on the GPU;
* ``jit(f, backend="cuda")`` executables take GPU arrays as they are and return GPU
  arrays, so a training loop keeps its weights on the device between steps.

Data moves between host and device only in these ways, all of them documented:

* explicitly: ``jitgrad.device_put(x, device)``, ``jitgrad.device_get(x)``,
  ``np.asarray(x)``, printing, ``float(x)``/``x.item()``, pickling (which stores a host
  copy);
* host *input data* flowing into a GPU computation: numpy arrays and Python scalars are
  copied to the device on every call, as in JAX (a batch of training data);
* a jitgrad host array (``ArrayImpl``) passed to a cuda-jitted function is copied too,
  as JAX moves an uncommitted array; ``jax_transfer_guard`` says what happens then:
  ``"log"`` (the default) logs a warning once per argument naming it, ``"allow"`` is
  silent, ``"disallow"`` raises. Put such values on the device once with
  ``device_put`` instead (the weights of a training loop). Inside one *eager* operation
  on a GPU array (``x_gpu + jnp.ones(3)``, or the constants ``grad`` makes) host
  operands move with it silently, as in JAX.

A GPU array never moves to the host implicitly: passing one to a host executable
(``backend="cpu"``/``"reference"``) or mixing arrays of two GPUs is a ``DeviceMismatchError``.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Sequence

import numpy as np

from ...core.abstract import ShapedArray
from ...core.array import Array, ArrayImpl
from ...core.device import Device
# DeviceMismatchError and host_executable_error live in the core so that api.py can raise
# them without importing this module (which imports api); re-exported here.
from ...core.errors import DeviceMismatchError, JitgradError, host_executable_error  # noqa: F401
from . import runtime

logger = logging.getLogger("jitgrad")


class TransferGuardError(JitgradError, RuntimeError):
    """An implicit host-to-device copy that ``jax_transfer_guard="disallow"`` forbids."""


class DeviceArrayImpl(Array):
    """A concrete array on a GPU (see the module docstring)."""

    __slots__ = ("_buf", "_aval", "_device")

    def __init__(self, buf, aval: ShapedArray, device: Device):
        self._buf = buf          # flat, C-contiguous numba device array of aval.size elements
        self._aval = aval
        self._device = device

    # -- what it is
    @property
    def aval(self) -> ShapedArray:
        return self._aval

    @property
    def shape(self) -> tuple[int, ...]:
        return self._aval.shape

    @property
    def dtype(self) -> np.dtype:
        return self._aval.dtype

    @property
    def weak_type(self) -> bool:
        return self._aval.weak_type

    @property
    def device(self) -> Device:
        """The GPU holding the data."""
        return self._device

    def devices(self) -> set:
        """``{x.device}``, as ``jax.Array.devices()``."""
        return {self._device}

    # -- explicit copies to the host
    def _host(self) -> np.ndarray:
        with runtime.device_context(self._device):
            return runtime.to_host(self._buf, self._aval.shape, self._aval.dtype)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        value = self._host()
        return value if dtype is None else value.astype(dtype, copy=False)

    def block_until_ready(self) -> "DeviceArrayImpl":
        """Wait until the kernels computing this array have finished."""
        with runtime.device_context(self._device):
            runtime.synchronize()
        return self

    def item(self, *args):
        return self._host().item(*args)

    def tolist(self):
        return self._host().tolist()

    def copy(self) -> "DeviceArrayImpl":
        """A copy on the same device."""
        with runtime.device_context(self._device):
            buf = runtime.empty(self._aval.size, self._aval.dtype)
            if self._aval.size:
                buf.copy_to_device(self._buf)
        return DeviceArrayImpl(buf, self._aval, self._device)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        # Pickles as a host array (the device may not exist where it is unpickled).
        return (ArrayImpl, (self._host(), self._aval.weak_type))

    def __bool__(self) -> bool:
        return bool(self._host())

    def __int__(self) -> int:
        return int(self._host())

    def __float__(self) -> float:
        return float(self._host())

    def __index__(self) -> int:
        return self._host().__index__()

    def __complex__(self) -> complex:
        return complex(self._host())

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d jitgrad array")
        return (self[i] for i in range(self.shape[0]))

    def __format__(self, spec: str) -> str:
        if not self.shape:
            return format(self._host().item(), spec)
        return format(str(self), spec)

    def __str__(self) -> str:
        return str(self._host())

    def __repr__(self) -> str:
        body = np.array2string(self._host(), separator=", ", prefix="Array(")
        extra = ", weak_type=True" if self._aval.weak_type else ""
        return f"Array({body}, dtype={self._aval.dtype.name}{extra}, device={self._device})"

    # -- eager operations run on the device
    def _eager_apply(self, primitive, args: Sequence[Any], params: dict):
        """Run ``primitive`` eagerly where this array lives (called by the eager trace)."""
        return eager_apply(primitive, args, params)


# ------------------------------------------------------------------ eager dispatch

_EAGER: dict[tuple, Any] = {}
_EAGER_LOCK = threading.Lock()


def eager_apply(primitive, args: Sequence[Any], params: dict):
    """``primitive.bind(*args, **params)`` compiled alone for the cuda backend and run."""
    try:
        key = (primitive.name, tuple(sorted(params.items())))
        hash(key)
    except TypeError:
        key = None
    fn = _EAGER.get(key) if key is not None else None
    if fn is None:
        from ...api import jit

        def one_op(*xs):
            return primitive.bind(*xs, **params)
        one_op.__name__ = primitive.name
        fn = jit(one_op, backend="cuda")
        if key is not None:
            with _EAGER_LOCK:
                fn = _EAGER.setdefault(key, fn)
    # Host operands of one eager operation (a Python constant made an array by jnp, a
    # cotangent seed of grad) move with it, as JAX's uncommitted arrays do: no guard log.
    _eager.active = getattr(_eager, "active", 0) + 1
    try:
        return fn(*args)
    finally:
        _eager.active -= 1


_eager = threading.local()


# ------------------------------------------------------------------ arguments of a call

_warned: set = set()


def transfer_guard_mode() -> str:
    from ...core.config import config
    return config.read("jax_transfer_guard")


def device_buffer(x: Any, aval: ShapedArray, device: Device, where: str):
    """The device buffer for one argument of a cuda computation on ``device``.

    GPU arrays pass as they are (on the right device); host values are copied (see the
    module docstring for when that is logged or refused).
    """
    if type(x) is DeviceArrayImpl:
        if x._device != device:
            raise DeviceMismatchError(
                f"{where} is on {x._device} but the computation runs on {device}",
                hint="Move it explicitly with jitgrad.device_put(x, device).")
        return x._buf
    if isinstance(x, Array) and not isinstance(x, ArrayImpl):
        raise DeviceMismatchError(f"{where}: cannot use a {type(x).__name__} in a computation on "
                                  f"{device}")
    if type(x) is ArrayImpl and x.ndim > 0 and not getattr(_eager, "active", 0):
        _guard(x, where, device)
    value = np.asarray(x, dtype=aval.dtype)
    return runtime.to_device(value)


def _guard(x: ArrayImpl, where: str, device: Device) -> None:
    mode = transfer_guard_mode()
    if mode == "allow":
        return
    what = (f"{where} is a host array {x.aval.str_short()} used in a computation on {device}; "
            f"it is copied to the device on every call")
    hint = ("Put it on the device once with jitgrad.device_put(x, jitgrad.devices('cuda')[0]) "
            "(or set jitgrad.config.update('jax_transfer_guard', 'allow')).")
    if mode == "disallow":
        raise TransferGuardError(what, hint=hint)
    key = (str(where), x.aval.str_short())
    if key not in _warned:
        _warned.add(key)
        logger.warning("%s. %s", what, hint)

