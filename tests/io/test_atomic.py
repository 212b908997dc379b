"""The one atomic writer: never destroys what capsim did not write; all or nothing."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.errors import InputError, OutputError, OutputRefused
from sim.io import MANIFEST, clean_stale, output_dir, read_manifest, write_files


def _fill(tmp: Path, **files: str) -> None:
    for name, text in files.items():
        (tmp / name).write_text(text)


def test_new_folder_gets_the_files_and_a_manifest_listing_them(tmp_path):
    out = tmp_path / "a" / "b"
    with output_dir(out, kind="run") as tmp:
        _fill(tmp, **{"summary.json": "{}"})
        (tmp / "plots").mkdir()
        (tmp / "plots" / "x.png").write_bytes(b"png")
    manifest = read_manifest(out)
    assert manifest is not None and manifest["kind"] == "run"
    assert manifest["files"] == ["plots/x.png", "summary.json"]
    assert sorted(p.name for p in tmp_path.joinpath("a").iterdir()) == ["b"]  # no leftovers


def test_a_folder_capsim_wrote_is_replaced_whole(tmp_path):
    out = tmp_path / "r"
    write_files(out, {"summary.json": b"1", "old.csv": b"x"})
    write_files(out, {"summary.json": b"2"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "summary.json"]
    assert (out / "summary.json").read_bytes() == b"2"


@pytest.mark.parametrize("setup", ["user-folder", "user-file-in-capsim-folder", "file"])
def test_what_capsim_did_not_write_is_refused_and_kept(tmp_path, setup):
    out = tmp_path / "mydocs"
    if setup == "user-folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif setup == "user-file-in-capsim-folder":
        write_files(out, {"summary.json": b"{}"})
        (out / "notes.txt").write_text("mine")
    else:
        out.write_text("mine")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(OutputRefused) as err, output_dir(out):
        pytest.fail("must refuse before handing out a folder")
    assert isinstance(err.value, InputError)  # the CLI prints it as one line, exit 2
    assert "--force" in str(err.value) and str(out) in str(err.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    if setup == "file":
        assert out.read_text() == "mine"
    else:
        assert (out / "notes.txt").read_text() == "mine"


def test_force_replaces_a_user_folder_or_file(tmp_path):
    for out in (tmp_path / "d", tmp_path / "f"):
        if out.name == "d":
            out.mkdir()
            (out / "notes.txt").write_text("mine")
        else:
            out.write_text("mine")
        write_files(out, {"summary.json": b"{}"}, force=True)
        assert (out / "summary.json").is_file() and not (out / "notes.txt").exists()


def test_an_empty_folder_and_an_older_capsim_folder_are_accepted(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    write_files(empty, {"summary.json": b"{}"})
    legacy = tmp_path / "legacy"
    (legacy / "base" / "seed=1").mkdir(parents=True)
    (legacy / "sweep.json").write_text("{}")
    (legacy / "base" / "seed=1" / "summary.json").write_text("{}")
    write_files(legacy, {"summary.json": b"{}"})
    assert not (legacy / "sweep.json").exists()


def test_the_current_folder_and_its_parents_are_never_replaced(tmp_path, monkeypatch):
    work = tmp_path / "w" / "x"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for target in (".", "..", str(tmp_path / "w")):
        with pytest.raises(OutputRefused, match="current folder"), \
                output_dir(Path(target), force=True):
            pass
    assert work.is_dir()


def test_an_error_or_ctrl_c_while_writing_leaves_the_old_folder_and_no_temp(tmp_path):
    out = tmp_path / "r"
    write_files(out, {"summary.json": b"old"})
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), output_dir(out) as tmp:
            (tmp / "summary.json").write_bytes(b"partial")
            raise exc
        assert (out / "summary.json").read_bytes() == b"old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_full_disk_is_one_output_error(tmp_path, monkeypatch):
    out = tmp_path / "r"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="no space left") as err, output_dir(out) as tmp:
        monkeypatch.setattr(os, "replace", full)
        (tmp / "summary.json").write_bytes(b"x")
    monkeypatch.undo()
    assert isinstance(err.value, InputError)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_one_output_error(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"), output_dir(parent / "r"):
            pass
    finally:
        parent.chmod(0o755)


def test_files_and_folders_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_files(tmp_path / "r", {"summary.json": b"{}"})
    finally:
        os.umask(old)
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "r" / "summary.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "r" / MANIFEST).stat().st_mode & 0o777 == 0o644


def test_a_killed_writers_temp_folder_is_removed_by_the_next_write(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt), output_dir(out) as tmp:
        name = tmp.name  # the writer's own temporary folder, named after its process
        raise KeyboardInterrupt
    assert name.startswith(f".r.capsim-{os.getpid()}-")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that no longer exists, as after `kill -9`
    dead = tmp_path / f".r.capsim-{gone.pid}-0123abcd"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "requests.parquet").write_bytes(b"partial")
    live = tmp_path / f".r.capsim-{os.getpid()}-4567abcd"  # a live writer's: kept
    live.mkdir()
    other = tmp_path / ".r.notes"  # not capsim's name pattern: kept
    other.mkdir()
    write_files(out, {"summary.json": b"{}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, other.name, "r"]
    assert clean_stale(tmp_path, "r") == []


def test_manifest_is_json_with_what_wrote_it(tmp_path):
    write_files(tmp_path / "r", {"a.csv": b"1"}, kind="breakeven")
    data = json.loads((tmp_path / "r" / MANIFEST).read_text())
    assert data["written_by"].startswith("capsim ") and data["kind"] == "breakeven"
