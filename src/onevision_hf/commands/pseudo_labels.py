"""``onevision-hf pseudo-labels DATASET --output OUT``: the top-k k-means centres of every sample as labels.

Features are the pooled embeddings of a frozen encoder (``--model``, a `from_pretrained` directory), or any
teacher's (N, D) features computed elsewhere (``--features FEATURES.npy``, rows in dataset order). k-means runs
with faiss when installed, otherwise scikit-learn's MiniBatchKMeans. Writes the dataset with a ``labels``
column (nearest centre first) to OUT and the centroids to OUT/../<OUT name>-centroids.npy.
"""

import json
from pathlib import Path


def add_parser(subparsers):
    parser = subparsers.add_parser("pseudo-labels", help="k-means pseudo-labels for pretraining", description=__doc__)
    parser.add_argument("dataset", type=Path,
                        help="a `datasets` dir (save_to_disk) with image, video or selection rows")
    parser.add_argument("--output", type=Path, required=True, help="where to save the labelled dataset")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="frozen encoder directory whose pooled output is the feature")
    source.add_argument("--features", type=Path, help="precomputed (N, D) float features, .npy")
    parser.add_argument("--num-clusters", type=int, required=True, help="k-means centres (the label space)")
    parser.add_argument("--top-k", type=int, default=10, help="labels per sample (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=20, help="k-means iterations (default: %(default)s)")
    parser.add_argument("--backend", choices=("auto", "faiss", "sklearn"), default="auto",
                        help="k-means library (default: faiss when installed)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per encoder call (default: %(default)s)")
    parser.add_argument("--image-resize", default="shorter-crop:224", help="placement of image rows")
    parser.add_argument("--video-processor", type=json.loads, default={},
                        help="OneVisionVideoProcessor parameters for video rows, as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args):
    import numpy as np
    import torch

    from ..errors import OneVisionInputError
    from ..modeling import OneVisionEncoderModel
    from ..training.pretrain_data import SampleReader
    from ..training.pseudo_labels import extract_features, fit_kmeans, nearest_centroids, write_pseudo_labels

    if args.features is not None:
        if not args.features.is_file():
            raise OneVisionInputError(f"features file {str(args.features)!r} does not exist.")
        features = np.load(args.features, allow_pickle=False)
    else:
        model = OneVisionEncoderModel.from_pretrained(args.model)
        model.requires_grad_(False)
        reader = SampleReader(str(args.dataset), model.config.patch_size, args.image_resize, args.video_processor)
        with torch.inference_mode():
            features = extract_features(model, reader, args.batch_size)
    centroids = fit_kmeans(features, args.num_clusters, args.iterations, args.seed, args.backend)
    labels = nearest_centroids(features, centroids, args.top_k)
    write_pseudo_labels(args.dataset, labels, args.output)
    centroids_path = args.output.parent / f"{args.output.name}-centroids.npy"
    np.save(centroids_path, centroids)
    print(f"{len(labels)} samples -> {args.top_k} of {args.num_clusters} clusters each: {args.output} "
          f"(centroids: {centroids_path})")
    return 0
