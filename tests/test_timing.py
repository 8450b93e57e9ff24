"""The cold-run breakdown: each instant of a run goes to the innermost phase covering it."""

import pytest

from derivcheck._timing import CATEGORIES, OTHER, _exclusive


def test_nested_phases_are_counted_once_innermost_first():
    intervals = {
        "execute": [(1.0, 5.0)],
        "trace": [(1.0, 3.0), (1.5, 2.5)],  # a jitted helper traced inside the stage's trace
        "bound interpreter": [(2.0, 2.5)],  # runs while the stage is traced
        "compile": [(3.0, 4.0)],
        "load stored stage": [(4.5, 4.75)],  # a stored stage loaded at a batch's first run
        "shrink": [(6.0, 8.0)],
        "draw inputs": [(0.5, 1.0)],
    }
    seconds = _exclusive(intervals, 0.0, 10.0)
    assert seconds == pytest.approx({
        "bound interpreter": 0.5, "trace": 1.5, "lower": 0.0, "compile": 1.0, "load stored stage": 0.25,
        "draw inputs": 0.5, "execute": 0.75, "shrink": 2.0, OTHER: 3.5})
    assert set(seconds) == {*CATEGORIES, OTHER}


def test_a_phase_outside_the_block_is_clipped_to_it():
    seconds = _exclusive({"execute": [(-1.0, 1.0)]}, 0.0, 2.0)
    assert seconds["execute"] == pytest.approx(1.0) and seconds[OTHER] == pytest.approx(1.0)
