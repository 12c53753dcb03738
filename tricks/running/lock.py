"""An advisory lock on a results directory, so two studies never write the same runs."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import TricksError


class DirectoryLock:
    """``with DirectoryLock(out):`` holds ``out/.lock`` (flock: released by the OS if the process dies)."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> "DirectoryLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise TricksError(f"another study is already running in {self.path.parent} (pid {holder}); "
                              "wait for it to finish, or use a different --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
