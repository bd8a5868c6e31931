"""The cluster-discrimination loss: a slow, obviously-correct reference, and 1 process == 2 processes (gloo)."""

import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from onevision_hf import OneVisionInputError
from onevision_hf.training.cluster_loss import (
    ClusterDiscriminationLoss,
    choose_label_slots,
    class_shard,
    derived_generator,
    sample_class_subset,
)

NUM_CLASSES, DIM, NUM_LABELS = 23, 8, 5
LOSS_ARGS = dict(sample_rate=0.3, margin=0.3, scale=64.0, false_negative_threshold=0.75, num_label_slots=3, seed=7)


def reference_loss(embeddings, centers, labels, step, sample_rate, margin, scale, false_negative_threshold,
                   num_label_slots, seed):
    """One sample, one slot, one class at a time, straight from the definition."""
    generator = derived_generator(seed, step)
    slots = choose_label_slots(labels, num_label_slots, generator)
    slot_losses = []
    for slot in range(num_label_slots):
        subset = sample_class_subset(slots[:, slot], NUM_CLASSES, sample_rate, generator).tolist()
        sample_losses = []
        for i in range(embeddings.shape[0]):
            target = int(slots[i, slot])
            e = embeddings[i] / embeddings[i].norm()
            logits = []
            for c in subset:
                cosine = torch.dot(e, centers[c] / centers[c].norm()).clamp(-1, 1)
                if c == target:
                    logits.append(scale * (cosine - margin))
                elif cosine > false_negative_threshold:  # likely the same concept: a zero logit, no gradient
                    logits.append(cosine * 0.0)
                else:
                    logits.append(scale * cosine)
            sample_losses.append(-torch.log_softmax(torch.stack(logits), 0)[subset.index(target)])
        slot_losses.append(torch.stack(sample_losses).mean())
    return torch.stack(slot_losses).mean()


def make_inputs(batch=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(NUM_CLASSES, DIM, generator=generator)
    labels = torch.stack([torch.randperm(NUM_CLASSES, generator=generator)[:NUM_LABELS] for _ in range(batch)])
    # embeddings near their first label's centre, so some non-target cosines exceed the 0.75 threshold
    embeddings = centers[labels[:, 0]] + 0.6 * torch.randn(batch, DIM, generator=generator)
    centers[labels[:, 1]] = embeddings + 0.3 * torch.randn(batch, DIM, generator=generator)
    return embeddings, centers, labels


def test_loss_and_gradients_match_slow_reference_including_false_negative_filter():
    embeddings, centers, labels = make_inputs()
    loss_fn = ClusterDiscriminationLoss(NUM_CLASSES, DIM, **LOSS_ARGS)
    with torch.no_grad():
        loss_fn.class_centers.copy_(centers)
    fast_embeddings = embeddings.clone().requires_grad_(True)
    loss = loss_fn(fast_embeddings, labels, step=3)
    loss.backward()

    ref_embeddings = embeddings.clone().requires_grad_(True)
    ref_centers = centers.clone().requires_grad_(True)
    expected = reference_loss(ref_embeddings, ref_centers, labels, step=3, **LOSS_ARGS)
    expected.backward()

    normalized = torch.nn.functional.normalize(embeddings) @ torch.nn.functional.normalize(centers).T
    assert (normalized > 0.75).sum() > embeddings.shape[0], "the inputs must exercise the false-negative filter"
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    # the gradient is the gradient of the logged mean (the released backward was 8x it)
    torch.testing.assert_close(fast_embeddings.grad, ref_embeddings.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss_fn.class_centers.grad, ref_centers.grad, rtol=1e-4, atol=1e-6)


def test_each_softmax_holds_all_positives_and_the_sampled_fraction_of_negatives():
    positives = torch.tensor([3, 3, 9, 17])
    subset = sample_class_subset(positives, 1000, 0.1, derived_generator(0, 0))
    assert set(positives.tolist()) <= set(subset.tolist())
    assert len(subset) == 3 + int(0.1 * (1000 - 3))
    assert torch.equal(subset, subset.sort().values) and len(subset.unique()) == len(subset)
    again = sample_class_subset(positives, 1000, 0.1, derived_generator(0, 0))
    other_step = sample_class_subset(positives, 1000, 0.1, derived_generator(0, 1))
    assert torch.equal(subset, again) and not torch.equal(subset, other_step)


def test_label_slots_are_distinct_labels_of_each_sample():
    labels = torch.arange(40).view(4, 10)
    slots = choose_label_slots(labels, 8, derived_generator(1, 2))
    for row, chosen in zip(labels, slots):
        assert len(set(chosen.tolist())) == 8 and set(chosen.tolist()) <= set(row.tolist())


def test_class_shards_cover_every_class_once():
    shards = [class_shard(10, rank, 3) for rank in range(3)]
    assert [(s.start, s.size) for s in shards] == [(0, 4), (4, 3), (7, 3)]


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.zeros(8, 2, dtype=torch.long), "at least num_label_slots = 3 labels"),
        (torch.full((8, 5), NUM_CLASSES), "labels must lie in"),
        (torch.zeros(8, 5), "integer tensor"),
        (torch.zeros(7, 5, dtype=torch.long), "one row of pseudo-labels per embedding"),
    ],
)
def test_bad_labels_raise_a_typed_error_naming_the_problem(labels, message):
    loss_fn = ClusterDiscriminationLoss(NUM_CLASSES, DIM, **LOSS_ARGS)
    with pytest.raises(OneVisionInputError, match=message):
        loss_fn(torch.randn(8, DIM), labels, step=0)


