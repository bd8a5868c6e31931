"""Multi-label partial-FC cluster discrimination: the OneVision-Encoder pretraining objective.

Every sample carries ``K`` pseudo-labels (its nearest k-means centres, `pseudo_labels`). Per step:

1. for each sample, ``num_label_slots`` (8) of its ``K`` labels are drawn at random;
2. for each slot, one softmax over the classes ``all positives of that slot in the global batch`` plus a random
   ``sample_rate`` (10 %) of the other classes (partial FC);
3. logits are cosines between the L2-normalised pooled embedding and the L2-normalised class centres; a
   non-target cosine above ``false_negative_threshold`` (0.75) is taken for a likely false negative and zeroed;
   the target gets a CosFace margin, ``scale * (cos - margin)`` (64, 0.3), the others ``scale * cos``;
4. the loss is the mean over slots of the mean over samples of ``-log softmax(target)``.

The gradient is the gradient of that logged mean, computed by autograd. (The released trainer's hand-written
backward returned each slot's full gradient and so back-propagated 8x its logged loss; that is fixed here.)

Model parallel over classes: with ``torch.distributed`` initialised, each process holds a contiguous slice of
the class-centre bank (`class_shard`); embeddings and labels are gathered from every process, each process
scores the gathered batch against its own slice, and the softmax normaliser and target logits are summed
across processes. Randomness (label slots, sampled classes) is drawn from ``(seed, step)`` over the *global*
batch and class index space, so one process and N processes give the same loss and gradients for the same
global batch (`tests/test_pretrain_cluster_loss.py`).
"""

import hashlib
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..errors import OneVisionInputError


@dataclass(frozen=True)
class ClassShard:
    """The classes ``[start, start + size)`` whose centres one process holds."""

    start: int
    size: int

    def owns(self, classes: torch.Tensor) -> torch.Tensor:
        return (classes >= self.start) & (classes < self.start + self.size)


def class_shard(num_classes: int, rank: int, world_size: int) -> ClassShard:
    """Contiguous near-equal split of the classes; the first ``num_classes % world_size`` ranks get one more."""
    base, extra = divmod(num_classes, world_size)
    return ClassShard(base * rank + min(rank, extra), base + int(rank < extra))


def derived_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from integer keys (e.g. seed, step, head), identical on every process."""
    digest = hashlib.blake2b(repr(tuple(int(key) for key in keys)).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def choose_label_slots(labels: torch.Tensor, num_slots: int, generator: torch.Generator) -> torch.Tensor:
    """(B, K) labels -> (B, num_slots): per sample, ``num_slots`` of its labels drawn without replacement."""
    noise = torch.rand(labels.shape, generator=generator)
    keep = noise.argsort(dim=1)[:, :num_slots].to(labels.device)
    return labels.gather(1, keep)


def sample_class_subset(positives: torch.Tensor, num_classes: int, sample_rate: float,
                        generator: torch.Generator) -> torch.Tensor:
    """Sorted global class ids: every positive plus a random ``sample_rate`` fraction of the other classes."""
    positives = positives.unique().cpu()
    num_negatives = int(sample_rate * (num_classes - positives.numel()))
    scores = torch.rand(num_classes, generator=generator)
    scores[positives] = -1.0  # never drawn as negatives
    negatives = scores.topk(num_negatives).indices
    return torch.cat((positives, negatives)).sort().values


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce sum of per-process partial values that every process turns into the same (replicated) loss.

    Each process back-propagates that same loss, so the gradient arriving here already is d(loss)/d(sum), which
    is also d(loss)/d(own part): backward is the identity (an all-reduce would count it world_size times).
    """

    @staticmethod
    def forward(ctx, partial: torch.Tensor, group) -> torch.Tensor:
        total = partial.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        return total

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        return grad_total, None


