"""Imported once by the local pool's forkserver (``set_forkserver_preload``).

It imports capsim and loads the engine's compiled kernel, so that every worker
forked from the server starts warm instead of paying both per process.  A
failure here is ignored: workers then warm up on their first run.
"""

try:
    from sim.memory import steady_heap
    from sim.sweep.worker import warm_up

    steady_heap()
    warm_up()
except Exception:  # pragma: no cover - a cold start is slower, not wrong
    pass
