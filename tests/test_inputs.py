"""Input kinds: what the batches and the shrinking strategies promise."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

import derivcheck._verify as verify_module
from derivcheck import verify
from derivcheck.catalog import catalog
from derivcheck.claims import Arg, Domain
from derivcheck.inputs import (
    KINDS,
    REGIMES,
    BatchPlan,
    _at_most,
    batch_plans,
    buckets_by_size,
    draw_batch,
    in_dtype,
    point_strategy,
)
from derivcheck.profiles import profile_named, search_seed

DOMAIN = Domain(
    (Arg("x", ("n",), kinks=(0.0, 1.0)), Arg("p", ("n",), kind="simplex"),
     Arg("y", ("n",), kind="one_hot"), Arg("s", ("n",), kind="smoothed"),
     Arg("q", ("n",), kind="probability"), Arg("u", ("n",), kind="unnormalized")),
    dims=(("n", (1, 4)),),
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("regime", REGIMES)
def test_batches_keep_their_promises(regime, dtype):
    x, p, y, s, q, u = draw_batch(DOMAIN, BatchPlan(1, regime, seed=7), points=256, dtype=dtype)
    assert np.isin(x, [0.0, 1.0]).any(), "kink points must be among the inputs"
    tiny = np.finfo(dtype).tiny
    for a in (x, p, y, s, q, u):
        assert a.dtype == dtype and a.shape == (256, 4)
        assert not np.any((a != 0) & (np.abs(a) < tiny)), "no subnormals"
    assert np.all(p.sum(-1) == 1.0) and np.all(p >= 0)
    assert np.all(np.sort(y, -1)[:, -1] == 1) and np.all(y.sum(-1) == 1)
    assert np.all((s > 0) & (s < 1))
    assert np.all((q > 0) & (q <= 1))
    assert not np.any(np.isclose(u.sum(-1), 1.0))


def test_same_plan_and_seed_give_the_same_batch():
    plan = BatchPlan(1, "mixed", seed=3)
    a = draw_batch(DOMAIN, plan, points=8, dtype=np.float32, seed=5)
    b = draw_batch(DOMAIN, plan, points=8, dtype=np.float32, seed=5)
    c = draw_batch(DOMAIN, plan, points=8, dtype=np.float32, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("bucket", [0, 1])
@given(data=st.data())
def test_single_points_have_the_bucket_shapes(bucket, data):
    args = data.draw(point_strategy(DOMAIN, dtype=np.float32, bucket=bucket))
    n = DOMAIN.buckets[bucket]["n"]
    assert all(np.shape(a) == (n,) for a in args)
    assert np.sum(args[1]) == 1.0


def test_buckets_are_tried_smallest_first():
    domain = Domain((Arg("x", ("n",)),), dims=(("n", (5, 1, 3)),))
    assert buckets_by_size(domain) == [1, 2, 0]


BOUND = 5.0


def _rows_sum_to_one(x):
    return np.all(x.sum(-1) == 1.0)


#: What each kind promises of every array it draws, on either path (bound BOUND).
KIND_PROMISES = {
    "real": lambda x: np.all(np.abs(x) <= BOUND),
    "logits": lambda x: np.all(np.abs(x) <= BOUND),
    "negative": lambda x: np.all((x < 0) & (x >= -BOUND)),
    "positive": lambda x: np.all((x > 0) & (x <= BOUND)),
    "nonnegative": lambda x: np.all((x >= 0) & (x <= BOUND)),
    "direction": lambda x: np.all((np.abs(x) <= BOUND) & (x != 0)),
    "probability": lambda x: np.all((x > 0) & (x <= 1)),
    "one_hot": lambda x: np.all(np.isin(x, (0.0, 1.0))) and _rows_sum_to_one(x),
    "simplex": lambda x: np.all(x >= 0) and _rows_sum_to_one(x),
    "smoothed": lambda x: np.all((x > 0) & (x < 1)) and np.allclose(x.sum(-1), 1.0),
    "unnormalized": lambda x: np.all(x > 0) and not np.any(np.isclose(x.sum(-1), 1.0)),
}


def test_every_kind_states_its_promise():
    assert set(KIND_PROMISES) == set(KINDS)


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_keeps_its_promise_in_batches(kind, regime):
    domain = Domain((Arg("v", ("k", "n"), kind=kind, bound=BOUND),), dims=(("k", (2,)), ("n", (3,))))
    (batch,) = draw_batch(domain, BatchPlan(0, regime, seed=1), points=128, dtype=np.float64)
    assert batch.shape == (128, 2, 3) and np.all(np.isfinite(batch))
    assert KIND_PROMISES[kind](batch), (kind, regime)


@pytest.mark.parametrize("kind", sorted(KINDS))
@given(data=st.data())
def test_every_kind_keeps_its_promise_point_by_point(kind, data):
    domain = Domain((Arg("v", ("k", "n"), kind=kind, bound=BOUND),), dims=(("k", (2,)), ("n", (3,))))
    (point,) = data.draw(point_strategy(domain, dtype=np.float64, bucket=0))
    assert np.shape(point) == (2, 3) and np.all(np.isfinite(point))
    assert KIND_PROMISES[kind](point), kind



def _plans_drawn_by_verify(monkeypatch, claim, profile: str, seed: int) -> list[BatchPlan]:
    """The batch plans one real search asks for, in order (its draws recorded, not changed)."""
    plans: list[BatchPlan] = []

    def recording(domain, plan, **kwargs):
        plans.append(plan)
        return draw_batch(domain, plan, **kwargs)

    monkeypatch.setattr(verify_module, "draw_batch", recording)
    verify(claim, dtype="float64", profile=profile, seed=seed)
    return plans


def _plans_hypothesis_gives(domain: Domain, profile: str, seed: int, examples: int) -> list[BatchPlan]:
    """The plans Hypothesis draws from the seed alone, through a search function of other source."""
    seen: list[BatchPlan] = []

    def collect(plan):
        seen.append(plan)

    collect = settings(max_examples=examples, phases=[Phase.generate], database=None, deadline=None)(
        given(batch_plans(domain))(collect))
    hypothesis_seed(search_seed(profile_named(profile), seed))(collect)()
    return seen


@pytest.mark.parametrize("profile", ["ci", "dev"])
def test_what_a_search_draws_depends_on_its_profile_and_seed_not_on_its_source(monkeypatch, profile):
    claim = next(c for c in catalog() if c.id == "sharma2024/eq1-sigmoid-derivative")
    drawn = _plans_drawn_by_verify(monkeypatch, claim, profile, seed=0)
    fixed = max(len(claim.domain.buckets), len(REGIMES))  # the explicit batches that always run first
    generated = drawn[fixed:]
    assert len(generated) == profile_named(profile).examples
    assert generated == _plans_hypothesis_gives(claim.domain, profile, 0, len(generated))
    assert generated != _plans_drawn_by_verify(monkeypatch, claim, profile, seed=1)[fixed:]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("regime", ["small", "special"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_keeps_its_promise_once_rounded_to_a_narrow_dtype(kind, regime, dtype):
    # float16 flushes a drawn -1e-8 to 0, where softsign's x < 0 branch does not hold; a
    # never-zero kind keeps its sign there as the smallest normal instead.
    domain = Domain((Arg("v", ("k", "n"), kind=kind, bound=BOUND),), dims=(("k", (2,)), ("n", (3,))))
    (batch,) = draw_batch(domain, BatchPlan(0, regime, seed=1), points=128, dtype=jnp.dtype(dtype))
    values = np.asarray(batch, np.float64)
    tiny = float(jnp.finfo(dtype).tiny)
    assert KIND_PROMISES[kind](values), (kind, regime, dtype)
    assert not np.any((values != 0) & (np.abs(values) < tiny)), "no subnormals"


#: A value too small for float16, and what it becomes there: a never-zero kind keeps its
#: sign as the smallest normal (2**-14), the others are flushed to 0.
TOO_SMALL_FOR_FLOAT16 = {"negative": (-1e-8, -(2.0**-14)), "positive": (1e-8, 2.0**-14),
                         "direction": (-1e-8, -(2.0**-14)), "probability": (1e-8, 2.0**-14),
                         "real": (-1e-8, 0.0), "nonnegative": (1e-8, 0.0)}


@pytest.mark.parametrize("kind", sorted(TOO_SMALL_FOR_FLOAT16))
def test_a_value_too_small_for_float16_keeps_its_kind(kind):
    drawn, rounded = TOO_SMALL_FOR_FLOAT16[kind]
    assert float(in_dtype(Arg("v", kind=kind), np.asarray([drawn]), jnp.dtype("float16"))[0]) == rounded


@given(data=st.data())
def test_float16_draws_within_the_float16_bound_and_other_dtypes_within_the_bound(data):
    domain = Domain((Arg("s", ("n",), kind="logits", bound=20.0, float16_bound=0.4, float16_range="why"),),
                    dims=(("n", (3,)),))
    (half,) = draw_batch(domain, BatchPlan(0, "large", seed=2), points=256, dtype=jnp.dtype("float16"))
    (single,) = draw_batch(domain, BatchPlan(0, "large", seed=2), points=256, dtype=np.float32)
    assert np.abs(np.asarray(half, np.float64)).max() <= 0.4 < np.abs(single).max() <= 20.0
    # 0.4 is no float32: the single points stay below it all the same.
    (point,) = data.draw(point_strategy(domain, dtype=jnp.dtype("float16"), bucket=0))
    assert np.abs(point).max() <= 0.4
    assert domain.float16_ranges() == ("|s| <= 0.4: why",)


@pytest.mark.parametrize("bound", [0.4, 0.1, 1 / 3, 0.5, 20.0])
def test_a_point_bound_is_the_largest_float32_not_above_the_bound(bound):
    # Hypothesis draws its limits exactly, so the limit itself must lie within the bound.
    limit = _at_most(bound, 32)
    above = float(np.nextafter(np.float32(limit), np.float32(np.inf)))
    assert limit == float(np.float32(limit)) and limit <= bound < above


def test_a_float16_bound_needs_its_reason_and_must_narrow_the_bound():
    with pytest.raises(ValueError, match="needs float16_range"):
        Arg("s", bound=20.0, float16_bound=3.5)
    with pytest.raises(ValueError, match=r"must lie in \(0, bound\]"):
        Arg("s", bound=2.0, float16_bound=3.5, float16_range="why")


@given(data=st.data())
@pytest.mark.parametrize("column", [False, True])
@pytest.mark.parametrize("kind", ["simplex", "smoothed"])
def test_a_shrunk_target_sums_to_one_in_float16_too(kind, column, data):
    # Shrinking draws single points in float32 and rounds them as a batch is rounded.
    arg = Arg("y", ("n",), kind=kind, column=column)
    domain = Domain((arg,), dims=(("n", (5,)),))
    (point,) = data.draw(point_strategy(domain, dtype=jnp.dtype("float16"), bucket=0))
    rows = np.asarray(in_dtype(arg, np.asarray(point, np.float64), jnp.dtype("float16")), np.float64)
    rows = rows[..., 0] if column else rows
    assert rows.shape == (5,) and np.all(rows >= 0) and rows.sum() == 1.0
