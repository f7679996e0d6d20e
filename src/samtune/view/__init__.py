"""`samtune view`: a local web page to review predictions, prompt a model and correct masks.

    >>> state = open_view("eval/", run=None, model="lite_medsam")   # library call behind the CLI
    >>> app = build_app(state)                                       # an ASGI app (Starlette)

Modules: `catalog` (what PATH holds), `volumes` (cases in memory, slices), `prompting`
(model masks with cached slice embeddings, propagation), `corrections` (Accept), `security`
(token / Host checks), `app` (routes), `server` (uvicorn). The page itself is plain HTML,
CSS and JavaScript in ``static/`` (view.js: viewing; edit.js: editing and controls): no build
step, nothing fetched from the network.
"""

from __future__ import annotations

from pathlib import Path


def open_view(path: str | Path, images: str | Path | None = None, gt: str | Path | None = None,
              run: str | Path | None = None, model: str | None = None, checkpoint: str | Path | None = None,
              corrections: str | Path = "corrections", token: str | None = None, device: str = "cpu",
              prompt: bool = True, cell: str | None = None):
    """Everything the server needs, checked before anything is served or written.

    A run given with ``run`` must be a finished prompted run and a ``model`` must exist:
    both are loaded now, so a run that cannot prompt or a wrong name is refused at start.
    Without either, the run an evaluation folder names (when it is prompted), else
    ``lite_medsam``, is loaded on the first prompt, so reviewing starts without torch.
    """
    from samtune.view.app import ViewState
    from samtune.view.catalog import build_catalog
    from samtune.view.corrections import check_corrections_folder
    from samtune.view.prompting import PromptEngine, load_predictor
    from samtune.view.volumes import CaseStore

    if run is not None and model is not None:
        from samtune.errors import UserError

        raise UserError("give --run RUN or --model NAME for prompting, not both")
    catalog = build_catalog(path, images=images, gt=gt, cell=cell)
    folder = check_corrections_folder(corrections, catalog)
    if not prompt:
        engine = PromptEngine(None, "")
    elif run is not None:
        predictor = load_predictor(run, None, device=device)
        engine = PromptEngine(lambda: predictor, f"run {Path(run).name}")
    elif model is None and catalog.run is not None and _prompted_run(catalog.run):
        engine = PromptEngine(lambda: load_predictor(catalog.run, None, device=device), f"run {catalog.run.name}")
    elif model is not None:  # named by the user: loaded now, so a wrong name or checkpoint is refused at start
        predictor = load_predictor(None, model, checkpoint, device=device)
        engine = PromptEngine(lambda: predictor, f"{model} (zero-shot)")
    else:
        engine = PromptEngine(lambda: load_predictor(None, "lite_medsam", checkpoint, device=device),
                              "lite_medsam (zero-shot)")
    return ViewState(catalog, CaseStore(catalog), engine, folder, token)


def _prompted_run(run: Path) -> bool:
    """True when an evaluation's run still exists and was trained with prompts."""
    try:
        from samtune.configs import load_yaml

        return load_yaml(run / "config.yaml").get("task", {}).get("mode") == "prompted"
    except Exception:  # a moved or unreadable run: prompt with the zero-shot model instead
        return False


def build_app(state):
    """The ASGI app for `open_view`'s state (see `samtune.view.app`)."""
    from samtune.view.app import build_app as build

    return build(state)
