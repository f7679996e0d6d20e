"""Training logs inside a run directory: `MetricsLog` (metrics.jsonl + TensorBoard events)
and the curves plot. The layout itself (file names, creating, reading, checking) belongs
to `samtune.runs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def tensorboard_available() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


# metrics.jsonl field -> TensorBoard tag
TENSORBOARD_TAGS = {"loss": "train/loss", "lr": "train/lr", "val_dice": "val/dice"}


class MetricsLog:
    """Append-only `metrics.jsonl` (each line flushed, so a kill loses at most one line).

    With `tensorboard` (a folder), the scalars of each record are also written there as
    TensorBoard events. After a resume (`truncate_after`) the events that the interrupted
    run logged past the checkpoint are purged, as its JSON lines are.
    """

    def __init__(self, path: Path, enabled: bool = True, tensorboard: Path | None = None):
        self.path = path
        self.enabled = enabled
        self.tensorboard = tensorboard if enabled else None
        self._writer: SummaryWriter | None = None
        self._purge_from: int | None = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            step = int(record["step"])
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.tensorboard), purge_step=self._purge_from)
            for key, tag in TENSORBOARD_TAGS.items():
                if key in record:
                    self._writer.add_scalar(tag, float(record[key]), step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def truncate_after(self, step: int) -> None:
        """On resume, drop records logged after the checkpointed step."""
        self._purge_from = step + 1
        if not self.path.exists():
            return
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
