"""Non-volatile storage: energy registers and interval memory in one SQLite file.

The S8000 keeps 120 days of 15-minute interval data and never loses its
energy registers.  The engine does the same with one SQLite file
(``meter.db`` in the meter's data directory):

* WAL journal, ``synchronous=FULL``: a commit is on disk when it returns,
  and a power cut or ``kill -9`` at any instant leaves the file at the last
  commit — never half a write.
* The registers and the interval records are committed in one transaction
  (:meth:`Store.commit`), so they always agree: nothing is counted twice and
  nothing that was committed goes missing.
* A trigger refuses any update that would move a register backwards.
* The file carries the application id ``S800`` and a schema version; a file
  that is not ours (not SQLite, another application's database, a newer
  schema, or corrupt) is refused with an error that names it, and is never
  written to.

Registers and interval energies are integers in mWh (mvarh).  Interval keys
are the UTC epoch second of the interval's start, a multiple of its length.
The configuration lives in the meta table (``config``: the raw configuration,
``recording_minutes``); :meth:`Store.save_config` writes both together with an
entry of the change log (table ``config_change``: UTC time, user, origin and
the list of changes as JSON) in one transaction.  The change-log table, and
its origin column, are created when missing, so stores made before them open
and work unchanged.

The layout of the tables is documented in ``docs/storage.md``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self

from s8000_engine.exceptions import StorageError
from s8000_engine.protocol.intervals import RowFlag

#: ``PRAGMA application_id`` of our databases: "S800".
APPLICATION_ID: Final = 0x53383030
SCHEMA_VERSION: Final = 1
DATABASE_NAME: Final = "meter.db"
#: The interval registers: kWh delivered, received, kvarh delivered, received.
INTERVAL_REGISTERS: Final = ("kwh_d", "kwh_r", "kvarh_d", "kvarh_r")
#: The checkpointed registers (the four above, then kvarh per quadrant).
REGISTERS: Final = (*INTERVAL_REGISTERS, "q1", "q2", "q3", "q4")
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"


#: Status flags of an interval record: the protocol's (the rows served are
#: the rows stored), so there is one definition of each bit.
Flag = RowFlag


@dataclass(slots=True)
class PointRecord:
    """One meter point in one interval."""

    point: int
    """0-based point index."""
    registers: list[int]
    """kWh D, kWh R, kvarh D, kvarh R at the interval's end, in mWh."""
    deltas: list[int]
    """The same four registers' increase during the interval, in mWh."""
    peak_demand_w: float | None = None
    peak_demand_time: float | None = None
    power_w: list[float | None] = field(default_factory=lambda: [None, None, None])
    """Average active power on phases A, B, C (None where the point has no CT)."""
    current_a: list[float | None] = field(default_factory=lambda: [None, None, None])
    """Average RMS current on phases A, B, C."""


@dataclass(slots=True)
class IntervalRecord:
    """One interval of the interval memory."""

    start: int
    """UTC epoch seconds, a multiple of ``length``."""
    length: int
    """Seconds."""
    flags: Flag
    covered: float
    """Seconds of the interval the meter was metering."""
    voltage: list[float | None]
    """Average RMS voltage per phase terminal."""
    frequency: float | None
    pulses: list[int]
    """Pulse-input counts at the interval's end."""
    pulse_deltas: list[int]
    points: list[PointRecord]
    reported_at: float | None = None
    destination: str | None = None

    @property
    def end(self) -> int:
        """UTC epoch seconds of the interval's end."""
        return self.start + self.length


@dataclass(slots=True)
class Checkpoint:
    """The state that survives a power cut: registers plus everything in flight."""

    time: float
    """UTC epoch seconds of the last metered instant."""
    registers: list[list[int]]
    """Per point, the eight registers (REGISTERS) in mWh."""
    state: dict[str, Any]
    """Remainders, demand, pulse inputs and the interval in progress (JSON)."""
    sequence: int = 0


