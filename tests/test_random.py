"""jitgrad.random: Threefry known answers, JAX's bits, jit/vmap invariance, distributions."""
import pickle

import numpy as np
import pytest
from scipy import stats

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit, random

U32 = np.uint32


@pytest.fixture
def original_scheme():
    """Select JAX's pre-0.5 split/bits scheme for one test."""
    previous = jitgrad.config.jax_threefry_partitionable
    jitgrad.config.update("jax_threefry_partitionable", False)
    try:
        yield
    finally:
        jitgrad.config.update("jax_threefry_partitionable", previous)


# ----------------------------------------------------------------- the hash

# Random123's known-answer vectors for threefry2x32 with 20 rounds: (key, counter, output).
KAT = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6b200159, 0x99ba4efe)),
    ((0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff), (0x1cb996fc, 0xbb002be7)),
    ((0x13198a2e, 0x03707344), (0x243f6a88, 0x85a308d3), (0xc4923a9c, 0x483df7a0)),
]


@pytest.mark.parametrize("key,ctr,expected", KAT)
def test_threefry_known_answers(key, ctr, expected):
    def hash_(k0, k1, x0, x1):
        return random.threefry2x32(k0, k1, x0, x1)
    args = (U32(key[0]), U32(key[1]), np.array([ctr[0]], U32), np.array([ctr[1]], U32))
    for fn in (hash_, jit(hash_)):
        y0, y1 = fn(*args)
        assert (int(y0[0]), int(y1[0])) == expected


def test_threefry_2x32_pairs_the_two_halves_of_the_counts():
    key = np.array(KAT[2][0], U32)
    counts = np.array([KAT[2][1][0], 7, KAT[2][1][1], 9], U32)   # pairs (c0, c2), (c1, c3)
    out = np.asarray(random.threefry_2x32(key, counts))
    assert (out[0], out[2]) == KAT[2][2]
    # An odd number of counts is padded with one zero and the pad is dropped again.
    odd = np.asarray(random.threefry_2x32(key, np.arange(5, dtype=U32).reshape(5)))
    assert odd.shape == (5,) and odd.dtype == U32
    np.testing.assert_array_equal(jit(random.threefry_2x32)(key, np.arange(5, dtype=U32)), odd)


def test_the_hash_is_plain_uint32_arithmetic_in_the_ir():
    ir = jitgrad.make_ir(lambda k: random.bits(k, (3,)))(random.key(0))
    names = {e.primitive.name for e in ir.ir.eqns}
    assert names <= {"add", "xor", "shift_left", "shift_right_logical", "or", "iota", "reshape",
                     "slice", "squeeze", "concatenate", "broadcast_in_dim", "convert_element_type"}


# ----------------------------------------------------------------- JAX's values

def test_keys_from_seeds():
    for seed, data in [(0, [0, 0]), (42, [0, 42]), (-1, [0, 0xFFFFFFFF])]:
        k = random.key(seed)
        assert k.dtype == U32 and k.shape == (2,)
        np.testing.assert_array_equal(k, np.array(data, U32))
        np.testing.assert_array_equal(random.PRNGKey(seed), k)
    np.testing.assert_array_equal(jit(random.key)(7), random.key(7))   # a traced seed


def test_keys_from_seeds_x64(x64):
    np.testing.assert_array_equal(random.key(-1), np.array([0xFFFFFFFF] * 2, U32))
    np.testing.assert_array_equal(random.key(2 ** 32 + 5), np.array([1, 5], U32))


# Outputs of jax.random (jax >= 0.5, partitionable Threefry), e.g. in public JAX test suites.
JAX_SPLITS = {
    0: [[1797259609, 2579123966], [928981903, 3453687069]],
    1: [[507451445, 1853169794], [1948878966, 4237131848]],
    2: [[1821159224, 3364244817], [637334850, 3278974502]],
}
JAX_UNIFORM_SPLIT0_1 = [[0.00729382, 0.02089119, 0.5814265, 0.36183798],
                        [0.22303772, 0.11928833, 0.12543893, 0.61683],
                        [0.0950073, 0.9834225, 0.4248221, 0.8324801],
                        [0.0966121, 0.22702086, 0.3545748, 0.67104137]]
