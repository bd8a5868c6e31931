"""OneVision-LLaVA model: one packed encoder call per batch, features scattered into placeholders, counts checked,
generate() with a KV cache equal to a greedy loop without one."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText

from onevision_hf import OneVisionInputError
from onevision_hf.modeling.configuration_onevision_llava import OneVisionLlavaConfig
from onevision_hf.modeling.packing import concat_packed
from onevision_hf.modeling.projectors import num_visual_tokens

from llava_helpers import (
    IMAGE_ID,
    VIDEO_ID,
    codec_like_positions,
    left_pad,
    prompt_ids,
    random_image,
    sparse_video,
    tiny_llava,
)


def tokens_of(packed, projector_type="mlp2x_gelu") -> int:
    return int(num_visual_tokens(packed.patch_positions, packed.cu_seqlens, projector_type).sum())


def visual_kwargs(images=(), videos=()) -> dict:
    kwargs = {}
    if images:
        image = concat_packed(list(images))
        kwargs.update(pixel_values=image.pixel_values, patch_positions=image.patch_positions,
                      cu_seqlens=image.cu_seqlens)
    if videos:
        video = concat_packed(list(videos))
        kwargs.update(pixel_values_videos=video.pixel_values, video_patch_positions=video.patch_positions,
                      video_cu_seqlens=video.cu_seqlens)
    return kwargs


def record_encoder_calls(model) -> list[int]:
    """Number of samples of every vision-tower call from now on."""
    calls = []
    model.vision_tower.register_forward_hook(
        lambda module, args, kwargs, output: calls.append(kwargs["cu_seqlens"].numel() - 1), with_kwargs=True
    )
    return calls


def mixed_rows(projector_type="mlp2x_gelu"):
    """Text-only, image, two images (different sizes), sparse video, video then image: (ids, images, videos) rows."""
    image_a, image_b, image_c = random_image(4, 4, seed=1), random_image(2, 6, seed=2), random_image(6, 2, seed=3)
    video_a = sparse_video(codec_like_positions(frames=3, grid=4, seed=4), seed=4)
    video_b = sparse_video(codec_like_positions(frames=2, grid=6, seed=5), seed=5)

    def n(packed):
        return tokens_of(packed, projector_type)

    return [
        (prompt_ids("What colour is the sky?"), [], []),
        (prompt_ids((IMAGE_ID, n(image_a)), "Describe the image."), [image_a], []),
        (prompt_ids("Compare", (IMAGE_ID, n(image_b)), "and", (IMAGE_ID, n(image_c))), [image_b, image_c], []),
        (prompt_ids((VIDEO_ID, n(video_a)), "What happens in this video?"), [], [video_a]),
        (prompt_ids((VIDEO_ID, n(video_b)), "then", (IMAGE_ID, n(image_a))), [image_a], [video_b]),
    ]


@pytest.mark.parametrize("projector_type", ["mlp2x_gelu", "spatial_merge"])
def test_mixed_batch_is_one_packed_encoder_call_and_matches_per_sample_calls(projector_type):
    model = tiny_llava(projector_type=projector_type)
    rows = mixed_rows(projector_type)
    width = max(len(ids) for ids, _, _ in rows)
    input_ids = torch.tensor([ids + [0] * (width - len(ids)) for ids, _, _ in rows])  # right padding
    attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _, _ in rows])
    images = [image for _, row_images, _ in rows for image in row_images]
    videos = [video for _, _, row_videos in rows for video in row_videos]

    calls = record_encoder_calls(model)
    with torch.no_grad():
        batch = model(input_ids=input_ids, attention_mask=attention_mask, **visual_kwargs(images, videos)).logits
    assert calls == [len(images) + len(videos)]  # one packed call holding every image and video sample

    with torch.no_grad():
        for row, (ids, row_images, row_videos) in enumerate(rows):
            alone = model(input_ids=torch.tensor([ids]), **visual_kwargs(row_images, row_videos)).logits[0]
            torch.testing.assert_close(batch[row, : len(ids)], alone, atol=2e-5, rtol=1e-4)


def test_image_and_video_tokens_fill_their_own_placeholders_in_text_order():
    model = tiny_llava()
    image, video = random_image(2, 3), sparse_video(codec_like_positions(frames=2, grid=3))
    ids = torch.tensor([prompt_ids((VIDEO_ID, tokens_of(video)), "and", (IMAGE_ID, tokens_of(image)), "?")])
    seen = {}
    model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(embeds=kwargs["inputs_embeds"]), with_kwargs=True
    )
    with torch.no_grad():
        out = model(input_ids=ids, **visual_kwargs([image], [video]))
    embeds = seen["embeds"][0]
    torch.testing.assert_close(embeds[ids[0] == IMAGE_ID], out.image_hidden_states)
    torch.testing.assert_close(embeds[ids[0] == VIDEO_ID], out.video_hidden_states)
    text = (ids[0] != IMAGE_ID) & (ids[0] != VIDEO_ID)
    torch.testing.assert_close(embeds[text], model.get_input_embeddings()(ids[0][text]))


@pytest.mark.parametrize("layer", [-2, -1, 0])
def test_vision_feature_layer_selects_that_encoder_hidden_state(layer):
    model = tiny_llava()
    model.config.vision_feature_layer = layer
    image = random_image(2, 2)
    ids = torch.tensor([prompt_ids((IMAGE_ID, 4))])
    with torch.no_grad():
        out = model(input_ids=ids, **visual_kwargs([image]))
        hidden = model.vision_tower(**image.to_kwargs(), output_hidden_states=True).hidden_states[layer]
        expected, _ = model.multi_modal_projector(hidden, image.patch_positions, image.cu_seqlens)
    torch.testing.assert_close(out.image_hidden_states, expected)


def test_released_default_feature_layer_is_second_to_last():
    assert OneVisionLlavaConfig().vision_feature_layer == -2


def test_placeholder_count_that_disagrees_with_the_visuals_raises():
    model = tiny_llava()
    image = random_image(2, 2)
    with pytest.raises(OneVisionInputError, match="3 image placeholder tokens but the image inputs yield 4"):
        model(input_ids=torch.tensor([prompt_ids((IMAGE_ID, 3), "hi")]), **visual_kwargs([image]))


def test_placeholders_without_visual_inputs_are_embedded_as_text_with_a_warning(caplog):
    """As transformers' LlavaModel: a text-only call stays valid (eager-vs-sdpa and export tools make such calls)."""
    model = tiny_llava()
    ids = torch.tensor([prompt_ids((VIDEO_ID, 2), "hi")])
    with torch.no_grad(), caplog.at_level("WARNING"):
        logits = model(input_ids=ids).logits
        as_text = model.lm_head(model.language_model(inputs_embeds=model.get_input_embeddings()(ids)).last_hidden_state)
    torch.testing.assert_close(logits, as_text)
    assert "2 video placeholder tokens but no video inputs were given" in caplog.text


