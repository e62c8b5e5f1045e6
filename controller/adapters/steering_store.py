"""Steering stores: where an environment's SteeringState and change journal live durably.

Implement `controller.ports.SteeringStore`. `FileSteeringStore` is the local stack's and a
single-replica controller's store (a volume): the state is one JSON file replaced atomically, the
journal a JSON-lines file appended and fsynced, and every transaction holds an exclusive `flock`
on a lock file, which orders writers across threads and processes alike (flock locks belong to
the open file, so two threads of one worker exclude each other too) and is released by the kernel
when a killed process dies. `MemorySteeringStore` keeps the same contract in memory (tests,
one-off dry runs). Built by `edgectl/bootstrap.py`; used only by the steering authority.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from controller.steering import JournalEntry, SteeringState

JOURNAL_COMPACT_BYTES = 8 * 1024 * 1024
"""Past this size the journal is rewritten keeping the newest JOURNAL_KEEP_ENTRIES entries."""
JOURNAL_KEEP_ENTRIES = 20_000


class SteeringStoreError(Exception):
    """The store's files cannot be read or written (the message names the file and why)."""


class _FileTransaction:
    def __init__(self, store: FileSteeringStore, state: SteeringState) -> None:
        self.state = state
        self._store = store

    def save(self, state: SteeringState) -> None:
        self._store._write_state(state)
        self.state = state

    def find(self, key: tuple[str, str, str]) -> JournalEntry | None:
        return self._store._index.get(key)

    def append(self, entry: JournalEntry) -> None:
        self._store._append(entry)


class FileSteeringStore:
    """SteeringState in `path` (JSON), journal in `<path>.journal.jsonl`, lock in `<path>.lock`."""

    def __init__(self, path: Path, environment: str) -> None:
        self.path = path
        self.environment = environment
        self.journal_path = path.with_name(path.name + ".journal.jsonl")
        self._lock_path = path.with_name(path.name + ".lock")
        self._index: dict[tuple[str, str, str], JournalEntry] = {}
        self._order: list[tuple[str, str, str]] = []
        self._journal_offset = 0
        self._index_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    # ----- reading -------------------------------------------------------------------------------

    def read(self) -> SteeringState:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return SteeringState(environment=self.environment)
        except OSError as error:
            raise SteeringStoreError(f"{self.path}: cannot read: {error}") from error
        try:
            state = SteeringState.model_validate_json(text)
        except ValidationError as error:
            raise SteeringStoreError(f"{self.path}: not a steering state: {error}") from error
        if state.environment != self.environment:
            raise SteeringStoreError(
                f"{self.path}: environment: holds {state.environment!r}, this controller serves {self.environment!r}"
            )
        return state

    def journal(self, plan_id_prefix: str) -> list[JournalEntry]:
        with self._locked():
            return [self._index[k] for k in self._order if k[0].startswith(plan_id_prefix)]

    def ensure_exists(self) -> SteeringState:
        """Read the state, writing an empty one first if the file does not exist yet (under the lock)."""
        with self._locked():
            state = self.read()
            if not self.path.exists():
                try:
                    self._write_state(state)
                except OSError as error:
                    raise SteeringStoreError(f"{self.path}: cannot write: {error}") from error
            return state

    # ----- writing -------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[_FileTransaction]:
        with self._locked():
            yield _FileTransaction(self, self.read())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self._index_lock:
                    self._catch_up_journal()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_state(self, state: SteeringState) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w") as handle:
            handle.write(state.model_dump_json(indent=1))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)

    def _append(self, entry: JournalEntry) -> None:
        line = entry.model_dump_json() + "\n"
        with self.journal_path.open("a") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        with self._index_lock:
            self._catch_up_journal()
            if self._journal_offset > JOURNAL_COMPACT_BYTES:
                self._compact()

    def _catch_up_journal(self) -> None:
        """Read what other processes (or this one) appended since the last look."""
        try:
            with self.journal_path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self._journal_offset:  # compacted by another process: read it all again
                    self._index.clear()
                    self._order.clear()
                    self._journal_offset = 0
                handle.seek(self._journal_offset)
                data = handle.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]  # a torn last line (a crash mid-write) is skipped
        for raw in complete.splitlines():
            try:
                entry = JournalEntry.model_validate_json(raw)
            except ValidationError:
                continue
            if entry.key not in self._index:
                self._order.append(entry.key)
            self._index[entry.key] = entry
        self._journal_offset += len(complete)

    def _compact(self) -> None:
        keep = self._order[-JOURNAL_KEEP_ENTRIES:]
        tmp = self.journal_path.with_name(self.journal_path.name + ".tmp")
        with tmp.open("w") as handle:
            handle.writelines(self._index[k].model_dump_json() + "\n" for k in keep)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.journal_path)
        self._index = {k: self._index[k] for k in keep}
        self._order = list(keep)
        self._journal_offset = self.journal_path.stat().st_size


class _MemoryTransaction:
    def __init__(self, store: MemorySteeringStore) -> None:
        self._store = store
        self.state = store.state

    def save(self, state: SteeringState) -> None:
        self._store.state = state
        self.state = state

    def find(self, key: tuple[str, str, str]) -> JournalEntry | None:
        return self._store.entries.get(key)

    def append(self, entry: JournalEntry) -> None:
        self._store.entries[entry.key] = entry


class MemorySteeringStore:
    """The same contract in memory: one lock for every transaction, state and journal in fields."""

    def __init__(self, environment: str, state: SteeringState | None = None) -> None:
        self.state = state or SteeringState(environment=environment)
        self.entries: dict[tuple[str, str, str], JournalEntry] = {}
        self._lock = threading.Lock()

    def read(self) -> SteeringState:
        return self.state

    @contextmanager
    def transaction(self) -> Iterator[_MemoryTransaction]:
        with self._lock:
            yield _MemoryTransaction(self)

    def journal(self, plan_id_prefix: str) -> list[JournalEntry]:
        with self._lock:
            return [e for k, e in self.entries.items() if k[0].startswith(plan_id_prefix)]

