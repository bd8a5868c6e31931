"""``onevision-hf demo``: the whole pipeline on the bundled phone video, offline, in seconds.

Codec-guided patch selection (one streaming decode), a picture of what was kept, one packed encoder call,
and the token statistics and pooled embedding. ``--video`` and ``--model`` swap in your own.
"""

from pathlib import Path


def add_parser(subparsers):
    parser = subparsers.add_parser("demo", help="select, draw and encode the bundled example video",
                                   description=__doc__)
    parser.add_argument("--video", type=Path, help="video file (default: the bundled beach-portrait clip)")
    parser.add_argument("--model", help="encoder directory (default: the bundled model)")
    parser.add_argument("--output-dir", type=Path, default=Path("demo-output"),
                        help="where the picture and features go (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args):
    import time

    import torch
    from safetensors.torch import save_file

    from ..pipeline import load_encoder, video_processor_for
    from ..processors.selection_visualization import save_selection_image
    from ..resources import EXAMPLE_VIDEO, bundled

    video = args.video or bundled(EXAMPLE_VIDEO)
    model = load_encoder(args.model)
    processor = video_processor_for(model)
    start = time.perf_counter()
    selection = processor.select(video, progress=True, keep_frames=True)
    selected = time.perf_counter()
    packed = processor.pack([selection])
    with torch.inference_mode():
        output = model(**packed)
    encoded = time.perf_counter()

    args.output_dir.mkdir(parents=True, exist_ok=True)
    picture = args.output_dir / "selection.png"
    save_selection_image(selection, picture)
    features = args.output_dir / "features.safetensors"
    save_file({"pooler_output": output.pooler_output.contiguous(), "last_hidden_state": output.last_hidden_state,
               "patch_positions": packed["patch_positions"], "cu_seqlens": packed["cu_seqlens"]}, str(features))

    frames, grid_h, grid_w = selection.grid_size
    dense = frames * grid_h * grid_w
    kept = len(selection.positions)
    per_frame = torch.bincount(torch.from_numpy(selection.sample_indices), minlength=frames)
    pooled = output.pooler_output[0]
    print(f"\nvideo        {video} ({selection.source_frame_count} frames decoded)")
    print(f"model        {model.name_or_path} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters)")
    print(f"selection    {selection.method}" + (f" (fallback: {selection.fallback_reason})"
                                                 if selection.fallback_reason else ""))
    print(f"grid         {frames} frames x {grid_h} x {grid_w} patches of {selection.geometry.patch_size} px "
          f"(frame {selection.geometry.source_size[1]} x {selection.geometry.source_size[0]} -> "
          f"{selection.geometry.canvas_size[1]} x {selection.geometry.canvas_size[0]})")
    print(f"tokens       {kept} of {dense} ({100 * kept / dense:.1f} %); per frame min {int(per_frame.min())}, "
          f"median {int(per_frame.median())}, max {int(per_frame.max())}")
    print(f"embedding    pooled ({pooled.shape[0]},) norm {pooled.norm():.3f}, first values "
          + " ".join(f"{v:+.3f}" for v in pooled[:6].tolist()))
    print(f"time         selection {selected - start:.2f} s, encoding {encoded - selected:.2f} s")
    print(f"picture      {picture}\nfeatures     {features}")
    return 0
