"""Training progress for people: a redrawn bar on a terminal, plain lines in a log file.

On a terminal the bar is one line, redrawn every step:

    [########..........]  80/200  loss 0.3142  Dice 0.781  1m12s, ~1m48s left

When the output is not a terminal (a log file, a study cell, CI), redrawing would fill
the file with carriage returns, so the same fields are printed as a line every
`log_every` steps instead. Validation results always get a line of their own.
"""

from __future__ import annotations

import sys
from typing import TextIO

BAR_WIDTH = 24


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Reports step, loss, best validation Dice and time left; silent when not `enabled`."""

    def __init__(self, total: int, log_every: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.log_every = log_every
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = enabled
        isatty = getattr(self.stream, "isatty", None)
        self.bar = bool(isatty and isatty())
        self.loss: float | None = None
        self.best_dice: float | None = None
        self._drawn = False

    def fields(self, step: int, elapsed: float) -> str:
        left = elapsed / max(step, 1) * (self.total - step)
        loss = f"  loss {self.loss:.4f}" if self.loss is not None else ""
        dice = f"  Dice {self.best_dice:.3f}" if self.best_dice is not None else ""
        return f"{step}/{self.total}{loss}{dice}  {format_seconds(elapsed)}, ~{format_seconds(left)} left"

    def update(self, step: int, elapsed: float, loss: float | None = None) -> None:
        """Called after every optimiser step; `loss` when a new running mean is known."""
        if not self.enabled:
            return
        if loss is not None:
            self.loss = loss
        if self.bar:
            filled = BAR_WIDTH * step // max(self.total, 1)
            line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}]  {self.fields(step, elapsed)}"
            self.stream.write(f"\r{line}\x1b[K")
            self._drawn = True
            self.stream.flush()
        elif step % self.log_every == 0 or step == self.total:
            self.message(f"step {self.fields(step, elapsed)}")

    def validation(self, step: int, dice: float, improved: bool) -> None:
        if improved:
            self.best_dice = dice
        self.message(f"  validation at step {step}: Dice {dice:.4f}" + (" (best)" if improved else ""))

    def message(self, text: str) -> None:
        """A line of its own (the bar, if drawn, is ended first and redrawn on the next step)."""
        if not self.enabled:
            return
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
