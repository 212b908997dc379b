"""Sweeps: the cartesian product of scenario axes × seeds, on a process pool or a Dask cluster.

::

    from sim.sweep import load_sweep, run_sweep, read_summary
    plan = load_sweep("scenarios/sweeps/replicas.yaml")
    report = run_sweep(plan, "results/replicas-sweep")        # local pool, all cores
    read_summary("results/replicas-sweep")                     # one row per run

See ``docs/sweeps.md``.
"""

from sim.sweep.executors import DaskExecutor, LocalExecutor, SerialExecutor, make_executor
from sim.sweep.plan import RunSpec, SweepPlan, is_sweep_file, load_sweep, run_id
from sim.sweep.runner import SweepReport, run_sweep
from sim.sweep.store import read_manifest, read_summary, read_table
from sim.sweep.worker import RunOutcome, RunTask, execute

__all__ = [
    "DaskExecutor",
    "LocalExecutor",
    "RunOutcome",
    "RunSpec",
    "RunTask",
    "SerialExecutor",
    "SweepPlan",
    "SweepReport",
    "execute",
    "is_sweep_file",
    "load_sweep",
    "make_executor",
    "read_manifest",
    "read_summary",
    "read_table",
    "run_id",
    "run_sweep",
]
