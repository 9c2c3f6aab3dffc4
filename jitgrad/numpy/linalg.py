"""``jitgrad.numpy.linalg``: the linear-algebra functions jitgrad supports.

Norms, products and diagonals only for now: decompositions (SVD, QR, Cholesky, eig) and
solvers need primitives jitgrad does not have yet.
"""
from .linalg_ops import (diagonal, matmul, matrix_norm, norm, outer, tensordot, trace,  # noqa: F401
                         vecdot, vector_norm)
from .shapes import matrix_transpose  # noqa: F401
