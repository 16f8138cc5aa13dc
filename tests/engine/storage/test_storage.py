"""The SQLite store: commits, monotonic registers, and bad files that are left untouched."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from s8000_engine.exceptions import StorageError
from s8000_engine.storage.store import (
    APPLICATION_ID,
    Checkpoint,
    Flag,
    IntervalRecord,
    PointRecord,
    Store,
)

NO_FLAGS = Flag(0)


def _interval(start: int, registers: int, delta: int, flags: Flag = NO_FLAGS) -> IntervalRecord:
    return IntervalRecord(
        start=start,
        length=60,
        flags=flags,
        covered=60.0,
        voltage=[120.0, None, None],
        frequency=60.0,
        pulses=[3, 0],
        pulse_deltas=[1, 0],
        points=[
            PointRecord(point=p, registers=[registers, 0, 0, 0], deltas=[delta, 0, 0, 0])
            for p in range(2)
        ],
    )


def _checkpoint(value: int, time: float = 0.0) -> Checkpoint:
    return Checkpoint(time=time, registers=[[value] * 8, [value] * 8], state={"x": value})


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_commit_and_reload(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.path == tmp_path / "meter.db"
        assert store.load_checkpoint() is None
        store.commit(_checkpoint(1000, 60.0), [_interval(0, 1000, 1000)])
        store.set_meta("serial", "0212060212")
    with Store.open(tmp_path) as store:
        checkpoint = store.load_checkpoint()
        assert checkpoint is not None
        assert checkpoint.registers[1] == [1000] * 8
        assert checkpoint.state == {"x": 1000}
        assert store.get_meta("serial") == "0212060212"
        (record,) = store.intervals()
        assert record.points[1].registers == [1000, 0, 0, 0]
        assert record.voltage == [120.0, None, None]
    with contextlib.closing(sqlite3.connect(tmp_path / "meter.db")) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_registers_can_never_move_backwards(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.commit(_checkpoint(5000, 1.0), [_interval(0, 5000, 5000)])
        with pytest.raises(StorageError, match="may not move backwards"):
            store.commit(_checkpoint(4999, 2.0), [_interval(60, 4999, 0)])
        # The refused transaction left nothing behind.
        checkpoint = store.load_checkpoint()
        assert checkpoint is not None
        assert checkpoint.time == 1.0
        assert store.count_intervals() == 1


def test_query_by_range_and_points_and_prune(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.commit(_checkpoint(10, 600.0), [_interval(60 * k, 10 * k, 10) for k in range(10)])
        assert [r.start for r in store.intervals(120, 300)] == [120, 180, 240]
        (one,) = store.intervals(60, 61, points=[1])
        assert [p.point for p in one.points] == [1]
        assert [r.start for r in store.intervals(unreported=True, limit=2)] == [0, 60]
        store.mark_reported([0, 60], "ftp://127.0.0.1/x.csv", 999.0)
        assert [r.start for r in store.intervals(unreported=True, limit=2)] == [120, 180]
        assert store.prune(300) == 5
        assert store.count_intervals() == 5


@pytest.mark.parametrize(
    ("points", "step", "start"), [(None, 300, 0), ([1], 300, 0), (None, 600, 130)]
)
def test_energy_by_bucket_is_the_sum_of_the_records(
    tmp_path: Path, points: list[int] | None, step: int, start: int
) -> None:
    """The chart's SQL sums equal the records' deltas summed in Python."""
    records = []
    for k in range(30):
        record = _interval(60 * k, 0, 0, Flag.POWER_OFF if k == 7 else NO_FLAGS)
        for p in record.points:
            p.deltas = [k * 10 + p.point, k + 3 * p.point, 0, 0]
            p.registers = [sum(j * 10 + p.point for j in range(k + 1)), 0, 0, 0]
        records.append(record)
    with Store.open(tmp_path) as store:
        store.commit(_checkpoint(10**6, 1800.0), records)
        sums = store.energy_by_bucket(start, 1800, step, points)
        expected: dict[int, list[int]] = {}
        for record in store.intervals(start, 1800, points):
            bucket = start + (record.start - start) // step * step
            row = expected.setdefault(bucket, [0, 0, 0, 0])
            for p in record.points:
                row[0] += p.deltas[0]
                row[1] += p.deltas[1]
            row[2] += 1
            row[3] |= int(record.flags)
    assert sums == [(b, *row) for b, row in sorted(expected.items())]
    assert any(flags == Flag.POWER_OFF for *_, flags in sums)


def test_a_re_entered_interval_is_merged_not_duplicated(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.commit(_checkpoint(100), [_interval(0, 100, 100)])
        store.commit(_checkpoint(130), [_interval(0, 130, 30, Flag.CLOCK_SET)])
        (record,) = store.intervals()
        assert record.points[0].deltas[0] == 130
        assert record.points[0].registers[0] == 130
        assert record.flags == Flag.CLOCK_SET
        assert record.covered == 60.0  # capped at the length
        assert record.pulse_deltas == [2, 0]


def test_foreign_file_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "meter.db"
    path.write_text("id,kwh\n1,2\n")
    before = _digest(path)
    with pytest.raises(StorageError, match=r"meter\.db: not an SQLite database"):
        Store.open(path)
    assert _digest(path) == before


def test_another_applications_database_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "meter.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE invoices (id INTEGER, amount REAL)")
    other.execute("INSERT INTO invoices VALUES (1, 9.5)")
    other.commit()
    other.close()
    before = _digest(path)
    with pytest.raises(StorageError, match=r"meter\.db: another application's SQLite database"):
        Store.open(path)
    assert _digest(path) == before


def test_corrupt_database_is_refused_and_untouched(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.commit(_checkpoint(1, 60.0), [_interval(60 * k, k, 1) for k in range(200)])
        store.vacuum()
    path = tmp_path / "meter.db"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8192] = os.urandom(8192)  # scribble over b-tree pages
    path.write_bytes(bytes(data))
    before = _digest(path)
    with pytest.raises(StorageError, match=r"meter\.db: .*(corrupt|malformed)"):
        Store.open(path)
    assert _digest(path) == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / "meter.db")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="written by a newer s8000-engine"):
        Store.open(tmp_path)


def test_full_database_keeps_what_was_stored(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.commit(_checkpoint(1, 60.0), [_interval(0, 1, 1)])
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    with Store.open(tmp_path, max_pages=pages + 2) as store:
        pending = [_interval(60 * k, k, 1) for k in range(1, 2000)]
        with pytest.raises(StorageError, match=r"meter\.db: write failed: the disk is full"):
            store.commit(_checkpoint(5, 120.0), pending)
        assert store.count_intervals() == 1
        checkpoint = store.load_checkpoint()
        assert checkpoint is not None
        assert checkpoint.registers[0][0] == 1
    # With room again the caller's pending intervals go in.
    with Store.open(tmp_path) as store:
        store.commit(_checkpoint(5, 120.0), pending)
        assert store.count_intervals() == 2000


def _root() -> bool:
    return os.geteuid() == 0


#: Set (by scripts/test) where the real full-disk test must run: without root
#: it mounts its tmpfs through ``sudo -n`` (GitHub's runners allow that), and
#: it fails, not skips, where it cannot.
REQUIRE_FULL_DISK = "S8000_REQUIRE_FULL_DISK"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs, the only full disk SQLite meets as it would in the
    field (ENOSPC from the write of a WAL frame).  Without root nothing can
    make one (no loop device, no tmpfs; GitHub's Ubuntu refuses unprivileged
    user namespaces); PRAGMA max_page_count (above) makes SQLite report the
    same SQLITE_FULL without root, from its pager rather than the disk."""
    required = os.environ.get(REQUIRE_FULL_DISK) == "1"
    if _root():
        sudo: list[str] = []
    elif required:
        sudo = ["sudo", "-n"]  # never prompts: fails at once without a sudo rule
    else:
        pytest.skip(f"mounting a tmpfs needs root (or {REQUIRE_FULL_DISK}=1 and sudo)")
    mount = tmp_path / "tiny"
    mount.mkdir()
    owner = f"uid={os.getuid()},gid={os.getgid()},mode=0700"
    try:
        done = subprocess.run(
            [*sudo, "mount", "-t", "tmpfs", "-o", f"size=1m,{owner}", "tmpfs", str(mount)],
            capture_output=True,
            check=False,
        )
        error = (
            (done.stderr.decode().strip() or f"exit {done.returncode}") if done.returncode else ""
        )
    except OSError as failed:  # no sudo (or no mount) installed
        error = str(failed)
    if error:
        message = f"cannot mount a tmpfs here: {error}"
        if required:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run([*sudo, "umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_is_a_clear_error_and_loses_nothing(tiny_disk: Path) -> None:
    with Store.open(tiny_disk) as store:
        store.commit(_checkpoint(1, 60.0), [_interval(0, 1, 1)])
        filler = tiny_disk / "filler"
        try:
            with filler.open("wb") as file:
                while True:
                    file.write(b"\0" * 65536)
                    file.flush()
        except OSError:
            pass  # the disk is full now
        with pytest.raises(StorageError, match=r"meter\.db: write failed: the disk is full"):
            store.commit(_checkpoint(9, 120.0), [_interval(60 * k, k, 1) for k in range(1, 3000)])
        filler.unlink()
        checkpoint = store.load_checkpoint()
        assert checkpoint is not None
        assert checkpoint.registers[0][0] == 1
        assert store.count_intervals() == 1


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory that cannot be written, for root too (a read-only bind mount)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    with Store.open(directory) as store:
        store.commit(_checkpoint(7, 60.0), [_interval(0, 7, 7)])
    if _root():
        done = subprocess.run(
            ["mount", "--bind", "-o", "ro", str(directory), str(directory)],
            capture_output=True,
            check=False,
        )
        if done.returncode:
            pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
        try:
            yield directory
        finally:
            subprocess.run(["umount", "-l", str(directory)], check=False)
    else:
        directory.chmod(0o555)
        try:
            yield directory
        finally:
            directory.chmod(0o755)


def test_read_only_data_directory(read_only_dir: Path, tmp_path: Path) -> None:
    before = _digest(read_only_dir / "meter.db")

    def write() -> None:
        with Store.open(read_only_dir) as store:
            store.commit(_checkpoint(8, 120.0), [_interval(60, 8, 1)])

    with pytest.raises(StorageError, match=r"ro/meter\.db: .*read-only"):
        write()
    assert _digest(read_only_dir / "meter.db") == before
    with pytest.raises(StorageError, match=r"new\.db: cannot create the database: .*read-only"):
        Store.open(read_only_dir / "new.db")
    assert not (read_only_dir / "new.db").exists()