JAX_NORMAL_SPLIT0_0 = [[1.0040143, -0.9063372, -0.7481722, -1.1713669],
                       [-0.8712328, 0.58883816, 0.72392994, -1.0255982],
                       [1.661628, -1.8910251, -1.2889339, 0.13360691],
                       [-1.1530392, 0.23929629, 1.7448071, 0.5050189]]


@pytest.mark.parametrize("seed", sorted(JAX_SPLITS))
def test_split_matches_jax(seed):
    np.testing.assert_array_equal(random.split(random.PRNGKey(seed)), np.array(JAX_SPLITS[seed], U32))


def test_uniform_and_normal_match_jax():
    k1, k2 = random.split(random.PRNGKey(0))
    u = np.asarray(random.uniform(k2, (4, 4)))
    assert u.dtype == np.float32
    # equal to the printed precision of the reference (8 significant digits)
    np.testing.assert_allclose(u, JAX_UNIFORM_SPLIT0_1, rtol=2e-7, atol=0)
    # erf_inv may differ from XLA's by an ulp or two.
    np.testing.assert_allclose(random.normal(k1, (4, 4)), JAX_NORMAL_SPLIT0_0, rtol=2e-6, atol=1e-6)



# ----------------------------------------------------------------- jax 0.10.2, literally
# Produced with jax 0.10.2 / jaxlib 0.10.2 (CPU, default config: jax_threefry_partitionable
# True, x64 off) by evaluating the quoted `jax.random` call with
#   import jax.numpy as jnp, jax.random as jr;  k = jr.PRNGKey(42)
#   L  = jnp.log(jnp.array([[.1, .2, .3, .4], [.7, .1, .1, .1], [.25, .25, .25, .25]]))
#   L1 = jnp.log(jnp.arange(1., 9.));  p = jnp.array([.1, .2, .05, .3, .35])
#   A  = jnp.arange(12).reshape(3, 4);  U10 = jr.uniform(k, (10,))
# Each entry: jitgrad call, expected values, dtype. Integer/bit outputs must match exactly.
_L = np.log(np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1], [0.25] * 4], np.float32))
_L1 = np.log(np.arange(1.0, 9.0, dtype=np.float32))
_P = np.array([0.1, 0.2, 0.05, 0.3, 0.35], np.float32)
_A = np.arange(12, dtype=np.int32).reshape(3, 4)
_U10 = np.array([0.48870957, 0.6797972, 0.6162715, 0.5610161, 0.4506446, 0.58586586,
                 0.07480943, 0.7751334, 0.69895923, 0.8186337], np.float32)  # jr.uniform(k, (10,))

