"""The ranges every numeric scenario setting is checked against, in one place.

The bounds are generous — far beyond any deployment capsim is meant to
describe — and exist so that a typo (``1e-9s``, ``replicas: 100000``,
``duration: 1e308s``) is refused at once instead of running for hours or
exhausting memory.  The run's size is then checked as a whole by
:mod:`sim.estimate`.  The generated scenario reference shows each key's range.
"""

from __future__ import annotations

DAY_S = 86_400.0

MAX_HORIZON_S = 2 * 365 * DAY_S
"""Longest ``duration`` (and any time inside it): two years of simulated time."""

MAX_DELAY_S = DAY_S
"""Longest cold-start phase, retry delay, or latency objective: one day."""

MAX_WINDOW_S = 30 * DAY_S
"""Longest autoscaler window, delay or period: 30 days."""

MIN_PERIOD_S = 0.1
"""Shortest control loop period (an autoscaler's sync period or tick): 100 ms."""

MIN_TIMELINE_INTERVAL_S = 1.0
"""Shortest timeline row: one second."""

MIN_MTBF_S = 60.0
"""Shortest mean time between replica failures: one minute."""

MAX_REPLICAS = 10_000
"""Most replicas of one deployment (min, max, initial or scheduled)."""

MAX_GPUS = 1_000_000
"""Most GPUs of one type in one datacenter (inventory, background demand, reservations)."""

MAX_GPUS_PER_REPLICA = 64
"""Most GPUs in one replica (tensor × pipeline parallel across nodes)."""

MAX_CONCURRENCY = 100_000
"""Most concurrent requests on one replica."""

MAX_BATCHED_TOKENS = 10_000_000
"""Most tokens in one engine iteration (``max_num_batched_tokens``)."""

MAX_QUEUE = 100_000_000
"""Longest router queue."""

MAX_RETRIES = 100
"""Most retries of one request."""

MAX_RPS = 1_000_000.0
"""Highest arrival rate of one deployment's traffic, requests per second."""

MAX_DEPLOYMENTS = 100
MAX_LIST = 10_000
"""Most items in a list of spikes, outages, background steps or schedules."""

MAX_NAME = 200
"""Longest scenario or deployment name (names become folder names)."""

MAX_USD = 10_000.0
"""Highest price: USD per GPU-hour or per million tokens."""

MIN_DOWNLOAD_RATE = 1e6
MAX_DOWNLOAD_RATE = 1e30
"""Weight download rate, bytes per second: from 1 MB/s; a huge rate means no download."""

MAX_SCALE = 1_000.0
MIN_TIME_SCALE = 1e-3
"""A trace's ``time_scale`` lies in [1e-3, 1e3]; ``rate_scale`` in (0, 1e3]."""
