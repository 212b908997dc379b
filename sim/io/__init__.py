"""Writing results: one atomic writer and one encoder of a run's files.

* :func:`output_dir` — a folder that appears complete or not at all, and never
  replaces what capsim did not write (``sim.io.atomic``);
* :func:`write_run` / :func:`encode_run` — the files of one run (``sim.io.run``);
* :class:`RequestsFile` — the request table streamed to Parquet during a run.
"""

from sim.io.atomic import (
    MANIFEST,
    atomic_file,
    check_target,
    clean_stale,
    ensure_dir,
    output_dir,
    read_manifest,
    write_files,
)
from sim.io.requests import RequestsFile
from sim.io.run import SUMMARY, TABLE_FILES, encode_run, json_safe, summary_bytes, write_run

__all__ = [
    "MANIFEST",
    "SUMMARY",
    "TABLE_FILES",
    "RequestsFile",
    "atomic_file",
    "check_target",
    "clean_stale",
    "encode_run",
    "ensure_dir",
    "json_safe",
    "output_dir",
    "read_manifest",
    "summary_bytes",
    "write_files",
    "write_run",
]
