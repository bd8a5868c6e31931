"""The projectors: mlp2x_gelu per patch, and the 2x2 spatial merge that reads positions, not a dense layout."""

import pytest
import torch

from onevision_hf import OneVisionInputError
from onevision_hf.modeling.packing import concat_packed
from onevision_hf.modeling.projectors import (
    OneVisionMlpProjector,
    OneVisionSpatialMergeProjector,
    num_visual_tokens,
    token_offsets,
)

from llava_helpers import codec_like_positions, random_image, sparse_video

D_VISION, D_TEXT = 8, 16


def merge_projector(seed=0):
    torch.manual_seed(seed)
    projector = OneVisionSpatialMergeProjector(D_VISION, D_TEXT, "gelu", 1e-6)
    with torch.no_grad():
        projector.ln_q.weight.uniform_(0.5, 1.5)
        projector.ln_q.bias.normal_()
    return projector


def released_spatial_merge(projector, features, grid_h, grid_w):
    """The released SpatialMergeProjector on one dense image: LayerNorm, reshape 2x2 blocks, MLP."""
    x = projector.ln_q(features).view(1, grid_h // 2, 2, grid_w // 2, 2, D_VISION)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(1, -1, 4 * D_VISION)  # (1, G, 4*D)
    return projector.mlp(x)[0]


def test_spatial_merge_of_dense_even_grid_equals_the_released_reshape_with_four_times_fewer_tokens():
    projector = merge_projector()
    image = random_image(4, 6)
    features = torch.randn(24, D_VISION)
    tokens, offsets = projector(features, image.patch_positions, image.cu_seqlens)
    assert tokens.shape == (6, D_TEXT) and offsets.tolist() == [0, 6]
    torch.testing.assert_close(tokens, released_spatial_merge(projector, features, 4, 6))


def test_spatial_merge_zero_fills_missing_block_members_and_sorts_blocks_by_t_h_w():
    projector = merge_projector()
    positions = [(1, 2, 2), (0, 0, 3), (0, 1, 1), (0, 0, 0)]  # blocks (1,1,1) (0,0,1) (0,0,0) (0,0,0)
    video = sparse_video(positions)
    features = torch.randn(4, D_VISION)
    tokens, offsets = projector(features, video.patch_positions, video.cu_seqlens)

    normed = projector.ln_q(features)
    zero = torch.zeros(D_VISION)
    expected_blocks = [  # sorted by (t, h // 2, w // 2); slots (0,0) (0,1) (1,0) (1,1)
        torch.cat([normed[3], zero, zero, normed[2]]),  # (0, 0, 0): (0,0,0) in slot 0, (0,1,1) in slot 3
        torch.cat([zero, normed[1], zero, zero]),  # (0, 0, 1): (0,0,3) in slot 1
        torch.cat([normed[0], zero, zero, zero]),  # (1, 1, 1): (1,2,2) in slot 0
    ]
    assert offsets.tolist() == [0, 3]
    torch.testing.assert_close(tokens, projector.mlp(torch.stack(expected_blocks)))


def test_spatial_merge_output_does_not_depend_on_patch_order():
    projector = merge_projector()
    video = sparse_video(codec_like_positions(frames=3, grid=6))
    features = torch.randn(video.pixel_values.shape[0], D_VISION)
    order = torch.randperm(features.shape[0], generator=torch.Generator().manual_seed(1))
    tokens, _ = projector(features, video.patch_positions, video.cu_seqlens)
    shuffled, _ = projector(features[order], video.patch_positions[order], video.cu_seqlens)
    torch.testing.assert_close(shuffled, tokens)


def test_spatial_merge_cuts_video_selected_in_2x2_units_by_four():
    blocks = [(0, 0, 0), (0, 1, 2), (1, 2, 1), (2, 0, 2)]  # (t, h // 2, w // 2) of selected 2x2 units
    positions = [(t, 2 * bh + dh, 2 * bw + dw) for t, bh, bw in blocks for dh in (0, 1) for dw in (0, 1)]
    video = sparse_video(positions)
    assert num_visual_tokens(video.patch_positions, video.cu_seqlens, "spatial_merge").tolist() == [4]
    assert num_visual_tokens(video.patch_positions, video.cu_seqlens, "mlp2x_gelu").tolist() == [16]


def test_samples_of_a_packed_batch_never_share_a_block():
    projector = merge_projector()
    first, second = random_image(2, 2, seed=0), random_image(2, 2, seed=1)
    batch = concat_packed([first, second])
    features = torch.randn(8, D_VISION)
    tokens, offsets = projector(features, batch.patch_positions, batch.cu_seqlens)
    assert offsets.tolist() == [0, 1, 2]
    torch.testing.assert_close(tokens[1:], projector(features[4:], second.patch_positions, second.cu_seqlens)[0])


@pytest.mark.parametrize("projector_type", ["mlp2x_gelu", "spatial_merge"])
def test_num_visual_tokens_is_what_the_projector_emits(projector_type):
    torch.manual_seed(0)
    projector = (merge_projector() if projector_type == "spatial_merge"
                 else OneVisionMlpProjector(D_VISION, D_TEXT, "gelu"))
    batch = concat_packed([random_image(3, 5), sparse_video(codec_like_positions(4, 5)), random_image(2, 2)])
    features = torch.randn(batch.pixel_values.shape[0], D_VISION)
    tokens, offsets = projector(features, batch.patch_positions, batch.cu_seqlens)
    counts = num_visual_tokens(batch.patch_positions, batch.cu_seqlens, projector_type)
    assert offsets.tolist() == token_offsets(counts).tolist()
    assert tokens.shape[0] == int(counts.sum())


def test_mlp_projector_is_linear_gelu_linear_per_patch():
    torch.manual_seed(0)
    projector = OneVisionMlpProjector(D_VISION, D_TEXT, "gelu")
    image = random_image(2, 3)
    features = torch.randn(6, D_VISION)
    tokens, offsets = projector(features, image.patch_positions, image.cu_seqlens)
    linear_1, linear_2 = projector.mlp.linear_1, projector.mlp.linear_2
    expected = linear_2(torch.nn.functional.gelu(linear_1(features)))
    torch.testing.assert_close(tokens, expected)
    assert offsets.tolist() == [0, 6]


def test_two_patches_at_one_position_raise():
    video = sparse_video([(0, 0, 0), (0, 1, 1), (0, 0, 0)])
    with pytest.raises(OneVisionInputError, match=r"same \(t, h, w\) position"):
        num_visual_tokens(video.patch_positions, video.cu_seqlens, "spatial_merge")


def test_unknown_projector_type_raises():
    image = random_image(2, 2)
    with pytest.raises(OneVisionInputError, match="projector_type"):
        num_visual_tokens(image.patch_positions, image.cu_seqlens, "mlp3x_gelu")
