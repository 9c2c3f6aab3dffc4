"""Primitives that wrap other computations or change only how they are differentiated."""
from __future__ import annotations

import numpy as np

from ..core.primitive import ELEMENTWISE, Primitive

# stop_gradient: the identity on values; its derivative is zero.
stop_gradient_p = Primitive("stop_gradient", ELEMENTWISE)
stop_gradient_p.impl = lambda x: np.asarray(x)
stop_gradient_p.abstract_eval = lambda x: x


# ------------------------------------------------------------------ batching rules
from ..core.rules import defbroadcasting  # noqa: E402

defbroadcasting(stop_gradient_p)


# ------------------------------------------------------------------ autodiff rules
# stop_gradient's derivative is zero (conventions in jitgrad/transforms/ad.py).
from ..core.rules import defjvp_zero  # noqa: E402

defjvp_zero(stop_gradient_p)