class _GatherForDataParallel(torch.autograd.Function):
    """All-gather of per-process rows (sizes may differ) whose backward feeds a data-parallel backbone.

    Backward sums the gradients every process computed for this process's rows (each process scored them
    against its own class shard) and multiplies by world_size, because DDP / FSDP then *average* the backbone
    gradients over processes; the result is the gradient of the global loss, as in a one-process run.
    """

    @staticmethod
    def forward(ctx, local: torch.Tensor, sizes: list[int], rank: int, group) -> torch.Tensor:
        padded = F.pad(local, (0, 0, 0, max(sizes) - local.shape[0]))
        gathered = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(gathered, padded.contiguous(), group=group)
        ctx.rows = (sum(sizes[:rank]), local.shape[0], len(sizes))
        ctx.group = group
        return torch.cat([rows[:size] for rows, size in zip(gathered, sizes)])

    @staticmethod
    def backward(ctx, grad_all: torch.Tensor):
        offset, size, world_size = ctx.rows
        grad_all = grad_all.contiguous().clone()
        dist.all_reduce(grad_all, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad_all[offset:offset + size] * world_size, None, None, None


def _gather_rows(local: torch.Tensor, sizes: list[int], group) -> torch.Tensor:
    """All-gather rows without autograd (labels)."""
    padded = F.pad(local, (0, 0, 0, max(sizes) - local.shape[0]))
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded.contiguous(), group=group)
    return torch.cat([rows[:size] for rows, size in zip(gathered, sizes)])


def _is_distributed(group) -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