JAX_EXACT = {  # name: (jitgrad call on key k, expected, dtype)
    # jr.split(k, 3)
    "split": (lambda k: random.split(k, 3),
              [[1832780943, 270669613], [64467757, 2916123636], [2465931498, 255383827]], U32),
    # jr.fold_in(k, 7)
    "fold_in": (lambda k: random.fold_in(k, 7), [2547012911, 1371500959], U32),
    # jr.bits(k, (5,)), jr.bits(k, (6,), jnp.uint8), jr.bits(k, (2, 3), jnp.uint16)
    "bits": (lambda k: random.bits(k, (5,)),
             [2098992034, 2919706841, 2646866425, 2409546199, 1935504149], U32),
    "bits_u8": (lambda k: random.bits(k, (6,), np.uint8), [162, 217, 249, 215, 21, 216], np.uint8),
    "bits_u16": (lambda k: random.bits(k, (2, 3), np.uint16),
                 [[5026, 12505, 63993], [49623, 29461, 20184]], np.uint16),
    # jr.uniform(k, (10,))
    "uniform": (lambda k: random.uniform(k, (10,)), _U10, np.float32),
    # jr.randint(k, (6,), -5, 17)
    "randint": (lambda k: random.randint(k, (6,), -5, 17), [7, 7, 4, 14, 10, 12], np.int32),
    # jr.randint(k, (6,), -128, 127, jnp.int8): jax 0.10 draws 8/16-bit ints in 32 bits
    "randint_int8": (lambda k: random.randint(k, (6,), -128, 127, np.int8),
                     [61, -119, -122, -109, 66, 31], np.int8),
    # jr.randint(k, (6,), 0, 256, jnp.uint8)
    "randint_uint8_256": (lambda k: random.randint(k, (6,), 0, 256, np.uint8),
                          [196, 18, 183, 193, 141, 107], np.uint8),
    # jr.randint(k, (6,), -1000, 1000, jnp.int16)
    "randint_int16": (lambda k: random.randint(k, (6,), -1000, 1000, np.int16),
                      [-356, -86, -929, -631, 709, 419], np.int16),
    # jr.bernoulli(k, 0.3, (10,))
    "bernoulli": (lambda k: random.bernoulli(k, 0.3, (10,)),
                  [0, 0, 0, 0, 0, 0, 1, 0, 0, 0], np.bool_),
    # jr.bernoulli(k, jnp.nextafter(U10, 1.0), mode="high")  (mode="low" gives all True)
    "bernoulli_high": (lambda k: random.bernoulli(k, np.nextafter(_U10, np.float32(1)), mode="high"),
                       [0, 0, 0, 0, 0, 0, 0, 0, 1, 0], np.bool_),
    # jr.categorical(k, L)
    "categorical": (lambda k: random.categorical(k, _L), [3, 0, 3], np.int32),
    # jr.categorical(k, L, axis=0, shape=(2, 4))
    "categorical_shape": (lambda k: random.categorical(k, _L, axis=0, shape=(2, 4)),
                          [[1, 2, 0, 2], [1, 0, 0, 0]], np.int32),
    # jr.categorical(k, L, shape=(2, 3), mode="high")
    "categorical_high": (lambda k: random.categorical(k, _L, shape=(2, 3), mode="high"),
                         [[3, 2, 2], [2, 2, 2]], np.int32),
    # jr.categorical(k, L1, shape=(5,), replace=False)
    "categorical_noreplace": (lambda k: random.categorical(k, _L1, shape=(5,), replace=False),
                              [7, 5, 3, 4, 2], np.int32),
    # jr.categorical(k, L, shape=(3, 3), replace=False)
    "categorical_noreplace_batch": (
        lambda k: random.categorical(k, _L, shape=(3, 3), replace=False),
        [[3, 0, 3], [2, 3, 1], [1, 1, 0]], np.int32),
    # jr.choice(k, 10, (6,)) / (..., replace=False) / jr.choice(k, 5, (6,), p=p)
    "choice": (lambda k: random.choice(k, 10, (6,)), [4, 4, 1, 9, 9, 9], np.int32),
    "choice_noreplace": (lambda k: random.choice(k, 10, (6,), replace=False),
                         [7, 4, 2, 5, 3, 6], np.int32),
    "choice_p": (lambda k: random.choice(k, 5, (6,), p=_P), [3, 2, 3, 3, 3, 3], np.int32),
    # jr.choice(k, 5, (3,), replace=False, p=p)
    "choice_p_noreplace": (lambda k: random.choice(k, 5, (3,), replace=False, p=_P),
                           [3, 1, 4], np.int32),
    # jr.choice(k, A, (2,), replace=False, axis=1)
    "choice_columns": (lambda k: random.choice(k, _A, (2,), replace=False, axis=1),
                       [[2, 3], [6, 7], [10, 11]], np.int32),
    # jr.permutation(k, 10) / jr.permutation(k, A, axis=1) / (..., independent=True)
    "permutation": (lambda k: random.permutation(k, 10), [7, 4, 2, 5, 3, 6, 8, 9, 0, 1], np.int32),
    "permutation_axis1": (lambda k: random.permutation(k, _A, axis=1),
                          [[2, 3, 0, 1], [6, 7, 4, 5], [10, 11, 8, 9]], np.int32),
    "permutation_independent": (lambda k: random.permutation(k, _A, axis=1, independent=True),
                                [[2, 3, 0, 1], [7, 4, 5, 6], [10, 11, 8, 9]], np.int32),
}

