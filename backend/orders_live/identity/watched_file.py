"""A file the service re-reads when it changes, without a restart (a JWKS, a revocation list).

``check()`` compares the file's identity, size and modification time with the last read and
reads it again when any differs. A file that cannot be read or parsed keeps the last good
content (and is warned about once per change of the file): a half-written key set never locks
everyone out. The owner calls ``check()`` from one supervised task, a few times a second.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Stamp = tuple[int, int, int, int]  # (device, inode, size, mtime in ns)


class WatchedFile(Generic[T]):
    def __init__(self, path: Path, parse: Callable[[bytes], T], initial: T, what: str) -> None:
        self.path, self.parse, self.what = path, parse, what
        self.value: T = initial
        self.loaded = False  # a good read has happened
        self._stamp: Stamp | None = None
        self.problem: str | None = None  # why the last change of the file could not be taken

    def check(self) -> bool:
        """Re-read the file if it changed; True when ``value`` changed."""
        try:
            info = os.stat(self.path)
        except OSError as exc:
            return self._failed(None, f"cannot read it ({exc.strerror})")
        stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if stamp == self._stamp:
            return False
        try:
            value = self.parse(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            return self._failed(stamp, str(exc))
        self._stamp, self.problem = stamp, None
        changed = not self.loaded or value != self.value
        self.value, self.loaded = value, True
        if changed:
            log.info("read %s from %s", self.what, self.path)
        return changed

    def _failed(self, stamp: Stamp | None, why: str) -> bool:
        if stamp is None and self._stamp is None and self.problem is not None:
            return False  # still missing: said already
        if stamp != self._stamp or self.problem is None:
            log.warning("%s at %s: %s; keeping what was read before", self.what, self.path, why)
        self._stamp, self.problem = stamp, why
        return False