# --- one process == two processes (class bank sharded, backbone under DDP) --------------------------------

GLOBAL_BATCH, RANK_SIZES, INPUT_DIM = 8, (5, 3), 6


def _global_problem():
    generator = torch.Generator().manual_seed(11)
    inputs = torch.randn(GLOBAL_BATCH, INPUT_DIM, generator=generator)
    labels = torch.stack([torch.randperm(NUM_CLASSES, generator=generator)[:NUM_LABELS] for _ in range(GLOBAL_BATCH)])
    centers = torch.randn(NUM_CLASSES, DIM, generator=generator)
    return inputs, labels, centers


def _backbone():
    torch.manual_seed(0)
    return torch.nn.Linear(INPUT_DIM, DIM)


def _run(rank, world_size, rows, out_path):
    inputs, labels, centers = _global_problem()
    backbone = _backbone()
    if world_size > 1:
        backbone = torch.nn.parallel.DistributedDataParallel(backbone)
    loss_fn = ClusterDiscriminationLoss(NUM_CLASSES, DIM, **LOSS_ARGS)
    shard = loss_fn.shard
    with torch.no_grad():
        loss_fn.class_centers.copy_(centers[shard.start:shard.start + shard.size])
    losses = []
    for step in range(2):
        loss = loss_fn(backbone(inputs[rows]), labels[rows], step=step)
        loss.backward()
        losses.append(loss.detach())
    module = backbone.module if world_size > 1 else backbone
    save_file({"loss": torch.stack(losses), "backbone_weight_grad": module.weight.grad,
               "backbone_bias_grad": module.bias.grad, "centers_grad": loss_fn.class_centers.grad.contiguous(),
               "shard": torch.tensor([shard.start, shard.size])}, out_path)


def _distributed_worker(rank, world_size, port, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        start = sum(RANK_SIZES[:rank])
        _run(rank, world_size, slice(start, start + RANK_SIZES[rank]), f"{out_dir}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(120)
def test_two_processes_with_sharded_class_bank_equal_one_process(tmp_path):
    _run(0, 1, slice(0, GLOBAL_BATCH), f"{tmp_path}/single.safetensors")
    mp.spawn(_distributed_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)

    single = load_file(f"{tmp_path}/single.safetensors")
    for rank in range(2):
        part = load_file(f"{tmp_path}/rank{rank}.safetensors")
        start, size = part["shard"].tolist()
        torch.testing.assert_close(part["loss"], single["loss"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(part["backbone_weight_grad"], single["backbone_weight_grad"], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(part["backbone_bias_grad"], single["backbone_bias_grad"], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(part["centers_grad"], single["centers_grad"][start:start + size],
                                   rtol=1e-4, atol=1e-6)