# Float samplers through log / log1p / erf / erf_inv, or a range other than [0, 1): XLA's
# transcendentals and its fused multiply-add may differ from jitgrad's in the last bits
# (see the jitgrad.random docstring), so these compare to a few ulps.
JAX_CLOSE = {
    # jr.uniform(k, (5,), minval=-2.0, maxval=3.0)
    "uniform_range": (lambda k: random.uniform(k, (5,), minval=-2.0, maxval=3.0),
                      [0.44354784, 1.3989859, 1.0813575, 0.8050804, 0.25322306]),
    # jr.normal(k, (5,))
    "normal": (lambda k: random.normal(k, (5,)),
               [-0.028304616, 0.46713185, 0.29570296, 0.15354592, -0.12403282]),
    # jr.truncated_normal(k, -1.0, 2.0, (5,))
    "truncated_normal": (lambda k: random.truncated_normal(k, -1.0, 2.0, (5,)),
                         [0.14770006, 0.5684449, 0.4210255, 0.29997, 0.06911382]),
    # jr.gumbel(k, (4,)) / jr.gumbel(k, (4,), mode="high")
    "gumbel": (lambda k: random.gumbel(k, (4,)), [0.3340934, 0.95201945, 0.72553056, 0.5481715]),
    "gumbel_high": (lambda k: random.gumbel(k, (4,), mode="high"),
                    [0.399258, -0.12997562, 0.043095414, 0.19444373]),
}


@pytest.mark.parametrize("name", sorted(JAX_EXACT))
def test_matches_jax_0_10_exactly(name):
    fn, expected, dtype = JAX_EXACT[name]
    k = random.PRNGKey(42)
    for got in (fn(k), jit(fn)(k)):
        got = np.asarray(got)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, np.array(expected).astype(dtype))


@pytest.mark.parametrize("name", sorted(JAX_CLOSE))
def test_matches_jax_0_10_to_a_few_ulps(name):
    fn, expected = JAX_CLOSE[name]
    got = np.asarray(fn(random.PRNGKey(42)))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(expected, np.float32), rtol=4e-6, atol=4e-7)


def test_categorical_without_replacement_draws_distinct_indices_in_a_trace():
    logits = np.zeros((4, 6), np.float32)
    draws = np.asarray(jit(lambda k: random.categorical(k, logits, axis=1, shape=(6, 4),
                                                        replace=False))(random.key(3)))
    assert draws.shape == (6, 4)
    assert all(sorted(draws[:, j]) == list(range(6)) for j in range(4))
    np.testing.assert_array_equal(
        draws, random.categorical(random.key(3), logits, axis=1, shape=(6, 4), replace=False))
    with pytest.raises(ValueError, match="cannot exceed"):
        random.categorical(random.key(3), logits, axis=1, shape=(7, 4), replace=False)


def test_high_modes_resolve_tiny_probabilities():
    # p = 1e-9 is below float32's uniform resolution: mode="low" never fires, "high" can.
    k = random.key(4)
    low = np.asarray(random.bernoulli(k, np.float32(1e-9), (1000,)))
    assert not low.any()
    hits = int(np.asarray(random.bernoulli(k, np.full(20_000, 1e-3, np.float32), mode="high")).sum())
    assert 5 <= hits <= 45     # 20 expected
    g = np.asarray(random.gumbel(k, (100_000,), mode="high"), np.float64)
    assert abs(g.mean() - np.euler_gamma) < 0.02
    with pytest.raises(NotImplementedError, match="highest"):
        random.gumbel(k, (2,), mode="highest")
    with pytest.raises(ValueError, match="mode"):
        random.bernoulli(k, 0.5, (2,), mode="medium")