@dataclass(slots=True)
class ConfigChange:
    """One entry of the configuration change log."""

    time: float
    """UTC epoch seconds (the meter's clock)."""
    user: str
    """Who made the change (a login name, ``panel``, ...)."""
    changes: list[str]
    """What changed, one human-readable line each (never a secret's value)."""
    id: int | None = None
    """The entry's number in the log (None until stored)."""
    origin: str = "web"
    """Where the change came from: ``web``, ``panel``, ``modbus`` or ``cli``
    (:class:`s8000_engine.local.changes.Origin`).  Entries written before the
    log had origins came from the web interface, the only writer then."""


#: The change log; ``IF NOT EXISTS`` so that older stores get it on first use.
_CHANGE_LOG: Final = """
CREATE TABLE IF NOT EXISTS config_change (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    user TEXT NOT NULL,
    changes TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'web'
) STRICT;
"""
#: The origin column, for a change log made before it (its entries came from the web).
_CHANGE_ORIGIN: Final = "ALTER TABLE config_change ADD COLUMN origin TEXT NOT NULL DEFAULT 'web'"


def _has_origin(db: sqlite3.Connection) -> bool:
    columns = db.execute("SELECT name FROM pragma_table_info('config_change')").fetchall()
    return any(name == "origin" for (name,) in columns)


_SCHEMA: Final = (
    """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE registers (
    point INTEGER PRIMARY KEY,
    kwh_d INTEGER NOT NULL, kwh_r INTEGER NOT NULL,
    kvarh_d INTEGER NOT NULL, kvarh_r INTEGER NOT NULL,
    q1 INTEGER NOT NULL, q2 INTEGER NOT NULL, q3 INTEGER NOT NULL, q4 INTEGER NOT NULL
) STRICT;
CREATE TRIGGER registers_never_go_backwards BEFORE UPDATE ON registers
WHEN NEW.kwh_d < OLD.kwh_d OR NEW.kwh_r < OLD.kwh_r OR NEW.kvarh_d < OLD.kvarh_d
  OR NEW.kvarh_r < OLD.kvarh_r OR NEW.q1 < OLD.q1 OR NEW.q2 < OLD.q2 OR NEW.q3 < OLD.q3
  OR NEW.q4 < OLD.q4
BEGIN SELECT RAISE(ABORT, 'an energy register may not move backwards'); END;
CREATE TABLE checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    time REAL NOT NULL,
    sequence INTEGER NOT NULL,
    state TEXT NOT NULL
) STRICT;
CREATE TABLE interval (
    start INTEGER PRIMARY KEY,
    length INTEGER NOT NULL CHECK (length > 0 AND start % length = 0),
    flags INTEGER NOT NULL,
    covered REAL NOT NULL,
    v_a REAL, v_b REAL, v_c REAL,
    frequency REAL,
    pulse1 INTEGER NOT NULL, pulse2 INTEGER NOT NULL,
    pulse1_delta INTEGER NOT NULL, pulse2_delta INTEGER NOT NULL,
    reported_at REAL,
    destination TEXT
) STRICT;
CREATE INDEX interval_unreported ON interval (start) WHERE reported_at IS NULL;
CREATE TABLE interval_point (
    start INTEGER NOT NULL REFERENCES interval (start) ON DELETE CASCADE,
    point INTEGER NOT NULL,
    kwh_d INTEGER NOT NULL, kwh_r INTEGER NOT NULL,
    kvarh_d INTEGER NOT NULL, kvarh_r INTEGER NOT NULL,
    d_kwh_d INTEGER NOT NULL, d_kwh_r INTEGER NOT NULL,
    d_kvarh_d INTEGER NOT NULL, d_kvarh_r INTEGER NOT NULL,
    peak_w REAL, peak_time REAL,
    p_a REAL, p_b REAL, p_c REAL,
    i_a REAL, i_b REAL, i_c REAL,
    PRIMARY KEY (start, point)
) STRICT, WITHOUT ROWID;
"""
    + _CHANGE_LOG
)


def _describe(error: sqlite3.Error, path: Path | None = None) -> str:
    text = str(error)
    if "disk is full" in text or "database or disk is full" in text:
        return "the disk is full (nothing stored was lost; the write will be retried)"
    read_only = path is not None and not os.access(path.parent, os.W_OK)
    if "readonly" in text or "read-only" in text or read_only:
        return f"the database or its directory is read-only ({text})"
    return text


