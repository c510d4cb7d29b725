"""The journal's file adapter: one JSON line per entry, appended to a file of the copy's own.

Each batch goes out in one os.write on a descriptor opened with O_APPEND: once the call returns, the lines
are in the kernel's page cache and outlive a SIGKILL of the process (the commit comes only after). With
`fsync` they are also forced to the disk, which a crash of the whole machine needs (docs/performance.md,
"The journal", measures both). A line cut short by such a crash is skipped when the file is opened again,
and the next entry starts on a line of its own.
"""

from __future__ import annotations

import fcntl
import os
import threading
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from messages_service.service import JournalEntry, JournalUnavailable

READ_CHUNK = 1 << 20  # bytes read at a time when the file is indexed
PAGE_ENTRIES = 1000  # entries per chunk of a full read


class FileJournal:
    """The journal as an append-only file. One process at a time: a second one opening the same file is
    refused (an exclusive lock, released when the holder dies, SIGKILL included)."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = False):
        self.path = Path(path)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._starts = array("q")  # where each readable entry's line begins
        self._ends = array("q")  # and where it ends (its newline)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise JournalUnavailable(f"cannot open the journal {self.path}: {err.strerror}") from err
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(self._fd)
            raise JournalUnavailable(f"the journal {self.path} is in use by another process") from err
        self._size = self._index()

    def _index(self) -> int:
        """Finds every whole, readable line; ends a line cut short so that the next entry starts afresh."""
        offset, rest = 0, b""
        while chunk := os.pread(self._fd, READ_CHUNK, offset + len(rest)):
            data = rest + chunk
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                if _readable(data[start:end]):
                    self._starts.append(offset + start)
                    self._ends.append(offset + end)
                start = end + 1
            offset, rest = offset + start, data[start:]
        if rest:  # the last line lacks its newline: written whole but for it, or cut short
            if _readable(rest):
                self._starts.append(offset)
                self._ends.append(offset + len(rest))
            self._write(b"\n")
        return offset + len(rest) + (1 if rest else 0)

    def append(self, entries: Sequence[JournalEntry]) -> None:
        if not entries:
            return
        lines = [orjson.dumps(entry.to_json()) for entry in entries]
        with self._lock:
            if self._fd < 0:
                raise JournalUnavailable(f"the journal {self.path} is closed")
            self._write(b"\n".join(lines) + b"\n")
            offset = self._size
            for line in lines:
                self._starts.append(offset)
                self._ends.append(offset + len(line))
                offset += len(line) + 1
            self._size = offset

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            if self._fsync:
                os.fdatasync(self._fd)
        except OSError as err:
            raise JournalUnavailable(f"cannot write the journal {self.path}: {err.strerror}") from err

    def __len__(self) -> int:
        with self._lock:
            return len(self._starts)

    def page(self, after: int, limit: int) -> list[str]:
        with self._lock:
            starts, ends = self._starts[after:after + limit], self._ends[after:after + limit]
            if not starts:
                return []
            base = starts[0]
            data = os.pread(self._fd, ends[-1] - base, base)
        return [data[start - base:end - base].decode() for start, end in zip(starts, ends, strict=True)]

    def pages(self) -> Iterator[list[str]]:
        total = len(self)  # entries appended while it is read are left for the next read
        for after in range(0, total, PAGE_ENTRIES):
            yield self.page(after, min(PAGE_ENTRIES, total - after))

    def close(self) -> None:
        """Closes the file; an append after it fails (a consumer thread that outlived its stop must not
        write to whatever the descriptor number is given to next)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _readable(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False
