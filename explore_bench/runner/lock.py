"""One suite at a time per output folder: an exclusive ``fcntl.flock`` on ``OUT/.lock``.

    with OutputLock(out_dir):          # raises OutputLocked at once if another process holds it
        ...

``run_suite`` (local and Ray backends) holds the lock for its whole duration. The kernel drops a flock when
the holding process exits, however it exits (SIGKILL included), so a killed suite never leaves a stale lock:
the ``.lock`` file stays behind but is free. The file holds the holder's pid and host (for the error message
only; the lock itself is the flock, never the file's existence). The file is never replaced or deleted while
in use (a flock belongs to an inode: replacing the file would let two holders in).

On a shared filesystem (the Ray backend's NFS output folder) flock works across hosts on Linux NFSv4 clients
(emulated with POSIX byte-range locks); on filesystems without lock support the lock is best effort.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "OutputLock", "OutputLocked", "lock_holder"]

LOCK_FILE = ".lock"


class OutputLocked(RuntimeError):
    """Another process (a suite) holds the output folder's lock."""

    def __init__(self, out_dir: Path, holder: str):
        self.out_dir = Path(out_dir)
        self.holder = holder
        super().__init__(
            f"output folder {out_dir} is in use by another suite ({holder}); wait for it to finish, "
            f"or use another --out folder"
        )


def lock_holder(out_dir: str | os.PathLike) -> str:
    """What ``OUT/.lock`` says about its holder ("pid 123 on host"), or "pid unknown"."""
    try:
        text = (Path(out_dir) / LOCK_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return text.splitlines()[0] if text else "pid unknown"


class OutputLock:
    """Exclusive, non-blocking flock on ``out_dir/.lock``; re-entrant ``acquire`` within one instance."""

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, create: bool = True) -> bool:
        """Take the lock; ``OutputLocked`` if another process holds it. With ``create=False`` a missing lock
        file (or folder) is not created and nothing is taken (returns False): a probe that writes nothing."""
        if self._fd is not None:
            return True
        if fcntl is None:  # pragma: no cover
            return False
        if create:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT
        else:
            if not self.path.exists():
                return False
            flags = os.O_RDWR
        try:
            fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            os.close(fd)
            raise OutputLocked(self.out_dir, lock_holder(self.out_dir)) from None
        except OSError:  # a filesystem without lock support: go on unlocked rather than refuse every run
            os.close(fd)
            return False
        self._fd = fd
        text = f"pid {os.getpid()} on {socket.gethostname()}\n".encode()
        try:  # in place (never replaced: the flock belongs to this inode); skipped when unchanged
            if os.pread(fd, 4096, 0) != text:
                os.ftruncate(fd, 0)
                os.pwrite(fd, text, 0)
        except OSError:
            pass
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # pragma: no cover - belt and braces; the kernel drops it at exit anyway
        try:
            self.release()
        except Exception:  # noqa: BLE001
            pass
