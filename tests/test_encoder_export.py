"""torch.export (static and dynamic shapes) and torch.compile(fullgraph=True): the encoder traces without
data-dependent Python control flow, and the traced program gives the eager outputs on other batches too."""

import pytest
import torch
from torch.export import Dim

from onevision_hf import OneVisionEncoderModel

from encoder_helpers import mixed_samples, pack_samples
from paths import TINY_ENCODER

ATOL = 1e-5
PACKED_DYNAMIC = {"pixel_values": {0: Dim.AUTO}, "patch_positions": {0: Dim.AUTO}, "cu_seqlens": {0: Dim.AUTO}}


@pytest.fixture(scope="module")
def model():
    return OneVisionEncoderModel.from_pretrained(TINY_ENCODER).eval()


def assert_same_outputs(traced, eager):
    torch.testing.assert_close(traced.last_hidden_state, eager.last_hidden_state, atol=ATOL, rtol=0)
    torch.testing.assert_close(traced.pooler_output, eager.pooler_output, atol=ATOL, rtol=0)


def test_export_static_upstream_image_batch_matches_eager(model):
    images = torch.randn(3, 3, 28, 42)
    with torch.no_grad():
        program = torch.export.export(model, (), {"pixel_values": images}, strict=False)
        assert_same_outputs(program.module()(pixel_values=images), model(pixel_values=images))


def test_export_dynamic_packed_batch_runs_batches_of_other_sizes_and_lengths(model):
    exported_on = pack_samples(mixed_samples()).to_kwargs()  # 3 samples of 15, 24 and 37 patches
    other = pack_samples(mixed_samples()[1:] + mixed_samples()[:1]).to_kwargs()  # same samples, other order
    fewer = pack_samples(mixed_samples()[:2]).to_kwargs()
    with torch.no_grad():
        program = torch.export.export(model, (), dict(exported_on), strict=False, dynamic_shapes=PACKED_DYNAMIC)
        for inputs in (exported_on, other, fewer):
            assert_same_outputs(program.module()(**inputs), model(**inputs))


@pytest.mark.parametrize("packed", [False, True], ids=["upstream", "packed"])
def test_compile_fullgraph_has_no_graph_break(model, packed):
    torch._dynamo.reset()
    inputs = pack_samples(mixed_samples()).to_kwargs() if packed else {"pixel_values": torch.randn(2, 3, 28, 42)}
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # fullgraph: any graph break raises
    with torch.no_grad():
        assert_same_outputs(compiled(**inputs, output_hidden_states=True), model(**inputs, output_hidden_states=True))
    explanation = torch._dynamo.explain(model)(**inputs)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
