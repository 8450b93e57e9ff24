"""Input kinds: what the batches and the shrinking strategies promise."""

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

import derivcheck._verify as verify_module
from derivcheck import verify
from derivcheck.catalog import catalog
from derivcheck.claims import Arg, Domain
from derivcheck.inputs import KINDS, REGIMES, BatchPlan, batch_plans, buckets_by_size, draw_batch, point_strategy
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


def test_every_kind_has_both_paths():
    for kind in KINDS.values():
        assert callable(kind.batch) and callable(kind.point)



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
