"""``onevision-hf select VIDEO --output SEL.npz [--viz SEL.png]``: the patches the encoder would read.

Writes ``positions`` (K, 3) int32 rows (t, h, w) on the encoder's grids, ``frame_indices`` (T,) int64 (decoded
frame indices of the sampled frames), ``method`` (the motion estimate that ran), ``grid_size`` (3,) int64
(T, grid_h, grid_w). ``--viz`` draws every sampled frame with the dropped patches dimmed.
"""

from pathlib import Path

from .selection_options import add_selection_arguments, selection_overrides


def add_parser(subparsers):
    parser = subparsers.add_parser("select", help="select a video's patches (codec-guided) and save them",
                                   description=__doc__)
    # the path as typed: a Path would fold a URL's "//" and hide that it is one
    parser.add_argument("video", help="video file (any format FFmpeg decodes)")
    parser.add_argument("--output", type=Path, required=True, help="where to write the .npz selection")
    parser.add_argument("--viz", type=Path, help="also draw the selection as a PNG")
    add_selection_arguments(parser)
    parser.set_defaults(func=run)


def run(args):
    import numpy as np

    from ..pipeline import check_output_file
    from ..processors.selection_visualization import save_selection_image
    from ..processors.video_processing_onevision import OneVisionVideoProcessor

    processor = OneVisionVideoProcessor(preset=args.preset, **selection_overrides(args))
    for option, path in (("--output", args.output), ("--viz", args.viz)):
        if path is not None:
            check_output_file(path, option)  # before the selection, not after it
    selection = processor.select(args.video, progress=True, keep_frames=args.viz is not None)
    np.savez(
        args.output,
        positions=selection.positions.astype(np.int32),
        frame_indices=selection.frame_indices.astype(np.int64),
        method=np.array(selection.method),
        grid_size=np.array(selection.grid_size, dtype=np.int64),
    )
    t, grid_h, grid_w = selection.grid_size
    print(f"{args.video}: kept {len(selection.positions)} of {t * grid_h * grid_w} patches "
          f"({t} frames x {grid_h} x {grid_w}) by {selection.method}"
          + (f" (fallback: {selection.fallback_reason})" if selection.fallback_reason else "")
          + f" -> {args.output}")
    if args.viz is not None:
        save_selection_image(selection, args.viz)
        print(f"picture -> {args.viz}")
