"""OneVisionLlavaProcessor: placeholders expand to exactly the tokens the model scatters, for images and videos."""

import numpy as np
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models
from transformers import AutoProcessor, PreTrainedTokenizerFast

from onevision_hf import OneVisionInputError, OneVisionLlavaProcessor
from onevision_hf.modeling.projectors import num_visual_tokens

from llava_helpers import TOKENIZER, tiny_llava
from paths import MEDIA

VIDEO = str(MEDIA / "carphone-176x144-h264.mp4")
SMALL = dict(resize_mode="native", num_frames=8)  # keep images at their size (patch multiples), 8 video frames


def image(height, width, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def processor_for(model):
    return OneVisionLlavaProcessor.for_model_config(model.config, TOKENIZER)


@pytest.mark.parametrize("projector_type", ["mlp2x_gelu", "spatial_merge"])
def test_each_placeholder_expands_to_the_tokens_its_sample_yields(projector_type):
    processor = processor_for(tiny_llava(projector_type=projector_type))
    texts = ["<image> and <image>: which is larger?", "<video> What happens?", "No picture here."]
    inputs = processor(text=texts, images=[image(56, 84), image(28, 28, seed=1)], videos=[VIDEO],
                       padding=True, return_tensors="pt", **SMALL)

    image_tokens = num_visual_tokens(inputs["patch_positions"], inputs["cu_seqlens"], projector_type)
    video_tokens = num_visual_tokens(inputs["video_patch_positions"], inputs["video_cu_seqlens"], projector_type)
    expected_images = [4 * 6, 2 * 2] if projector_type == "mlp2x_gelu" else [2 * 3, 1]
    assert image_tokens.tolist() == expected_images
    assert (inputs["input_ids"] == processor.image_token_id).sum(-1).tolist() == [sum(expected_images), 0, 0]
    assert (inputs["input_ids"] == processor.video_token_id).sum(-1).tolist() == [0, int(video_tokens.sum()), 0]
    if projector_type == "spatial_merge":  # videos are selected in whole 2x2 blocks: exactly a quarter of the patches
        assert int(video_tokens.sum()) * 4 == inputs["pixel_values_videos"].shape[0]
    assert "image_grid_hw" not in inputs


def test_processor_output_drives_forward_and_generate():
    model = tiny_llava()
    processor = processor_for(model)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe the video."}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\n<video>Describe the video.<|im_end|>\n<|im_start|>assistant\n"
    inputs = processor(text=[prompt, "<image> What is shown?"], videos=VIDEO, images=image(42, 56),
                       padding=True, padding_side="left", return_tensors="pt", **SMALL)
    with torch.no_grad():
        logits = model(**inputs).logits
        generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert logits.shape[:2] == inputs["input_ids"].shape
    assert generated.shape == (2, inputs["input_ids"].shape[1] + 3)
    assert len(processor.post_process_image_text_to_text(generated[:, -3:])) == 2


def test_placeholders_that_disagree_with_the_visuals_raise():
    processor = processor_for(tiny_llava())
    with pytest.raises(OneVisionInputError, match=r"2 <image> placeholder\(s\) but 1 image\(s\)"):
        processor(text="<image> vs <image>", images=image(28, 28))
    with pytest.raises(OneVisionInputError, match=r"0 <video> placeholder\(s\) but 1 video\(s\)"):
        processor(text="What happens?", videos=VIDEO)
    with pytest.raises(OneVisionInputError, match=r"1 <image> placeholder\(s\) but 0 image\(s\)"):
        processor(text="<image> What is it?")
    with pytest.raises(OneVisionInputError, match="needs text"):
        processor(images=image(28, 28))


def test_tokenizer_without_placeholder_tokens_is_refused():
    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "?": 1}, unk_token="?")))
    processor = processor_for(tiny_llava())
    with pytest.raises(OneVisionInputError, match="no '<image>' token"):
        OneVisionLlavaProcessor(processor.image_processor, bare, processor.video_processor)


def test_save_and_reload_through_auto_processor(tmp_path):
    model = tiny_llava(projector_type="spatial_merge")
    processor = processor_for(model)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is OneVisionLlavaProcessor
    assert reloaded.projector_type == "spatial_merge" and reloaded.video_processor.selection_unit == 2
    first = processor(text="<image> hi", images=image(56, 56), return_tensors="pt", **SMALL)
    second = reloaded(text="<image> hi", images=image(56, 56), return_tensors="pt", **SMALL)
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key])


@pytest.mark.parametrize("text", ["", "   ", ["Describe it.", ""]], ids=["empty", "blank", "one-of-two"])
def test_empty_prompt_raises_naming_the_sample(text):
    processor = processor_for(tiny_llava())
    with pytest.raises(OneVisionInputError, match=r"text sample \d is empty"):
        processor(text=text)
