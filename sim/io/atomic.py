"""The one atomic writer: a folder appears complete, or the old one stays.

:func:`output_dir` hands out a hidden temporary sibling of the target to fill;
when the block ends without error the temporary folder gets a manifest
(``.capsim-manifest.json``: what wrote it and every file in it) and replaces
the target in one rename.  On any error — a full disk, Ctrl-C — the temporary
folder is removed and the target is left as it was.

Capsim never destroys what it did not write.  A target may be replaced when it
does not exist, is an empty folder, or is a folder whose manifest lists every
file in it (so a file a user added to a results folder blocks the replacement
too).  Anything else — an existing file, a folder of the user's, the current
folder or one of its parents — is refused with :class:`~sim.errors.OutputRefused`,
unless ``force`` is given (never for the current folder, its parents or ``/``).
Folders written by capsim before it left manifests are recognised by their file
names.

Temporary folders are named ``.NAME.capsim-PID-RANDOM``; a later write next to
the same target removes those whose process is gone (a killed run's leftovers).
Folders and files are created with the user's umask.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sim.errors import OutputError, OutputRefused

MANIFEST = ".capsim-manifest.json"

# What capsim wrote before it left manifests, so older results can be replaced.
LEGACY_FILES = frozenset({
    "summary.json", "requests.parquet", "timeline.parquet", "billing.csv",
    "allocation.parquet", "report.html", "timeline.png", "gpu_allocation.png",
    "ttft_cdf.png", "tpot_cdf.png", "e2e_cdf.png", "cost_breakdown.png",
    "breakeven.csv", "breakeven.png", "sweep.json", "summary.parquet", "summary.csv",
    "failures.json", "cost_vs_ttft.png", "breakeven.json", "plan.json", "best.yaml",
    "pareto.png",
})


def _temp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(f".{name}.capsim-") + r"(\d+)-[0-9a-f]{8}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def clean_stale(parent: Path, name: str) -> list[Path]:
    """Remove the temporary folders of dead capsim processes next to ``parent/name``."""
    pattern = _temp_pattern(name)
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and not _alive(int(m.group(1))) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _files_under(folder: Path) -> list[str]:
    """Every file under ``folder``, as sorted POSIX paths relative to it (no manifest)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        rel = Path(root).relative_to(folder)
        for f in files:
            path = (rel / f).as_posix()
            if path != MANIFEST:
                out.append(path)
    return sorted(out)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest capsim left in ``folder``, or None."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    return data


def _legacy(folder: Path) -> bool:
    """A folder an older capsim wrote: every file under it has one of capsim's names."""
    names = [Path(f).name for f in _files_under(folder)]
    return bool(names) and all(n in LEGACY_FILES for n in names)


def foreign_files(folder: Path) -> list[str] | None:
    """Files in ``folder`` that capsim did not write ([] = all its own); None = not capsim's."""
    manifest = read_manifest(folder)
    if manifest is None:
        if not any(folder.iterdir()):
            return []
        return [] if _legacy(folder) else None
    listed = {str(f) for f in manifest["files"]}
    return [f for f in _files_under(folder) if f not in listed]


def _protected(out: Path) -> str | None:
    """Why ``out`` may never be replaced, even with ``force``."""
    target = out.resolve()
    if target == Path(target.anchor):
        return "the root folder"
    cwd = Path.cwd().resolve()
    if target == cwd:
        return "the current folder"
    if target in cwd.parents:
        return "a folder that contains the current folder"
    home = Path.home().resolve()
    if target == home:
        return "your home folder"
    return None


def check_target(out: Path, *, force: bool = False, option: str = "--out") -> None:
    """Raise :class:`OutputRefused` unless capsim may replace ``out``."""
    why = _protected(out)
    if why is not None:
        raise OutputRefused(f"refusing to replace {why}; choose a new folder with {option}",
                            file=str(out))
    if not (out.exists() or out.is_symlink()) or force:
        return
    if out.is_symlink() or not out.is_dir():
        raise OutputRefused(f"is a file, not a folder capsim wrote; choose another {option} "
                            "or add --force to replace it", file=str(out))
    try:
        foreign = foreign_files(out)
    except OSError as exc:
        raise OutputError(f"cannot read: {exc.strerror or exc}", file=str(out)) from None
    if foreign is None:
        raise OutputRefused(f"is a folder capsim did not write; choose another {option} "
                            "or add --force to replace it", file=str(out))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                         else "")
        raise OutputRefused(f"holds files capsim did not write ({shown}); choose another "
                            f"{option} or add --force to replace it", file=str(out))


