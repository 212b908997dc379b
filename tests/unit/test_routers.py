"""Routers, case by case."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import routers as R

REPS = np.array([5, 2, 7, 0], np.int64)  # routing list: replica ids, oldest first


def loads(**by_replica: int) -> np.ndarray:
    load = np.zeros(8, np.int64)
    for name, n in by_replica.items():
        load[int(name[1:])] = n
    return load


def admit(*flags: int) -> np.ndarray:
    return np.array(flags, np.int64)


def test_least_loaded_takes_the_first_of_the_least_loaded():
    load = loads(r5=3, r2=1, r7=1, r0=4)
    assert R.least_loaded(REPS, 4, load, admit(1, 1, 1, 1)) == 1  # replica 2, older than 7
    assert R.least_loaded(REPS, 4, load, admit(1, 0, 1, 1)) == 2
    assert R.least_loaded(REPS, 4, load, admit(0, 0, 0, 0)) == -1


def test_prefix_aware_follows_the_longest_hit_unless_overloaded():
    load = loads(r5=10, r2=2, r7=70, r0=30)
    everyone = admit(1, 1, 1, 1)
    # longest hit on replica 0 (index 3): 30 requests vs 2, not 64 more: replica 0
    assert R.prefix_aware(REPS, 4, load, everyone, np.array([1, 0, 2, 5]), 64, 1.5) == 3
    # longest hit on replica 7: 68 more than the least loaded and 35 x as many: least loaded
    assert R.prefix_aware(REPS, 4, load, everyone, np.array([1, 0, 9, 5]), 64, 1.5) == 1
    # both thresholds must be crossed: 68 more but a ratio of 70/2 with rel 40 is not
    assert R.prefix_aware(REPS, 4, load, everyone, np.array([1, 0, 9, 5]), 64, 40.0) == 2
    # equal hits: the less loaded of them
    assert R.prefix_aware(REPS, 4, load, everyone, np.array([4, 0, 4, 4]), 64, 1.5) == 0
    # no hit anywhere: least loaded
    assert R.prefix_aware(REPS, 4, load, everyone, np.zeros(4, np.int64), 64, 1.5) == 1
    # a replica that cannot admit is never chosen, however long its hit: replica 0 is
    # full, so replica 7 (hit 2) is the candidate — overloaded, so the least loaded
    assert R.prefix_aware(REPS, 4, load, admit(1, 1, 1, 0), np.array([1, 0, 2, 9]), 64,
                          1.5) == 1
    assert R.prefix_aware(REPS, 4, load, admit(1, 1, 0, 0), np.array([1, 0, 2, 9]), 64,
                          1.5) == 0


def test_session_sticks_to_its_replica_while_it_may():
    load = loads(r5=10, r2=2, r7=70, r0=30)
    everyone = admit(1, 1, 1, 1)
    assert R.sticky(REPS, 4, load, everyone, 0, 64, 1.5) == 3  # home: replica 0
    assert R.sticky(REPS, 4, load, everyone, 7, 64, 1.5) == 1  # home overloaded
    assert R.sticky(REPS, 4, load, admit(1, 1, 1, 0), 0, 64, 1.5) == 1  # home full
    assert R.sticky(REPS, 4, load, everyone, 6, 64, 1.5) == 1  # home no longer routed
    assert R.sticky(REPS, 4, load, everyone, -1, 64, 1.5) == 1  # no session


def test_round_robin_and_uniform_pick_skip_full_replicas():
    assert R.round_robin(4, admit(1, 1, 1, 1), 2) == 2
    assert R.round_robin(4, admit(1, 0, 0, 1), 1) == 3
    assert R.round_robin(4, admit(1, 0, 0, 0), 1) == 0
    assert R.round_robin(4, admit(0, 0, 0, 0), 1) == -1
    ok = admit(0, 1, 0, 1)
    assert [R.uniform_pick(4, ok, u) for u in (0.0, 0.49, 0.5, 0.999)] == [1, 1, 3, 3]
    assert R.uniform_pick(4, admit(0, 0, 0, 0), 0.3) == -1


@pytest.mark.parametrize("ids", [[5, -1, 9, 5, 12, 9], [-1, -1]])
def test_session_index_numbers_sessions_in_order_of_appearance(ids):
    index = R.SessionIndex()
    first = index.dense(np.array(ids, np.int64))
    expected, seen = [], {}
    for s in ids:
        expected.append(-1 if s < 0 else seen.setdefault(s, len(seen)))
    assert first.tolist() == expected
    # later windows keep the numbers of sessions already seen
    later = index.dense(np.array([12, 40], np.int64)).tolist()
    assert later[0] == seen.get(12, len(seen))
    assert later[1] == len(seen) + (12 not in seen)
