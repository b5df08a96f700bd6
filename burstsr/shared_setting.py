"""Process-wide settings that overlapping blocks of work share (BLAS threads, how memory is
allocated): the first block to start sets one, the last to end undoes it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


class SharedSetting:
    """A process-wide setting that blocks in several threads share: ``with setting():``. The
    first block to start calls ``do``, the last to end calls ``undo`` with what ``do``
    returned."""

    def __init__(self, do: Callable[[], object], undo: Callable[[object], None]) -> None:
        self.do, self.undo = do, undo
        self.lock, self.users, self.saved = threading.Lock(), 0, None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.users == 0:
                self.saved = self.do()
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    self.undo(self.saved)
                    self.saved = None
