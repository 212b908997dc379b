"""capsim: simulate dedicated LLM deployments — GPUs, autoscaling, cold starts, cost.

Public API::

    import sim
    sc = sim.load_scenario("scenarios/quickstart.yaml", overrides={"seed": 3})
    res = sim.run(sc)
    res.summary["total"]["ttft_p99_s"]; res.requests; res.timeline; res.billing
    shape = sim.Shape(model="llama-v3p1-70b-instruct", accelerator="H100_80GB", count=4,
                      precision="FP8")

Reading guide (where to start, the extension points, the invariants by name):
docs/architecture.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("capsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from sim import perf, plot
from sim.errors import InputError
from sim.perf import Shape
from sim.results import Result
from sim.run import run
from sim.scenario import load_scenario

__all__ = ["InputError", "Result", "Shape", "load_scenario", "perf", "plot", "run"]