def private_directory(path: Path) -> None:
    """Create the data directory ``path`` for its owner alone (0700), or make
    an existing one so: it holds the store and the web credential."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as error:
        raise StorageError(f"{path}: cannot make it private: {error.strerror}") from None


def _owner_only(target: Path, exists: bool) -> None:
    """Make the database readable by its owner alone (0600): it holds the
    report passwords.  A new one is created so before SQLite opens it; SQLite
    gives its WAL and shared-memory files the database's own mode.  One found
    with looser modes (and its WAL files) is tightened."""
    try:
        if not exists:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        for path in (target, *(target.with_name(target.name + s) for s in ("-wal", "-shm"))):
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
    except OSError as error:
        raise StorageError(f"{target}: cannot make it private: {error.strerror}") from None


class Store:
    """The meter's non-volatile memory: one SQLite file."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    # -- opening ------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, max_pages: int | None = None) -> Self:
        """Open (or create) the store at ``path`` (a file, or a directory that
        gets ``meter.db``).  Refuses foreign, corrupt or newer files."""
        target = Path(path)
        if target.is_dir():
            target = target / DATABASE_NAME
        exists = target.exists()
        if exists:
            cls._check_header(target)
        elif not create:
            raise StorageError(f"{target}: no such database")
        elif not target.parent.is_dir():
            raise StorageError(f"{target}: the data directory {target.parent} does not exist")
        elif not os.access(target.parent, os.W_OK):
            raise StorageError(
                f"{target}: cannot create the database: the data directory is read-only"
            )
        _owner_only(target, exists)
        try:
            connection = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise StorageError(f"{target}: cannot open: {_describe(error, target)}") from None
        store = cls(target, connection)
        try:
            store._prepare(exists, max_pages)
        except StorageError:
            connection.close()
            raise
        except sqlite3.Error as error:
            connection.close()
            raise StorageError(f"{target}: {_describe(error, target)}") from None
        return store

    @staticmethod
    def _check_header(target: Path) -> None:
        try:
            with target.open("rb") as file:
                header = file.read(16)
        except OSError as error:
            raise StorageError(f"{target}: cannot read: {error.strerror}") from None
        if header and header != _SQLITE_MAGIC:
            raise StorageError(
                f"{target}: not an SQLite database (a foreign file); it was left untouched"
            )

    def _prepare(self, exists: bool, max_pages: int | None) -> None:
        db = self._db
        db.execute("PRAGMA foreign_keys = ON")
        if max_pages is not None:
            db.execute(f"PRAGMA max_page_count = {int(max_pages)}")
        application = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if exists and tables and application != APPLICATION_ID:
            raise StorageError(
                f"{self.path}: another application's SQLite database "
                f"(application id {application:#x}); it was left untouched"
            )
        if exists and tables:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StorageError(
                    f"{self.path}: the database is corrupt ({check}); it was left untouched"
                )
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path}: written by a newer s8000-engine (schema {version}, "
                    f"this one knows {SCHEMA_VERSION}); it was left untouched"
                )
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        if not tables:
            db.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA + f"PRAGMA application_id = {APPLICATION_ID};"
                f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )

    def close(self) -> None:
        """Close the database (a checkpoint of the WAL happens on close)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _busy(self) -> bool:
        """Whether a transaction is open (a call, so type checkers do not narrow it)."""
        return bool(self._db.in_transaction)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._busy():  # SQLite may have rolled back by itself
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as error:
            raise StorageError(f"{self.path}: refused: {error}") from None
        except sqlite3.Error as error:
            if self._busy():
                self._db.execute("ROLLBACK")
            raise StorageError(
                f"{self.path}: write failed: {_describe(error, self.path)}"
            ) from None

    # -- meta -----------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        """A stored setting (JSON value), or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a setting (a JSON value)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # -- configuration and its change log ------------------------------------------------

    def save_config(
        self, raw: Any, recording_minutes: int, entry: ConfigChange | None = None
    ) -> ConfigChange | None:
        """Store the raw configuration (meta ``config``), the recording interval
        (meta ``recording_minutes``) and the change-log entry in one transaction:
        after a power cut the store holds the old configuration or the new one,
        never half of it.  Returns the entry with its id."""
        changes = None if entry is None else json.dumps(list(entry.changes))
        with self._transaction() as db:
            upsert = (
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )
            db.execute(upsert, ("config", json.dumps(raw)))
            db.execute(upsert, ("recording_minutes", json.dumps(int(recording_minutes))))
            if entry is None or changes is None:
                return None
            db.execute(_CHANGE_LOG)
            if not _has_origin(db):
                db.execute(_CHANGE_ORIGIN)
            cursor = db.execute(
                "INSERT INTO config_change (time, user, changes, origin) VALUES (?, ?, ?, ?)",
                (float(entry.time), str(entry.user), changes, str(entry.origin)),
            )
            return ConfigChange(
                entry.time, entry.user, list(entry.changes), cursor.lastrowid, entry.origin
            )

    def config_changes(self, limit: int = 100) -> list[ConfigChange]:
        """The newest ``limit`` entries of the change log, newest first."""
        found = self._db.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'config_change'"
        ).fetchone()
        if found is None:
            return []  # a store older than the change log, never changed since
        query = (
            "SELECT id, time, user, changes, origin FROM config_change ORDER BY id DESC LIMIT ?"
            if _has_origin(self._db)
            # A log from before origins were kept, never written since: the web's.
            else "SELECT id, time, user, changes, 'web' FROM config_change ORDER BY id DESC LIMIT ?"
        )
        rows = self._db.execute(query, (max(0, int(limit)),)).fetchall()
        return [ConfigChange(r[1], r[2], list(json.loads(r[3])), r[0], r[4]) for r in rows]

    # -- checkpoint and intervals --------------------------------------------------------

    def load_checkpoint(self) -> Checkpoint | None:
        """The last committed state, or None for a new store."""
        row = self._db.execute("SELECT time, sequence, state FROM checkpoint").fetchone()
        if row is None:
            return None
        registers = [
            list(r)
            for r in self._db.execute(
                f"SELECT {', '.join(REGISTERS)} FROM registers ORDER BY point"
            ).fetchall()
        ]
        return Checkpoint(
            time=row[0], registers=registers, state=json.loads(row[2]), sequence=row[1]
        )

    def commit(self, checkpoint: Checkpoint, intervals: Sequence[IntervalRecord] = ()) -> None:
        """Write the checkpoint and any finished intervals in one transaction.

        Intervals whose start already exists are merged into the stored one
        (a clock set back re-enters them): deltas and coverage add up, flags
        combine, registers take the later values."""
        with self._transaction() as db:
            for interval in intervals:
                self._write_interval(db, interval)
            db.executemany(
                f"INSERT INTO registers (point, {', '.join(REGISTERS)}) VALUES "
                f"(?, {', '.join('?' * len(REGISTERS))}) ON CONFLICT (point) DO UPDATE SET "
                + ", ".join(f"{r} = excluded.{r}" for r in REGISTERS),
                [(point, *values) for point, values in enumerate(checkpoint.registers)],
            )
            db.execute(
                "INSERT INTO checkpoint (id, time, sequence, state) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET time = excluded.time, "
                "sequence = excluded.sequence, state = excluded.state",
                (checkpoint.time, checkpoint.sequence, json.dumps(checkpoint.state)),
            )

    def _write_interval(self, db: sqlite3.Connection, interval: IntervalRecord) -> None:
        existing = self.interval(interval.start)
        if existing is not None:
            interval = _merge(existing, interval)
            db.execute("DELETE FROM interval WHERE start = ?", (interval.start,))
        db.execute(
            "INSERT INTO interval (start, length, flags, covered, v_a, v_b, v_c, frequency, "
            "pulse1, pulse2, pulse1_delta, pulse2_delta, reported_at, destination) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                interval.start,
                interval.length,
                int(interval.flags),
                interval.covered,
                *interval.voltage,
                interval.frequency,
                *interval.pulses,
                *interval.pulse_deltas,
                interval.reported_at,
                interval.destination,
            ),
        )
        db.executemany(
            f"INSERT INTO interval_point VALUES ({', '.join('?' * 18)})",
            [
                (
                    interval.start,
                    p.point,
                    *p.registers,
                    *p.deltas,
                    p.peak_demand_w,
                    p.peak_demand_time,
                    *p.power_w,
                    *p.current_a,
                )
                for p in interval.points
            ],
        )

    # -- reading ------------------------------------------------------------------------------

    def interval(self, start: int) -> IntervalRecord | None:
        """One stored interval, or None."""
        found = self.intervals(start, start + 1)
        return found[0] if found else None

    def energy_by_bucket(
        self, start: float, end: float, step: int, points: Iterable[int] | None = None
    ) -> list[tuple[int, int, int, int, int]]:
        """Energy delivered and received in [start, end), summed by ``step``
        seconds (buckets aligned on ``start``) over the given points (0-based;
        all when None), in SQL: ``(bucket start, kWh D mWh, kWh R mWh,
        intervals, the intervals' flags OR-ed)`` for every bucket with records,
        oldest first.  What a chart needs, without building every record."""
        first, last = math.ceil(start), math.ceil(end)
        chosen = None if points is None else sorted(set(points))
        where = "i.start >= ? AND i.start < ?"
        args: list[Any] = [first, last]
        if chosen is not None:
            where += f" AND p.point IN ({', '.join('?' * len(chosen))})"
            args.extend(chosen)
        energy = self._db.execute(
            f"""SELECT ? + ((i.start - ?) / ?) * ? AS bucket, SUM(p.d_kwh_d), SUM(p.d_kwh_r)
                FROM interval i JOIN interval_point p ON p.start = i.start
                WHERE {where} GROUP BY bucket ORDER BY bucket""",
            [first, first, int(step), int(step), *args],
        ).fetchall()
        flags = {
            row[0]: (row[1], row[2])
            for row in self._db.execute(
                """SELECT ? + ((start - ?) / ?) * ? AS bucket, COUNT(*),
                          SUM(DISTINCT flags & 1) | SUM(DISTINCT flags & 2)
                          | SUM(DISTINCT flags & 4)
                   FROM interval WHERE start >= ? AND start < ? GROUP BY bucket""",
                [first, first, int(step), int(step), first, last],
            )
        }
        result = []
        for bucket, delivered, received in energy:
            count, flagged = flags.get(bucket, (0, 0))
            result.append(
                (
                    int(bucket),
                    int(delivered or 0),
                    int(received or 0),
                    int(count),
                    int(flagged or 0),
                )
            )
        return result

    def intervals(
        self,
        start: float | None = None,
        end: float | None = None,
        points: Iterable[int] | None = None,
        *,
        unreported: bool = False,
        limit: int | None = None,
    ) -> list[IntervalRecord]:
        """Intervals whose start is in [start, end), oldest first, with the
        records of the given points (0-based; all when None)."""
        where = ["1"]
        args: list[Any] = []
        if start is not None:
            where.append("start >= ?")
            args.append(math.ceil(start))
        if end is not None:
            where.append("start < ?")
            args.append(math.ceil(end))
        if unreported:
            where.append("reported_at IS NULL")
        sql = f"SELECT * FROM interval WHERE {' AND '.join(where)} ORDER BY start"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._db.execute(sql, args).fetchall()
        if not rows:
            return []
        chosen = None if points is None else sorted(set(points))
        point_sql = "SELECT * FROM interval_point WHERE start >= ? AND start <= ?"
        point_args: list[Any] = [rows[0][0], rows[-1][0]]
        if chosen is not None:
            point_sql += f" AND point IN ({', '.join('?' * len(chosen))})"
            point_args.extend(chosen)
        by_start: dict[int, list[PointRecord]] = {}
        for p in self._db.execute(point_sql + " ORDER BY start, point", point_args):
            by_start.setdefault(p[0], []).append(
                PointRecord(
                    point=p[1],
                    registers=list(p[2:6]),
                    deltas=list(p[6:10]),
                    peak_demand_w=p[10],
                    peak_demand_time=p[11],
                    power_w=list(p[12:15]),
                    current_a=list(p[15:18]),
                )
            )
        return [
            IntervalRecord(
                start=r[0],
                length=r[1],
                flags=Flag(r[2]),
                covered=r[3],
                voltage=list(r[4:7]),
                frequency=r[7],
                pulses=list(r[8:10]),
                pulse_deltas=list(r[10:12]),
                points=by_start.get(r[0], []),
                reported_at=r[12],
                destination=r[13],
            )
            for r in rows
        ]

    def last_interval(self) -> IntervalRecord | None:
        """The newest stored interval."""
        row = self._db.execute("SELECT max(start) FROM interval").fetchone()
        return None if row[0] is None else self.interval(row[0])

    def count_intervals(self) -> int:
        """How many intervals are stored."""
        return int(self._db.execute("SELECT count(*) FROM interval").fetchone()[0])

    # -- reporting and retention --------------------------------------------------------------

    def mark_reported(self, starts: Iterable[int], destination: str, when: float) -> None:
        """Record that a host acknowledged these intervals."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE interval SET reported_at = ?, destination = ? WHERE start = ?",
                [(when, destination, start) for start in starts],
            )

    def prune(self, before: float) -> int:
        """Drop intervals that started before ``before``; return how many."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM interval WHERE start < ?", (math.ceil(before),))
            return cursor.rowcount

    def size_bytes(self) -> int:
        """The database's size on disk (main file and WAL)."""
        total = 0
        for suffix in ("", "-wal"):
            candidate = Path(f"{self.path}{suffix}")
            if candidate.exists():
                total += candidate.stat().st_size
        return total

    def vacuum(self) -> None:
        """Checkpoint the WAL and compact the file."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")


def _weighted(a: float | None, wa: float, b: float | None, wb: float) -> float | None:
    if a is None:
        return b
    if b is None or wa + wb <= 0:
        return a
    return (a * wa + b * wb) / (wa + wb)


def _merge(old: IntervalRecord, new: IntervalRecord) -> IntervalRecord:
    """Combine a re-entered interval with the stored one (clock set back)."""
    wa, wb = old.covered, new.covered
    by_point = {p.point: p for p in old.points}
    points = []
    for p in new.points:
        q = by_point.get(p.point)
        if q is None:
            points.append(p)
            continue
        candidates = (
            (q.peak_demand_w, q.peak_demand_time),
            (p.peak_demand_w, p.peak_demand_time),
        )
        peak = max(
            (c for c in candidates if c[0] is not None),
            default=(None, None),
            key=lambda c: c[0] or 0.0,
        )
        points.append(
            PointRecord(
                point=p.point,
                registers=[max(a, b) for a, b in zip(q.registers, p.registers, strict=True)],
                deltas=[a + b for a, b in zip(q.deltas, p.deltas, strict=True)],
                peak_demand_w=peak[0],
                peak_demand_time=peak[1],
                power_w=[
                    _weighted(a, wa, b, wb) for a, b in zip(q.power_w, p.power_w, strict=True)
                ],
                current_a=[
                    _weighted(a, wa, b, wb) for a, b in zip(q.current_a, p.current_a, strict=True)
                ],
            )
        )
    return IntervalRecord(
        start=new.start,
        length=new.length,
        flags=old.flags | new.flags,
        covered=min(float(new.length), old.covered + new.covered),
        voltage=[_weighted(a, wa, b, wb) for a, b in zip(old.voltage, new.voltage, strict=True)],
        frequency=_weighted(old.frequency, wa, new.frequency, wb),
        pulses=[max(a, b) for a, b in zip(old.pulses, new.pulses, strict=True)],
        pulse_deltas=[a + b for a, b in zip(old.pulse_deltas, new.pulse_deltas, strict=True)],
        points=points,
        reported_at=None,
        destination=None,
    )
