"""The equal-budget experiment: at the same number of visual tokens, do codec-selected patches of many frames
carry more of a video's meaning than all patches of a few uniformly sampled frames?

Data: the labelled synthetic clips of `onevision_hf.synthetic_dataset` (64 frames of 112 x 112, 8 x 8 patches of
14 px per frame; tasks ``direction``, ``which_moved``, ``flash_count``), generated here with ``--data-seed``.
For each token budget K and each input, the frozen encoder's tokens of every clip are computed once:

* ``codec``: `OneVisionVideoProcessor`, K patches of all 64 frames (the first frame whole, the rest by codec
  energy), as `onevision_hf.evaluation.probe` builds its ``codec`` input;
* ``frames``: every patch of K / 64 uniformly sampled frames (the probe's ``frames`` input);
* ``random``: a control, K patches of all 64 frames, the first frame whole and the rest drawn at random: as
  many frames as ``codec``, without the codec's choice.

For each task and seed an attentive probe (`evaluation.probe.train_probe`: learned-query cross-attention, AdamW,
label smoothing, warm-up + cosine) is trained on the train split for ``--epochs`` epochs; the final head is scored
on the test split. The table gives mean ± std test accuracy over the seeds, and, for the brief events, the share
of test-set events the input shows at all (a patch of a frame during the event, >= 25 % covered by it).

    .venv/bin/python benchmarks/equal_budget.py                       # default model, K = 256 and 512, 3 seeds
    .venv/bin/python benchmarks/equal_budget.py --random-init --budgets 256 --out benchmarks/out/equal-budget-untrained
"""

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from onevision_hf.evaluation.probe import (
    ProbeConfig,
    evaluate_probe,
    select_video_patches,
    train_probe,
    video_processor_for,
)
from onevision_hf.modeling import OneVisionEncoderModel
from onevision_hf.modeling.packed_attention import split_lengths
from onevision_hf.pipeline import load_encoder
from onevision_hf.resources import DEFAULT_ENCODER
from onevision_hf.synthetic_dataset import (
    TASKS,
    ClipSpec,
    clip_seed,
    event_seen,
    read_split,
    render_clip,
    write_dataset,
)

INPUTS = ("codec", "frames", "random")
SPLITS = ("train", "val", "test")
EVENT_KINDS = ("jump", "flash")
NUM_FRAMES = ClipSpec().num_frames


def random_selection(dense, budget: int, rng: np.random.Generator):
    """``budget`` patches of a dense `VideoSelection`: its first frame whole, the rest drawn uniformly."""
    first = np.flatnonzero(dense.sample_indices == 0)
    rest = np.flatnonzero(dense.sample_indices != 0)
    keep = np.sort(np.concatenate((first, rng.choice(rest, budget - len(first), replace=False))))
    return dataclasses.replace(dense, positions=dense.positions[keep], patches=dense.patches[keep])


def select_inputs(processors: dict, path: str, budgets: list[int], rng: np.random.Generator) -> dict:
    """(input, K) -> the clip's `VideoSelection` of that input at K tokens."""
    selections = {}
    dense = processors[budgets[0]].select(path, budget=1.0)
    for budget in budgets:
        for mode in ("codec", "frames"):
            config = ProbeConfig(input_mode=mode, budget=budget, num_frames=NUM_FRAMES)
            selections[mode, budget] = select_video_patches(processors[budget], path, config)
        selections["random", budget] = random_selection(dense, budget, rng)
    return selections


@torch.no_grad()
def encode(encoder, processor, selections: list) -> list[torch.Tensor]:
    """One frozen-encoder call over the packed selections -> (L_i, D) tokens per clip."""
    inputs = processor.pack(selections)
    tokens = encoder(**inputs).last_hidden_state  # (N, D)
    return list(tokens.split(split_lengths(inputs["cu_seqlens"])))


def clip_labels(row: dict) -> dict[str, int]:
    return {task: TASKS[task].index(row[task]) for task in TASKS}


def features_and_coverage(encoder, root: Path, data_seed: int, budgets: list[int], batch_size: int):
    """Tokens of every clip of every split under every (input, K), and which test events each input shows."""
    processors = {budget: video_processor_for(encoder.config, ProbeConfig(budget=budget, num_frames=NUM_FRAMES))
                  for budget in budgets}
    keys = [(mode, budget) for budget in budgets for mode in INPUTS]
    features = {split: {key: [] for key in keys} for split in SPLITS}
    seen = {key: {kind: [] for kind in EVENT_KINDS} for key in keys}
    frames_shown = {key: [] for key in keys}
    spec = ClipSpec()
    for split in SPLITS:
        rows = read_split(root, split)
        for start in tqdm(range(0, len(rows), batch_size), desc=f"encoding {split}", unit="batch"):
            batch = [select_inputs(processors, row["path"], budgets, np.random.default_rng([data_seed, index]))
                     for index, row in enumerate(rows[start:start + batch_size], start)]
            for key in keys:
                features[split][key] += encode(encoder, processors[key[1]], [clip[key] for clip in batch])
            if split != "test":
                continue
            for index, clip in enumerate(batch, start):
                for key in keys:
                    frames_shown[key].append(len(np.unique(clip[key].positions[:, 0])))
                events = render_clip(clip_labels(rows[index]), spec, clip_seed(data_seed, split, index)).events
                for key in keys:
                    for event in events:
                        seen[key][event.kind].append(event_seen(event, clip[key]))
    return features, seen, frames_shown