def write_manifest(folder: Path, kind: str, **extra: Any) -> None:
    """List every file of ``folder`` in its manifest (``kind``: run, sweep, baseline...)."""
    from sim import __version__

    data = {"written_by": f"capsim {__version__}", "kind": kind, **extra,
            "files": _files_under(folder)}
    (folder / MANIFEST).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def make_temp(parent: Path, name: str) -> Path:
    """A new hidden folder ``parent/.NAME.capsim-PID-RANDOM`` (mode from the umask)."""
    while True:
        tmp = parent / f".{name}.capsim-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _os_error(exc: OSError, out: Path) -> OutputError:
    reason = {errno.ENOSPC: "no space left on the device",
              errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "the file system is read-only",
              errno.EACCES: "permission denied",
              errno.EPERM: "permission denied"}.get(exc.errno or 0, exc.strerror or str(exc))
    return OutputError(f"cannot write: {reason}", file=str(out))


@contextmanager
def output_dir(out: str | Path, *, kind: str = "run", force: bool = False,
               option: str = "--out", **manifest: Any) -> Iterator[Path]:
    """A temporary folder to fill; it replaces ``out`` when the block ends without error.

    ``kind`` and ``manifest`` go into the manifest.  Refusals raise
    :class:`~sim.errors.OutputRefused`; file-system errors (read-only, full,
    no permission) raise :class:`~sim.errors.OutputError`, with the temporary
    folder removed and ``out`` untouched.
    """
    out = Path(out)
    check_target(out, force=force, option=option)
    parent = out.absolute().parent
    name = out.absolute().name
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(parent, name)
        tmp = make_temp(parent, name)
    except OSError as exc:
        raise _os_error(exc, out) from None
    try:
        yield tmp
        write_manifest(tmp, kind, **manifest)
        if out.exists() or out.is_symlink():
            old = make_temp(parent, name)
            os.replace(out, old / "old")
            os.replace(tmp, out)
            _remove(old)
        else:
            os.replace(tmp, out)
    except OSError as exc:
        _remove(tmp)
        raise _os_error(exc, out) from None
    except BaseException:
        _remove(tmp)
        raise


def write_files(out: str | Path, files: dict[str, bytes], *, kind: str = "files",
                force: bool = False) -> None:
    """Write ``files`` (name → bytes) as the whole content of ``out``, atomically."""
    with output_dir(out, kind=kind, force=force) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)


def ensure_dir(out: str | Path, *, kind: str, force: bool = False,
               option: str = "--out") -> Path:
    """Create (or accept) ``out`` as a folder capsim adds to over time (a sweep's).

    Accepted: a new folder, an empty one, one whose manifest says ``kind``, one
    an older capsim wrote, or any folder with ``force`` (nothing in it is
    deleted).  The manifest marks the folder as capsim's.
    """
    out = Path(out)
    why = _protected(out)
    if why is not None:
        raise OutputRefused(f"refusing to write into {why}; choose a new folder with {option}",
                            file=str(out))
    if out.exists() and not out.is_dir():
        raise OutputRefused(f"is a file, not a folder; choose another {option}", file=str(out))
    if out.is_dir() and not force:
        manifest = read_manifest(out)
        if manifest is not None and manifest.get("kind") != kind:
            raise OutputRefused(f"is a capsim {manifest.get('kind')} folder, not a {kind} "
                                f"folder; choose another {option}", file=str(out))
        if manifest is None and any(out.iterdir()) and not _legacy(out):
            raise OutputRefused(f"is a folder capsim did not write; choose another {option} "
                                "or add --force to write into it", file=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
        if read_manifest(out) is None:
            write_manifest(out, kind)
    except OSError as exc:
        raise _os_error(exc, out) from None
    return out


def atomic_file(path: Path, data: bytes) -> None:
    """Replace one file in one rename (its temporary sibling removed on error)."""
    tmp = path.with_name(f".{path.name}.capsim-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