class ClusterDiscriminationLoss(nn.Module):
    """Multi-label partial-FC margin softmax over a (possibly sharded) bank of learnable class centres.

    Args:
        num_classes: size of the label space (number of k-means centres).
        embedding_size: width of the pooled embedding (the encoder's ``hidden_size``).
        sample_rate: fraction of the non-positive classes drawn as negatives for each label slot.
        margin, scale: CosFace margin on the target cosine and logit scale.
        false_negative_threshold: non-target cosines above this are zeroed before the margin.
        num_label_slots: labels drawn per sample per step; every sample needs at least that many labels.
        seed: with the ``step`` passed to `forward`, fixes the label slots and sampled classes.
        process_group: the processes that share the class bank (default: the world, when initialised).

    Parameters: ``class_centers`` (this process's shard size, embedding_size), initialised N(0, 0.01) as released.
    """

    def __init__(self, num_classes: int, embedding_size: int, sample_rate: float = 0.1, margin: float = 0.3,
                 scale: float = 64.0, false_negative_threshold: float = 0.75, num_label_slots: int = 8,
                 seed: int = 0, process_group=None):
        super().__init__()
        if num_classes < 1 or embedding_size < 1 or num_label_slots < 1:
            raise OneVisionInputError(
                f"num_classes ({num_classes}), embedding_size ({embedding_size}) and num_label_slots "
                f"({num_label_slots}) must be positive."
            )
        if not 0.0 <= sample_rate <= 1.0:
            raise OneVisionInputError(f"sample_rate must lie in [0, 1], got {sample_rate}.")
        self.num_classes = num_classes
        self.sample_rate = sample_rate
        self.margin = margin
        self.scale = scale
        self.false_negative_threshold = false_negative_threshold
        self.num_label_slots = num_label_slots
        self.seed = seed
        self.process_group = process_group
        distributed = _is_distributed(process_group)
        rank = dist.get_rank(process_group) if distributed else 0
        world_size = dist.get_world_size(process_group) if distributed else 1
        self.shard = class_shard(num_classes, rank, world_size)
        self.class_centers = nn.Parameter(torch.empty(self.shard.size, embedding_size))
        self.reset_class_centers()

    @torch.no_grad()
    def reset_class_centers(self, chunk: int = 65536) -> None:
        """N(0, 0.01) centres (as released), drawn per chunk of global class ids from ``(seed, chunk start)``:
        the same bank whatever the number of processes, and each process draws only the chunks it holds."""
        start, end = self.shard.start, self.shard.start + self.shard.size
        for chunk_start in range(start - start % chunk, end, chunk):
            rows = min(chunk, self.num_classes - chunk_start)
            generator = derived_generator(self.seed, chunk_start)
            values = torch.normal(0.0, 0.01, (rows, self.class_centers.shape[1]), generator=generator)
            low, high = max(start, chunk_start), min(end, chunk_start + rows)
            self.class_centers[low - start:high - start] = values[low - chunk_start:high - chunk_start]

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, shard=[{self.shard.start}, {self.shard.start + self.shard.size}), "
                f"sample_rate={self.sample_rate}, margin={self.margin}, scale={self.scale}, "
                f"false_negative_threshold={self.false_negative_threshold}, num_label_slots={self.num_label_slots}")

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        """(b, D) pooled embeddings and (b, K) int labels of this process's samples -> scalar global loss."""
        self._check_inputs(embeddings, labels)
        embeddings = embeddings.float()
        labels = labels.to(device=embeddings.device, dtype=torch.long)
        if _is_distributed(self.process_group):
            group = self.process_group
            sizes = [torch.zeros(1, dtype=torch.long) for _ in range(dist.get_world_size(group))]
            dist.all_gather(sizes, torch.tensor([embeddings.shape[0]]), group=group)
            sizes = [int(size) for size in sizes]
            embeddings = _GatherForDataParallel.apply(embeddings, sizes, dist.get_rank(group), group)
            labels = _gather_rows(labels, sizes, group)
        generator = derived_generator(self.seed, step)
        slot_labels = choose_label_slots(labels, self.num_label_slots, generator)  # (B, S) global class ids
        normalized = F.normalize(embeddings, dim=1)
        slot_losses = [self._slot_loss(normalized, slot_labels[:, slot], generator)
                       for slot in range(self.num_label_slots)]
        return torch.stack(slot_losses).mean()

    def _slot_loss(self, normalized: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Mean over the global batch of -log softmax(target) for one label slot, (B, D) x (B,) -> scalar."""
        subset = sample_class_subset(targets, self.num_classes, self.sample_rate, generator).to(targets.device)
        local_classes = subset[self.shard.owns(subset)] - self.shard.start  # sorted ids into this shard
        centers = F.normalize(self.class_centers[local_classes], dim=1)
        cosine = (normalized @ centers.T).clamp(-1.0, 1.0)  # (B, S_local)

        owned = self.shard.owns(targets)
        rows = owned.nonzero().squeeze(1)
        columns = torch.searchsorted(local_classes, targets[rows] - self.shard.start)
        is_target = torch.zeros_like(cosine, dtype=torch.bool)
        is_target[rows, columns] = True
        false_negative = (cosine.detach() > self.false_negative_threshold) & ~is_target
        cosine = cosine.masked_fill(false_negative, 0.0)
        logits = self.scale * (cosine - self.margin * is_target)

        with torch.no_grad():  # a constant shift for numerical stability, shared by all processes
            row_max = logits.new_full((logits.shape[0],), float("-inf"))
            if logits.shape[1]:
                row_max = logits.max(dim=1).values
            if _is_distributed(self.process_group):
                dist.all_reduce(row_max, op=dist.ReduceOp.MAX, group=self.process_group)
        shifted = logits - row_max[:, None]
        sum_exp = shifted.exp().sum(dim=1)  # (B,) this shard's part of the normaliser
        target_logit = (shifted * is_target).sum(dim=1)  # (B,) non-zero only where this shard owns the target
        if _is_distributed(self.process_group):
            sum_exp = _SumOverProcesses.apply(sum_exp, self.process_group)
            target_logit = _SumOverProcesses.apply(target_logit, self.process_group)
        return (sum_exp.log() - target_logit).mean()

    def _check_inputs(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        if embeddings.dim() != 2 or embeddings.shape[1] != self.class_centers.shape[1]:
            raise OneVisionInputError(
                f"embeddings must be (B, {self.class_centers.shape[1]}), got shape {tuple(embeddings.shape)}."
            )
        if labels.dim() != 2 or labels.shape[0] != embeddings.shape[0]:
            raise OneVisionInputError(
                f"labels must be (B, K) with B = {embeddings.shape[0]} (one row of pseudo-labels per embedding), "
                f"got shape {tuple(labels.shape)}."
            )
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise OneVisionInputError(f"labels must be an integer tensor, got dtype {labels.dtype}.")
        if labels.shape[1] < self.num_label_slots:
            raise OneVisionInputError(
                f"each sample needs at least num_label_slots = {self.num_label_slots} labels, got {labels.shape[1]}; "
                "write more pseudo-labels per sample (top-k) or lower num_label_slots."
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise OneVisionInputError(
                f"labels must lie in [0, {self.num_classes}), got values in [{int(labels.min())}, {int(labels.max())}]."
            )


def clip_sharded_grad_norm_(parameters, max_norm: float, process_group=None) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` over parameters sharded across processes (the class banks): the norm is
    that of the whole bank, so every process scales by the same factor and the result does not depend on the
    number of processes. Returns the total norm."""
    parameters = list(parameters)
    grads = [parameter.grad for parameter in parameters if parameter.grad is not None]
    squared = torch.zeros((), device=parameters[0].device if parameters else None)
    if grads:
        squared = torch.stack([grad.detach().float().pow(2).sum() for grad in grads]).sum()
    if _is_distributed(process_group):
        dist.all_reduce(squared, op=dist.ReduceOp.SUM, group=process_group)
    total_norm = squared.sqrt()
    scale = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
    for grad in grads:
        grad.mul_(scale.to(grad.device, grad.dtype))
    return total_norm
