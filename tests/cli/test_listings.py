"""`samtune --help`, `models` and `strategies` answer without importing torch (issue 12, item 12),
from precomputed rows that must equal what the models and methods compute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from samtune.cli.listings import MODEL_ROWS, STRATEGY_ROWS_NEW_HEADS, STRATEGY_ROWS_PRETRAINED
from samtune.cli.models import model_table
from samtune.methods.counting import strategy_counts
from samtune.methods.strategy import STUDY_BACKBONES, study_strategies

SRC = str(Path(__file__).parents[2] / "src")


@pytest.mark.slow  # builds every study backbone on the meta device, twice (~5 s idle)
def test_precomputed_rows_equal_the_computed_ones():
    assert MODEL_ROWS == [tuple(row.values()) for row in model_table("*", include_test=False)]
    for heads, rows in ((False, STRATEGY_ROWS_PRETRAINED), (True, STRATEGY_ROWS_NEW_HEADS)):
        counts = strategy_counts(study_strategies(STUDY_BACKBONES), num_classes_changed=heads)
        assert rows == [(c.strategy.backbone, c.strategy.component, c.strategy.method, c.trainable, c.total)
                        for c in counts]


def test_listing_commands_do_not_import_torch():
    script = (
        "import sys, io, contextlib\n"
        "from samtune.cli.main import main\n"
        "for argv in (['models'], ['models', 'sam_*'], ['strategies'], ['strategies', '--new-heads']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        assert main(argv) == 0\n"
        "    print(argv, len(out.getvalue().splitlines()))\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'importlib.metadata') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": SRC},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout
    assert "['models'] 9" in done.stdout and "['models', 'sam_*'] 5" in done.stdout  # header, rule, rows
    assert "['strategies'] 30" in done.stdout  # header, rule, 24 rows, blank, 3 lines of notes


def test_backend_arguments_list_the_precisions_the_inference_code_knows():
    from samtune.cli.backend_args import PRECISIONS
    from samtune.inference import precision

    assert PRECISIONS == precision.PRECISIONS
