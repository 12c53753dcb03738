"""The stored runs of a study folder, read once: an in-memory index of ``runs/*.json``.

A study used to parse every run file several times as it started (the stored precision, the conflicts
before and under the lock, what is done, the folder's whole study) and again after each finished run
(``runs.csv``): about a millisecond a record, so a folder of a few thousand runs, what a population on
a GPU produces, spent minutes reading JSON. ``RecordIndex`` reads each file once and keeps its record
(or why it is corrupted) under its stem; ``refresh`` looks again with one directory listing and reads
only the files that are new or changed since (by size, modification time and inode), so another
process's writes are seen; ``add`` files a record this process has just written. Every answer is the
one ``records.check_record`` / ``records.load_runs`` would give on the files as they are. No torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .records import RUNS_DIR, check_record

SUFFIX = ".json"


@dataclass(frozen=True)
class _Entry:
    stamp: tuple[int, int, int]     # (size, mtime_ns, inode): the file as it was read
    record: dict | None             # the complete run, or None (corrupted)
    why: str | None                 # why it is not a complete run (None when it is)


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


class RecordIndex:
    """Every run file of ``out_dir/runs``: read when first seen, and again only once it changes."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.reads = 0                  # files parsed so far (tests and benchmarks count them)
        self._entries: dict[str, _Entry] = {}
        self.refresh()

    @property
    def runs_dir(self) -> Path:
        return self.out_dir / RUNS_DIR

    def refresh(self) -> None:
        """Look at the folder again: read new and changed files, forget removed ones."""
        seen: dict[str, _Entry] = {}
        try:
            listing = os.scandir(self.runs_dir)
        except (FileNotFoundError, NotADirectoryError):
            self._entries = {}
            return
        with listing:
            for entry in listing:
                if not entry.name.endswith(SUFFIX) or not entry.is_file():
                    continue
                stem = entry.name[:-len(SUFFIX)]
                try:
                    stamp = _stamp(entry.stat())
                except OSError:
                    continue            # removed while we looked
                old = self._entries.get(stem)
                if old is not None and old.stamp == stamp:
                    seen[stem] = old
                    continue
                record, why = check_record(Path(entry.path))
                self.reads += 1
                seen[stem] = _Entry(stamp, record, why)
        self._entries = seen

    def add(self, stem: str, record: dict) -> None:
        """File ``record``, which this process has just written to ``runs/<stem>.json`` (not read back)."""
        try:
            stamp = _stamp((self.runs_dir / f"{stem}{SUFFIX}").stat())
        except OSError:
            self._entries.pop(stem, None)
            return
        self._entries[stem] = _Entry(stamp, record, None)

    def exists(self, stem: str) -> bool:
        return stem in self._entries

    def record(self, stem: str) -> dict | None:
        """The complete run stored as ``stem``, or None (no file, or a corrupted one)."""
        entry = self._entries.get(stem)
        return entry.record if entry is not None else None

    def problem(self, stem: str) -> str | None:
        """Why the file of ``stem`` is not a complete run, or None (complete, or no file)."""
        entry = self._entries.get(stem)
        return entry.why if entry is not None else None

    def path(self, stem: str) -> Path:
        return self.runs_dir / f"{stem}{SUFFIX}"

    def records(self) -> list[dict]:
        """Every complete run record, sorted by file name (``records.load_runs``)."""
        return [self._entries[s].record for s in self._sorted() if self._entries[s].record is not None]

    def corrupted(self) -> dict[str, str]:
        """{file path: why} for every file that is not a complete run (``records.scan_runs``)."""
        return {str(self.path(s)): self._entries[s].why for s in self._sorted() if self._entries[s].record is None}

    def _sorted(self) -> list[str]:
        return sorted(self._entries, key=lambda s: s + SUFFIX)

    def __len__(self) -> int:
        return len(self._entries)