def test_original_scheme_matches_old_jax(original_scheme):
    # jax < 0.5: split(PRNGKey(0)) and the quickstart's normal(PRNGKey(0), (10,)).
    np.testing.assert_array_equal(random.split(random.PRNGKey(0)),
                                  np.array([[4146024105, 967050713], [2718843009, 1272950319]], U32))
    expected = [-0.3721109, 0.26423115, -0.18252768, -0.7368197, -0.44030377, -0.1521442,
                -0.67135346, -0.5908641, 0.73168886, 0.5673026]
    np.testing.assert_allclose(random.normal(random.PRNGKey(0), (10,)), expected, rtol=2e-6, atol=1e-6)


def test_original_scheme_narrow_bits_are_the_words_little_endian(original_scheme):
    k = random.key(5)
    words = np.asarray(random.bits(k, (3,)))            # 3 words
    halves = np.asarray(random.bits(k, (6,), np.uint16))  # the same 3 words, split
    np.testing.assert_array_equal(halves, words.view(np.uint16))
    quarters = np.asarray(random.bits(k, (5,), np.uint8))
    np.testing.assert_array_equal(quarters, np.asarray(random.bits(k, (2,))).view(np.uint8)[:5])


def test_split_is_fold_in_when_partitionable():
    k = random.key(123)
    keys = random.split(k, 5)
    for i in range(5):
        np.testing.assert_array_equal(keys[i], random.fold_in(k, i))
    assert random.split(k, (2, 3)).shape == (2, 3, 2)
    np.testing.assert_array_equal(random.split(k, (2, 3)).reshape(6, 2), random.split(k, 6))


def test_bits_are_row_major_counters():
    k = random.key(9)
    np.testing.assert_array_equal(np.asarray(random.bits(k, (2, 3))).ravel(), random.bits(k, (6,)))
    b = random.bits(k, (4,), np.uint8)
    assert b.dtype == np.uint8
    np.testing.assert_array_equal(b, np.asarray(random.bits(k, (4,))).astype(np.uint8))


def test_float64_and_uint64_with_x64(x64):
    k = random.key(1)
    u = random.uniform(k, (1000,), jnp.float64)
    assert u.dtype == np.float64 and 0 <= float(u.min()) and float(u.max()) < 1
    b = np.asarray(random.bits(k, (3,), np.uint64))
    y0y1 = np.asarray(random.split(k, 3)).astype(np.uint64)   # the same counters (0, i)
    np.testing.assert_array_equal(b, (y0y1[:, 0] << np.uint64(32)) | y0y1[:, 1])


# ----------------------------------------------------------------- invariance

