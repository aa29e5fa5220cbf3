"""A progress bar per build stage, fed by builder callbacks or gRPC progress events."""

from __future__ import annotations

import sys
from typing import Literal, NoReturn, TextIO

from tqdm import tqdm


class StageBars:
    """One tqdm bar per stage; a new stage closes the previous bar."""

    def __init__(
        self, enabled: bool | Literal["always"] = True, *, stream: TextIO | None = None
    ) -> None:
        """``stream``: where the bars go (default: stderr); shown only on a terminal unless
        ``enabled`` is ``"always"``."""
        self._stream = stream or sys.stderr
        self._enabled = enabled == "always" or (bool(enabled) and self._stream.isatty())
        self._stage = ""
        self._bar: tqdm[NoReturn] | None = None

    def update(self, stage: str, done: int, total: int, message: str) -> None:
        """Show ``done`` of ``total`` for ``stage``."""
        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=max(total, 1), desc=f"{stage:>9}", unit="step", leave=True,
                             file=self._stream, disable=not self._enabled)
        if self._bar is not None:
            self._bar.total = max(total, 1)
            self._bar.n = done
            self._bar.set_postfix_str(message[:40], refresh=True)

    def close(self) -> None:
        """Finish the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
