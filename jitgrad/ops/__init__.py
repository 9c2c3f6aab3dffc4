"""The primitives, one module per family; importing this package registers all of them."""
from . import calls, elementwise, indexing, layout, linalg, reductions  # noqa: F401
from . import control  # noqa: F401  (cond, while, scan: after the ops their rules use)
from . import debugging  # noqa: F401  (debug_callback: jitgrad.debug.print)
from . import conv, windows  # noqa: F401  (convolution, pooling)
