"""``jitgrad.numpy.linalg``: the linear-algebra functions jitgrad supports."""
from .linalg_ops import matmul, norm, outer, tensordot, trace, diagonal, vecdot  # noqa: F401
