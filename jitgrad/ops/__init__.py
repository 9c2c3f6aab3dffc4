"""The primitives, one module per family; importing this package registers all of them."""
from . import calls, elementwise, indexing, layout, linalg, reductions  # noqa: F401