def run(args) -> dict:
    encoder = load_encoder(args.model).requires_grad_(False)
    if args.random_init:  # the same architecture untrained: what the features owe to pretraining
        torch.manual_seed(0)
        encoder = OneVisionEncoderModel(encoder.config).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.data or Path(scratch)
        counts = {"train": args.num_train, "val": args.num_val, "test": args.num_test}
        write_dataset(root, counts, seed=args.data_seed)
        labels = {split: [clip_labels(row) for row in read_split(root, split)] for split in SPLITS}
        started = time.perf_counter()
        features, seen, frames_shown = features_and_coverage(encoder, root, args.data_seed, args.budgets,
                                                             args.batch_size)
        encoded = time.perf_counter()
    results = {"model": "random init of " * args.random_init + str(args.model or DEFAULT_ENCODER), "counts": counts,
               "data_seed": args.data_seed,
               "seeds": args.seeds, "epochs": args.epochs, "budgets": {}}
    for budget in args.budgets:
        table = results["budgets"][str(budget)] = {}
        for mode in INPUTS:
            key = (mode, budget)
            entry = table[mode] = {
                "tokens_per_clip": float(np.mean([len(tokens) for tokens in features["test"][key]])),
                "frames_per_clip": float(np.mean(frames_shown[key])),
                "events_seen": {kind: float(np.mean(flags)) for kind, flags in seen[key].items()},
                "test_accuracy": {},
                "best_val_accuracy": {},
            }
            for task, classes in TASKS.items():
                accuracies, best_val = [], []
                for seed in tqdm(args.seeds, desc=f"K={budget} {mode} {task}", unit="seed", leave=False):
                    config = ProbeConfig(epochs=args.epochs, batch_size=16, learning_rate=args.lr, seed=seed)
                    probe, history = train_probe(
                        features["train"][key], [row[task] for row in labels["train"]],
                        features["val"][key], [row[task] for row in labels["val"]], len(classes), config)
                    accuracies.append(evaluate_probe(probe, features["test"][key],
                                                     [row[task] for row in labels["test"]], 64))
                    best_val.append(max(history["accuracy"]))
                entry["test_accuracy"][task] = accuracies
                entry["best_val_accuracy"][task] = best_val
    results["seconds"] = {"selection_and_encoding": encoded - started, "probes": time.perf_counter() - encoded}
    return results


def markdown(results: dict) -> str:
    lines = []
    for budget, table in results["budgets"].items():
        lines += [f"K = {budget} tokens per clip:", "",
                  "| test accuracy, mean ± std over seeds | chance | " + " | ".join(INPUTS) + " |",
                  "|---|---|" + "---|" * len(INPUTS)]
        for task, classes in TASKS.items():
            cells = [f"{100 * np.mean(table[mode]['test_accuracy'][task]):.1f} ± "
                     f"{100 * np.std(table[mode]['test_accuracy'][task]):.1f}" for mode in INPUTS]
            lines.append(f"| {task} | {100 / len(classes):.0f} | " + " | ".join(cells) + " |")
        for kind, name in (("jump", "tile jumps shown (test set)"), ("flash", "flashes shown (test set)")):
            cells = [f"{100 * table[mode]['events_seen'][kind]:.0f} %" for mode in INPUTS]
            lines.append(f"| {name} | | " + " | ".join(cells) + " |")
        for name, field in (("tokens per clip", "tokens_per_clip"),
                            ("frames with a token, per clip", "frames_per_clip")):
            lines.append(f"| {name} | | " + " | ".join(f"{table[mode][field]:.0f}" for mode in INPUTS) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = list(results["budgets"])
    figure, axes = plt.subplots(1, len(budgets), figsize=(5 * len(budgets), 3.6), squeeze=False)
    width = 0.8 / len(INPUTS)
    for axis, budget in zip(axes[0], budgets):
        table = results["budgets"][budget]
        for offset, mode in enumerate(INPUTS):
            values = [100 * np.array(table[mode]["test_accuracy"][task]) for task in TASKS]
            axis.bar(np.arange(len(TASKS)) + (offset - 1) * width, [v.mean() for v in values], width,
                     yerr=[v.std() for v in values], label=mode, capsize=3)
        for position, classes in enumerate(TASKS.values()):
            axis.hlines(100 / len(classes), position - 0.45, position + 0.45, colors="grey", linestyles="dashed")
        axis.set_xticks(range(len(TASKS)), list(TASKS))
        axis.set_ylim(0, 100)
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(f"K = {budget} tokens per clip")
    axes[0][0].legend(loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="encoder directory (default: the bundled default model)")
    parser.add_argument("--random-init", action="store_true",
                        help="use the model's architecture at random initialisation (torch seed 0) instead")
    parser.add_argument("--budgets", type=int, nargs="+", default=[256, 512], help="tokens per clip")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="probe seeds")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-train", type=int, default=480)
    parser.add_argument("--num-val", type=int, default=160)
    parser.add_argument("--num-test", type=int, default=320)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="keep the generated clips here (default: a temporary folder)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per encoder call")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "equal_budget.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, args.out / "equal_budget.png")
    print(f"\nmodel {results['model']}; {results['counts']} clips (data seed {results['data_seed']}); probe seeds "
          f"{results['seeds']}, {results['epochs']} epochs; selection + encoding "
          f"{results['seconds']['selection_and_encoding']:.0f} s, probes {results['seconds']['probes']:.0f} s\n")
    print(markdown(results))
    print(f"results: {args.out / 'equal_budget.json'}, plot: {args.out / 'equal_budget.png'}")


if __name__ == "__main__":
    main()