def test_bad_visual_inputs_raise_typed_errors_naming_the_modality():
    model = tiny_llava()
    image = random_image(2, 2)
    ids = torch.tensor([prompt_ids((VIDEO_ID, 4))])
    with pytest.raises(OneVisionInputError, match="video inputs: cu_seqlens ends at 5"):
        model(input_ids=ids, pixel_values_videos=image.pixel_values, video_patch_positions=image.patch_positions,
              video_cu_seqlens=torch.tensor([0, 5], dtype=torch.int32))
    with pytest.raises(OneVisionInputError, match="without their pixel values"):
        model(input_ids=ids, video_patch_positions=image.patch_positions)
    with pytest.raises(OneVisionInputError, match="exactly one of input_ids or inputs_embeds"):
        model(pixel_values=image.pixel_values)


def greedy_without_cache(model, input_ids, attention_mask, visual, steps):
    """The reference: re-run the whole sequence (and the encoder) at every step, no KV cache."""
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **visual).logits
        next_token = logits[:, -1].argmax(-1, keepdim=True)
        input_ids = torch.cat([input_ids, next_token], dim=1)
        attention_mask = torch.cat([attention_mask, torch.ones_like(next_token)], dim=1)
    return input_ids


@pytest.mark.parametrize(("text_model_type", "projector_type", "modality"), [
    ("qwen3", "mlp2x_gelu", "image"),
    ("qwen2", "spatial_merge", "video"),
    ("llama", "mlp2x_gelu", "image+video"),
])
def test_generate_with_kv_cache_equals_greedy_loop_without_cache(text_model_type, projector_type, modality):
    model = tiny_llava(text_model_type, projector_type, seed=3)
    image = random_image(4, 4, seed=7)
    video = sparse_video(codec_like_positions(frames=3, grid=4, seed=8), seed=8)
    short_prompt = prompt_ids("Answer in one word.")
    if modality == "image":
        rows = [prompt_ids((IMAGE_ID, tokens_of(image, projector_type)), "Describe the image."), short_prompt]
        visual = visual_kwargs([image])
    elif modality == "video":
        rows = [short_prompt, prompt_ids((VIDEO_ID, tokens_of(video, projector_type)), "What happens?")]
        visual = visual_kwargs(videos=[video])
    else:
        rows = [prompt_ids((IMAGE_ID, tokens_of(image)), "vs"), prompt_ids((VIDEO_ID, tokens_of(video)), "?")]
        visual = visual_kwargs([image], [video])
    input_ids, attention_mask = left_pad(rows)

    calls = record_encoder_calls(model)
    with torch.no_grad():
        generated = model.generate(input_ids=input_ids, attention_mask=attention_mask, **visual, max_new_tokens=8,
                                   do_sample=False, min_new_tokens=8)
    assert len(calls) == 1  # visual features are computed in the prefill step only
    reference = greedy_without_cache(model, input_ids, attention_mask, visual, steps=8)
    assert generated.tolist() == reference.tolist()
    assert len(set(generated[:, input_ids.shape[1]:].flatten().tolist())) > 1  # a non-degenerate continuation


