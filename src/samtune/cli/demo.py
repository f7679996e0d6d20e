"""`samtune demo`: the embedded few-shot fine-tuning demo on real brain MRI."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="fine-tune LiteMedSAM few-shot on brain MRI that the install brings, report Dice",
        description=(
            "Writes three sets of 5 axial slices of the MNI152 2009a template (from the nilearn "
            "wheel) with a tissue mask: training slices, selection slices that choose the best "
            "checkpoint, and reported slices used for nothing else. Measures zero-shot LiteMedSAM "
            "Dice with a box prompt on the reported slices, fine-tunes the mask decoder (a few "
            "minutes on an idle 2-core CPU), and measures again."
        ),
    )
    parser.add_argument("--out", default="samtune_demo", help="output folder (default: samtune_demo)")
    parser.add_argument("--tissue", default="wm", choices=("wm", "gm"), help="white or grey matter (default wm)")
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samtune.demo import REPORT_SLICES, SELECT_SLICES, TRAIN_SLICES, run_demo

    result = run_demo(args.out, tissue=args.tissue, steps=args.steps, seed=args.seed, overwrite=args.overwrite)
    print(f"\ntrained on slices z={', '.join(map(str, TRAIN_SLICES))}; best checkpoint chosen on z="
          f"{', '.join(map(str, SELECT_SLICES))}; reported below: z={', '.join(map(str, REPORT_SLICES))}, "
          "used for nothing else")
    print("\nreported slice   zero-shot Dice   fine-tuned Dice")
    for z, zs, ft in zip(REPORT_SLICES, result.zero_shot, result.fine_tuned):
        print(f"z={z:<14d} {zs:<16.4f} {ft:.4f}")
    print(f"{'mean':<16} {result.zero_shot_mean:<16.4f} {result.fine_tuned_mean:.4f}")
    print(f"\nfine-tuning took {result.train_seconds:.0f}s; pictures (truth | zero-shot | fine-tuned, radiological view) in "
          f"{result.out / 'overlays'}, curves in {result.out / 'run' / 'curves.png'}")
    return 0
