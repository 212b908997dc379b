"""Random streams: one ``numpy.random.Generator`` per component, from the run seed.

A stream is named (``stream(seed, "deployment", "chat", "arrivals")``), so
adding a component or a deployment never shifts the draws of another one.
"""

from __future__ import annotations

import zlib

import numpy as np


def seed_sequence(seed: int, *names: str) -> np.random.SeedSequence:
    """The seed sequence of the component called ``names`` in a run seeded ``seed``."""
    key = tuple(zlib.crc32(name.encode()) for name in names)
    return np.random.SeedSequence(entropy=seed, spawn_key=key)


def stream(seed: int, *names: str) -> np.random.Generator:
    """A generator for the component called ``names``."""
    return np.random.default_rng(seed_sequence(seed, *names))
