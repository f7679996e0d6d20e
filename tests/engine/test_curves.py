"""curves.png (issue 12, item 17): a title, a learning-rate panel, zero Dice visible."""

from __future__ import annotations

from matplotlib.figure import Figure

from samtune.engine.curves import plot_training_curves


def test_curves_have_title_lr_panel_and_room_below_zero(tmp_path, monkeypatch):
    seen = {}
    original = Figure.savefig

    def capture(figure, *args, **kwargs):
        seen["figure"] = figure
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    records = [{"step": s, "loss": 1.0 / s, "lr": 1e-4 * s} for s in (1, 2, 3)] + [{"step": 3, "val_dice": 0.0}]
    path = plot_training_curves(records, tmp_path / "curves.png", title="prostate (lite_medsam/decoder/lora)")
    assert path.is_file()
    figure = seen["figure"]
    assert figure._suptitle.get_text() == "prostate (lite_medsam/decoder/lora)"
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["training loss", "learning rate", "validation Dice (foreground)"]
    assert list(figure.axes[1].lines[0].get_ydata()) == [r["lr"] for r in records[:3]]
    low, high = figure.axes[2].get_ylim()
    assert low < 0 < 1 < high  # a Dice of 0 sits inside the axes, not on its edge
    assert "best 0.000 @ 3" in [t.get_text() for t in figure.axes[2].texts]