SAMPLERS = {
    "split": lambda k: random.split(k, 3),
    "fold_in": lambda k: random.fold_in(k, 17),
    "bits": lambda k: random.bits(k, (7,)),
    "uniform": lambda k: random.uniform(k, (3, 5), minval=-2.0, maxval=3.0),
    "normal": lambda k: random.normal(k, (9,)),
    "truncated_normal": lambda k: random.truncated_normal(k, -1.0, 2.0, (9,)),
    "bernoulli": lambda k: random.bernoulli(k, 0.3, (11,)),
    "randint": lambda k: random.randint(k, (13,), -5, 17),
    "categorical": lambda k: random.categorical(k, jnp.array([[0.0, 1.0, 2.0], [3.0, 0.0, -1.0]])),
    "choice": lambda k: random.choice(k, 10, (4,), replace=False),
    "choice_p": lambda k: random.choice(k, 4, (6,), p=jnp.array([0.1, 0.2, 0.3, 0.4])),
    "permutation": lambda k: random.permutation(k, 12),
    "gumbel": lambda k: random.gumbel(k, (5,)),
    "exponential": lambda k: random.exponential(k, (5,)),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_bits_eagerly_and_under_jit(name):
    fn = SAMPLERS[name]
    k = random.key(2024)
    eager = np.asarray(fn(k))
    np.testing.assert_array_equal(np.asarray(jit(fn)(k)), eager)
    np.testing.assert_array_equal(np.asarray(fn(k)), eager)   # deterministic


@pytest.mark.parametrize("name", ["split", "uniform", "normal", "randint", "bernoulli", "fold_in"])
def test_same_bits_under_vmap(name):
    fn = SAMPLERS[name]
    keys = random.split(random.key(5), 4)
    batched = np.asarray(jitgrad.vmap(fn)(keys))
    looped = np.stack([np.asarray(fn(keys[i])) for i in range(4)])
    np.testing.assert_array_equal(batched, looped)


def test_keys_pass_through_jit_and_pickle():
    k = random.key(11)
    restored = pickle.loads(pickle.dumps(k))
    np.testing.assert_array_equal(restored, k)
    np.testing.assert_array_equal(random.normal(restored, (3,)), random.normal(k, (3,)))

    @jit
    def step(key):
        key, sub = random.split(key)
        return key, random.uniform(sub, (2,))
    k1, x1 = step(k)
    assert k1.dtype == U32 and k1.shape == (2,)
    np.testing.assert_array_equal(random.key_data(k1), random.split(k)[0])
    np.testing.assert_array_equal(random.wrap_key_data(np.asarray(k1)), k1)


def test_distinct_keys_give_distinct_streams():
    k1, k2 = random.split(random.key(0))
    assert not np.array_equal(random.bits(k1, (8,)), random.bits(k2, (8,)))
    assert len({tuple(np.asarray(k)) for k in random.split(random.key(0), 64)}) == 64


# ----------------------------------------------------------------- distributions

def _chi2_ok(counts, probs, alpha=1e-4) -> bool:
    counts = np.asarray(counts, np.float64)
    expected = counts.sum() * np.asarray(probs, np.float64)
    stat = ((counts - expected) ** 2 / expected).sum()
    return stat < stats.chi2.ppf(1 - alpha, len(counts) - 1)


def test_uniform_moments_and_range():
    u = np.asarray(random.uniform(random.key(1), (100_000,), minval=2.0, maxval=5.0))
    assert u.min() >= 2.0 and u.max() < 5.0
    assert abs(u.mean() - 3.5) < 0.02 and abs(u.var() - 0.75) < 0.02
    assert stats.kstest((u - 2) / 3, "uniform").pvalue > 1e-4


def test_normal_moments():
    x = np.asarray(random.normal(random.key(2), (100_000,)), np.float64)
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    assert abs(stats.kurtosis(x)) < 0.1
    assert stats.kstest(x, "norm").pvalue > 1e-4


def test_truncated_normal_stays_inside_and_has_the_right_mean():
    x = np.asarray(random.truncated_normal(random.key(3), 0.5, 2.0, (50_000,)), np.float64)
    assert x.min() > 0.5 and x.max() < 2.0
    assert abs(x.mean() - stats.truncnorm.mean(0.5, 2.0)) < 0.01


def test_gumbel_and_exponential_means():
    g = np.asarray(random.gumbel(random.key(4), (100_000,)), np.float64)
    assert abs(g.mean() - np.euler_gamma) < 0.02
    e = np.asarray(random.exponential(random.key(4), (100_000,)), np.float64)
    assert e.min() >= 0 and abs(e.mean() - 1) < 0.02


def test_bernoulli_frequency_and_array_p():
    b = np.asarray(random.bernoulli(random.key(5), 0.3, (100_000,)))
    assert b.dtype == np.bool_ and abs(b.mean() - 0.3) < 0.01
    p = np.array([0.0, 1.0, 0.5], np.float32)
    bp = np.asarray(random.bernoulli(random.key(6), p, (4000, 3)))
    assert not bp[:, 0].any() and bp[:, 1].all() and abs(bp[:, 2].mean() - 0.5) < 0.03


def test_randint_is_uniform_chi_square():
    r = np.asarray(random.randint(random.key(7), (60_000,), 3, 13))
    assert r.dtype == np.int32 and r.min() == 3 and r.max() == 12
    assert _chi2_ok(np.bincount(r - 3, minlength=10), np.full(10, 0.1))


def test_randint_edge_cases():
    k = random.key(8)
    np.testing.assert_array_equal(random.randint(k, (5,), 4, 4), 4)     # empty range -> minval
    full = np.asarray(random.randint(k, (20_000,), 0, 256, jnp.uint8))  # maxval past uint8
    assert full.dtype == np.uint8 and full.max() > 250
    per_row = np.asarray(random.randint(k, (1000, 2), jnp.array([0, 100]), jnp.array([2, 102])))
    assert set(per_row[:, 0]) == {0, 1} and set(per_row[:, 1]) == {100, 101}


def test_categorical_chi_square():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    draws = np.asarray(random.categorical(random.key(9), logits, shape=(40_000,)))
    assert _chi2_ok(np.bincount(draws, minlength=4), [0.1, 0.2, 0.3, 0.4])
    # batch of logits along axis 0: the result has the batch shape
    batch = random.categorical(random.key(9), np.zeros((3, 5), np.float32), axis=0)
    assert batch.shape == (5,) and int(batch.max()) < 3


def test_choice_variants():
    k = random.key(10)
    p = np.array([0.5, 0.25, 0.125, 0.125], np.float32)
    draws = np.asarray(random.choice(k, 4, (40_000,), p=p))
    assert _chi2_ok(np.bincount(draws, minlength=4), p)
    distinct = np.asarray(random.choice(k, 50, (20,), replace=False))
    assert len(set(distinct)) == 20 and distinct.max() < 50
    weighted = np.asarray(random.choice(k, 6, (6,), replace=False, p=np.full(6, 1 / 6, np.float32)))
    assert sorted(weighted) == list(range(6))
    rows = np.arange(12).reshape(4, 3)
    picked = np.asarray(random.choice(k, rows, (2,), replace=False, axis=0))
    assert picked.shape == (2, 3) and all(list(r) in rows.tolist() for r in picked)
    # with replacement, the first draws are uniform over the population
    uni = np.asarray(random.choice(k, 5, (50_000,)))
    assert _chi2_ok(np.bincount(uni, minlength=5), np.full(5, 0.2))


def test_permutation_is_a_permutation_and_shuffles_rows_together():
    k = random.key(12)
    perm = np.asarray(random.permutation(k, 2000))    # 2000 > 1625: two sorting rounds
    assert sorted(perm) == list(range(2000)) and not np.array_equal(perm, np.arange(2000))
    np.testing.assert_array_equal(jit(lambda k: random.permutation(k, 2000))(k), perm)
    x = np.arange(20).reshape(10, 2)
    px = np.asarray(random.permutation(k, x))
    np.testing.assert_array_equal(px[:, 1] - px[:, 0], 1)           # rows kept intact
    np.testing.assert_array_equal(np.sort(px[:, 0]), x[:, 0])
    ind = np.asarray(random.permutation(k, x.T, axis=1, independent=True))
    assert all(sorted(row) == sorted(orig) for row, orig in zip(ind, x.T))


def test_permutation_positions_are_uniform():
    # Where element 0 lands, over many keys: uniform over the 5 positions.
    keys = random.split(random.key(13), 3000)
    perms = np.asarray(jitgrad.vmap(lambda k: random.permutation(k, 5))(keys))
    np.testing.assert_array_equal(perms[7], random.permutation(keys[7], 5))
    pos = np.argmax(perms == 0, axis=1)
    assert _chi2_ok(np.bincount(pos, minlength=5), np.full(5, 0.2))


# ----------------------------------------------------------------- errors

def test_bad_keys_are_clear_errors():
    with pytest.raises(jitgrad.ShapeError, match=r"random.split.*u32\[2\].*f32\[2\]"):
        random.split(np.zeros(2, np.float32))
    with pytest.raises(jitgrad.ShapeError, match="vmap"):
        random.normal(random.split(random.key(0), 3), (2,))
    with pytest.raises(jitgrad.DTypeError, match="randint.*integer"):
        random.randint(random.key(0), (2,), 0, 5, jnp.float32)
    with pytest.raises(jitgrad.DTypeError, match="uniform.*floating"):
        random.uniform(random.key(0), (2,), jnp.int32)
    with pytest.raises(jitgrad.ShapeError, match="does not broadcast"):
        random.uniform(random.key(0), (3,), minval=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="replace=False"):
        random.choice(random.key(0), 3, (5,), replace=False)
    with pytest.raises(TypeError, match="integer"):
        random.key(1.5)
