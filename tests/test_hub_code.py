"""Sharing the hub way: ``register_for_auto_class`` + ``save_pretrained`` writes a folder with the code, which
transformers loads with ``trust_remote_code=True`` in a process where `onevision_hf` cannot be imported, and which
gives the same outputs."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from onevision_hf import (
    OneVisionEncoderModel,
    OneVisionImageProcessor,
    OneVisionLlavaForConditionalGeneration,
    OneVisionLlavaProcessor,
    OneVisionVideoProcessor,
)
from onevision_hf.hub_code import flat_module_sources

from llava_helpers import TOKENIZER, tiny_llava
from paths import TINY_ENCODER

REGISTERED = {
    OneVisionEncoderModel: "AutoModel",
    OneVisionImageProcessor: "AutoImageProcessor",
    OneVisionVideoProcessor: "AutoVideoProcessor",
    OneVisionLlavaForConditionalGeneration: "AutoModelForImageTextToText",
    OneVisionLlavaProcessor: "AutoProcessor",
}

# Runs in a fresh interpreter: `onevision_hf` refused by an import hook, the checkout's src/ off the path.
HIDDEN_PACKAGE_SCRIPT = textwrap.dedent("""
    import sys

    class RefuseOneVision:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "onevision_hf":
                raise ImportError("onevision_hf is hidden in this process")

    sys.meta_path.insert(0, RefuseOneVision())
    sys.path = [entry for entry in sys.path if not entry.rstrip("/").endswith("src")]
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoImageProcessor, AutoModel, AutoModelForImageTextToText, AutoProcessor
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    encoder_dir, llava_dir, inputs_file, outputs_file = sys.argv[1:]
    inputs = load_file(inputs_file)
    image, frames = inputs["image"].numpy(), inputs["frames"].numpy()
    outputs = {}
    with torch.no_grad():
        encoder = AutoModel.from_pretrained(encoder_dir, trust_remote_code=True).eval()
        images = AutoImageProcessor.from_pretrained(encoder_dir, trust_remote_code=True)(image, return_tensors="pt")
        videos = AutoVideoProcessor.from_pretrained(encoder_dir, trust_remote_code=True)(frames, return_tensors="pt")
        outputs["image_rows"], outputs["video_rows"] = images["pixel_values"], videos["pixel_values"]
        packed = {k: images[k] for k in ("pixel_values", "patch_positions", "cu_seqlens")}
        outputs["image_pooled"] = encoder(**packed).pooler_output
        outputs["video_pooled"] = encoder(**videos).pooler_output
        model = AutoModelForImageTextToText.from_pretrained(llava_dir, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained(llava_dir, trust_remote_code=True)
        batch = processor(text="<image> and <video>: what?", images=image, videos=frames, return_tensors="pt")
        outputs["input_ids"], outputs["logits"] = batch["input_ids"], model(**batch).logits
    assert not any(name.split(".")[0] == "onevision_hf" for name in sys.modules)
    save_file({k: v.contiguous() for k, v in outputs.items()}, outputs_file)
""")


@pytest.fixture
def registered():
    for cls, auto_class in REGISTERED.items():
        cls.register_for_auto_class(auto_class)
    yield
    for cls in REGISTERED:
        del cls._auto_class


def test_a_saved_folder_runs_with_trust_remote_code_where_the_package_cannot_be_imported(tmp_path, registered):
    encoder_dir, llava_dir = tmp_path / "encoder", tmp_path / "llava"
    encoder = OneVisionEncoderModel.from_pretrained(TINY_ENCODER).eval()
    image_processor = OneVisionImageProcessor(resize_mode="native", max_pixels=112 * 112)
    video_processor = OneVisionVideoProcessor(num_frames=8, budget=0.25, max_pixels=56 * 56)
    for saved in (encoder, image_processor, video_processor):
        saved.save_pretrained(encoder_dir)
    model = tiny_llava().eval()
    processor = OneVisionLlavaProcessor(image_processor, TOKENIZER, video_processor)
    model.save_pretrained(llava_dir)
    processor.save_pretrained(llava_dir)
    assert json.loads((encoder_dir / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_onevision_encoder.OneVisionEncoderConfig",
        "AutoModel": "modeling_onevision_encoder.OneVisionEncoderModel",
    }
    flat = re.compile(r"^\s*from \.\.", re.MULTILINE)  # only single-dot imports of sibling files
    assert not any(flat.search(path.read_text()) for path in llava_dir.glob("*.py"))

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 98, 3), dtype=np.uint8)
    frames = rng.integers(0, 256, (8, 48, 64, 3), dtype=np.uint8)
    save_file({"image": torch.from_numpy(image), "frames": torch.from_numpy(frames)}, tmp_path / "inputs.safetensors")
    result = subprocess.run(
        [sys.executable, "-c", HIDDEN_PACKAGE_SCRIPT, str(encoder_dir), str(llava_dir),
         str(tmp_path / "inputs.safetensors"), str(tmp_path / "outputs.safetensors")],
        capture_output=True, text=True, timeout=240,
        env={"HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    hidden = load_file(tmp_path / "outputs.safetensors")

    with torch.no_grad():
        images, videos = image_processor(image, return_tensors="pt"), video_processor(frames, return_tensors="pt")
        batch = processor(text="<image> and <video>: what?", images=image, videos=frames, return_tensors="pt")
        expected = {
            "image_rows": images["pixel_values"], "video_rows": videos["pixel_values"],
            "image_pooled": encoder(**{k: images[k] for k in ("pixel_values", "patch_positions", "cu_seqlens")})
            .pooler_output,
            "video_pooled": encoder(**videos).pooler_output,
            "input_ids": batch["input_ids"], "logits": model(**batch).logits,
        }
    assert set(hidden) == set(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(hidden[name], tensor, atol=1e-5, rtol=0, msg=name)


def test_the_code_files_are_generated_from_the_package_modules():
    sources = flat_module_sources(["onevision_hf.modeling.modeling_onevision_encoder"])
    assert set(sources) == {"modeling_onevision_encoder.py", "configuration_onevision_encoder.py", "errors.py",
                            "hub_code.py", "limits.py", "packed_attention.py", "packing.py", "rotary.py"}
    assert "from .errors import OneVisionInputError" in sources["packing.py"]  # was `from ..errors import ...`
    assert sources["rotary.py"].startswith("# Generated by onevision_hf")
