"""Whole-line appends to a text file shared by threads and processes: one write under a lock, then fsync.

`AppendOnlyFile` keeps a file that domainfit only ever appends to, line by
line. Every append happens under a thread lock and an exclusive ``flock`` on
the file (so two services writing the same file queue up), after reading the
lines other writers appended since the last look, so a caller deciding
whether to write (a de-duplication) sees the whole file. The new text goes
out in one ``os.write`` on a descriptor opened for appending and is fsynced
before the lock is released; a write that fails or comes up short is cut back
(``ftruncate`` to the size before it), so the file never holds a torn line.

Every line read (at `scan` and before each append) is given to the caller's
``on_line(number, text)``, which validates it and records what it needs; a
last line without a newline (a file written by hand) is read too, and the next
append starts with the missing newline.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path

from domainfit.core.errors import InputError
from domainfit.core.files import fsync_dir

#: ``on_line(line_number, text)``: validate and record one line (raise `InputError` for a bad one).
LineReader = Callable[[int, str], None]
#: ``decide(empty)``: the text to append (whole lines), or None to append nothing; ``empty``: the file has no line yet.
Decision = Callable[[bool], str | None]


class AppendOnlyFile:
    """A text file read once, then only appended to in whole lines (thread- and process-safe).

    Inputs: the file's path (it need not exist yet) and the reader every line
    goes through. Call `scan` once to read what is there; then `append`.
    """

    def __init__(self, path: Path, on_line: LineReader) -> None:
        self.path = path
        self._on_line = on_line
        self._offset = 0
        self._lines = 0
        self._open_line = False
        self._lock = threading.Lock()

    @property
    def lines(self) -> int:
        """The number of lines read or written so far."""
        return self._lines

    def scan(self) -> None:
        """Read every line of the file as it is now (nothing when it does not exist); `InputError` for a bad one."""
        if not self.path.exists():
            return
        if not self.path.is_file():
            raise InputError(self.path, 0, "-", "is not a file")
        with self._lock, self.path.open("rb") as handle:
            self._catch_up(handle.fileno())

    def _catch_up(self, fd: int) -> None:
        """Read the bytes appended since the last look and pass each line to ``on_line``."""
        size = os.fstat(fd).st_size
        if size < self._offset:
            raise InputError(self.path, 0, "-", "the file shrank while the service was writing it")
        if size == self._offset:
            return
        data = os.pread(fd, size - self._offset, self._offset)
        start = 0
        if self._open_line:  # the last line had no newline: only its newline may follow
            if not data.startswith(b"\n"):
                raise InputError(self.path, self._lines, "-", "the last line was changed while the service ran")
            start, self._open_line = 1, False
        while start < len(data):
            end = data.find(b"\n", start)
            stop = len(data) if end < 0 else end + 1
            self._lines += 1
            try:
                text = data[start:stop].decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(self.path, self._lines, "-", "is not valid UTF-8") from None
            self._open_line = end < 0  # a last line without its newline: the next append starts with one
            self._on_line(self._lines, text.rstrip("\n").rstrip("\r"))
            start = stop
        self._offset = size

    def append(self, decide: Decision) -> bool:
        """Append what ``decide`` returns, atomically; return whether anything was written.

        Under the locks: read what others appended, ask ``decide(empty)`` for the
        text (None: nothing to write), write it in one ``os.write``, fsync, and
        pass the new lines to ``on_line``. Raises `OSError` when the write fails
        (the file is cut back to its size before the write).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._catch_up(fd)
                text = decide(self._lines == 0)
                if text is None:
                    return False
                data = (b"\n" if self._open_line else b"") + text.encode("utf-8")
                if not data.endswith(b"\n"):
                    data += b"\n"
                self._write(fd, data)
                self._catch_up(fd)
            finally:
                os.close(fd)  # closing the descriptor releases the flock
        if created:
            fsync_dir(self.path.parent)
        return True

    def _write(self, fd: int, data: bytes) -> None:
        """Write ``data`` at the end in one call and fsync; on any failure cut the file back to its size before."""
        before = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, before)
            raise
