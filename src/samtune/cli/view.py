"""`samtune view`: review predictions against ground truth, prompt a model, correct masks.

    samtune view eval/                       # an eval folder (or a run holding eval/)
    samtune view studies/p --cell CELL_ID    # one cell of a study
    samtune view preds/ --images scans/ --gt labels/
    samtune view brain.nii.gz --model lite_medsam
    samtune view eval/ --run runs/prostate --corrections fixes/

Needs the view extra: pip install 'samtune[view]'. See `samtune.view`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from samtune.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "view",
        help="a local web page: review predictions, prompt a model, correct masks",
        description=(
            "Open a local page on PATH: an eval folder (per_case.csv + summary.json, or a run holding "
            "eval/), a study folder with --cell, a predict output folder with --images, a folder of images, or one image or "
            "volume. Cases are listed worst Dice first; slices are shown axial/coronal/sagittal with "
            "ground truth, prediction and their difference. Click points or drag a box to prompt the "
            "model; brush, erase, undo; Accept writes the corrected mask (source geometry) into "
            "--corrections and lists it in corrections.csv for `samtune train --set data.train=...`."
        ),
    )
    parser.add_argument("path", type=Path, metavar="PATH", help="eval folder, predict folder, image folder or file")
    parser.add_argument("--images", type=Path, metavar="DIR", help="the images a predict/eval folder was made from")
    parser.add_argument("--gt", type=Path, metavar="DIR|FILE", help="ground-truth labels (folder, or a file for one image)")
    parser.add_argument("--cell", metavar="ID", help="for a study folder: the cell to review (its runs/ID/eval)")
    parser.add_argument("--run", type=Path, metavar="RUN_DIR", help="a prompted training run to prompt with")
    parser.add_argument("--model", metavar="NAME", help="a registered model to prompt with zero-shot (default lite_medsam)")
    parser.add_argument("--checkpoint", type=Path, metavar="FILE", help="weights for --model")
    parser.add_argument("--no-model", action="store_true", help="review only: no prompting")
    parser.add_argument("--corrections", type=Path, default=Path("corrections"), metavar="DIR",
                        help="where Accept writes masks and corrections.csv (default ./corrections)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1); any other host requires the printed token")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL only")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise UserError(f"samtune view needs the view extra ({error.name} is not installed): "
                        "pip install 'samtune[view]'") from None
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be 0..65535, got {args.port}")
    if args.no_model and (args.run or args.model):
        raise UserError("--no-model turns prompting off; drop it or drop --run/--model")
    from samtune.view import build_app, open_view
    from samtune.view.server import bind, new_token, page_url, serve

    token = new_token(args.host)
    state = open_view(args.path, images=args.images, gt=args.gt, run=args.run, model=args.model,
                      checkpoint=args.checkpoint, corrections=args.corrections, token=token,
                      device=args.device, prompt=not args.no_model, cell=args.cell)
    unmatched = state.catalog.unmatched
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (f" ... and {len(unmatched) - 10} more" if len(unmatched) > 10 else "")
        print(f"samtune: warning: {len(unmatched)} case(s) without an image file, not shown: {shown}", file=sys.stderr)
    sock = bind(args.host, args.port)
    serve(build_app(state), sock, page_url(sock, args.host, token), state.corrections,
          open_browser=not args.no_browser)
    return 0