def test_a_manual_decode_step_continues_from_the_returned_cache_under_either_name():
    """transformers 5.24 calls the KV cache ``cache``; code written against ``past_key_values`` keeps working."""
    model = tiny_llava(seed=4)
    image = random_image(2, 2, seed=3)
    input_ids = torch.tensor([prompt_ids((IMAGE_ID, tokens_of(image)), "Describe.")])
    with torch.no_grad():
        prefill = model(input_ids=input_ids, use_cache=True, **visual_kwargs([image]))
        step = prefill.logits[:, -1:].argmax(-1)
        whole = model(input_ids=torch.cat([input_ids, step], 1), use_cache=False, **visual_kwargs([image])).logits
        after_prefill = prefill.cache.get_seq_length()
        with_cache = model(input_ids=step, cache=prefill.cache).logits
        prefill.cache.crop(-1)  # drop the step just appended
        with_old_name = model(input_ids=step, past_key_values=prefill.cache).logits
    assert after_prefill == input_ids.shape[1]
    torch.testing.assert_close(with_cache[:, -1], whole[:, -1], rtol=0, atol=1e-5)
    torch.testing.assert_close(with_old_name, with_cache, rtol=0, atol=0)


def test_beam_search_with_several_return_sequences_keeps_each_rows_own_visuals():
    model = tiny_llava(seed=5)
    first, second = random_image(2, 4, seed=1), random_image(4, 2, seed=2)
    rows = [prompt_ids((IMAGE_ID, 8), "Describe the image.")] * 2  # same text, different images
    options = dict(max_new_tokens=4, num_beams=2, num_return_sequences=2, do_sample=False)
    with torch.no_grad():
        both = model.generate(input_ids=torch.tensor(rows), **visual_kwargs([first, second]), **options)
        alone = [model.generate(input_ids=torch.tensor([row]), **visual_kwargs([image]), **options)
                 for row, image in zip(rows, (first, second))]
    assert both.tolist() == torch.cat(alone).tolist()


def test_save_and_reload_through_the_auto_classes(tmp_path):
    model = tiny_llava(projector_type="spatial_merge")
    model.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is OneVisionLlavaConfig
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    image = random_image(4, 4)
    ids = torch.tensor([prompt_ids((IMAGE_ID, 4), "Describe the image.")])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids, **visual_kwargs([image])).logits,
                                   model(input_ids=ids, **visual_kwargs([image])).logits)
