"""Fine-tuning: answer-only labels, freeze / full / LoRA per component, a loss that falls, LoRA save-reload-merge."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from onevision_hf import OneVisionInputError, OneVisionLlavaProcessor
from onevision_hf.training.finetune import ConversationCollator, configure_trainable, finetune

from llava_helpers import TOKENIZER, tiny_llava
from paths import ASSETS

EXAMPLE = ASSETS / "llava-finetune-example"
SMALL = {"resize_mode": "native", "num_frames": 8, "max_pixels": 56 * 56}


def write_tiny_task(directory):
    """Four samples whose answers depend on the picture (two solid colours) or on nothing (text only)."""
    for name, colour in (("red.png", (220, 30, 30)), ("blue.png", (30, 30, 220))):
        Image.fromarray(np.full((28, 42, 3), colour, dtype=np.uint8)).save(directory / name)
    rows = [
        {"id": "r", "image": "red.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is it?"}, {"from": "gpt", "value": "A red square."}]},
        {"id": "b", "image": "blue.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is it?"}, {"from": "gpt", "value": "A blue circle."}]},
        {"id": "rb", "images": ["red.png", "blue.png"], "conversations": [
            {"from": "human", "value": "<image>\n<image>\nWhich is first?"}, {"from": "gpt", "value": "The red one."}]},
        {"id": "t", "conversations": [
            {"from": "human", "value": "What colour is the sky?"}, {"from": "gpt", "value": "The sky is blue."}]},
    ]
    path = directory / "task.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def save_tiny_model(directory, projector_type="mlp2x_gelu"):
    model = tiny_llava(projector_type=projector_type)
    model.save_pretrained(directory)
    OneVisionLlavaProcessor.for_model_config(model.config, TOKENIZER).save_pretrained(directory)
    return model


def example_collator(model):
    return ConversationCollator(OneVisionLlavaProcessor.for_model_config(model.config, TOKENIZER), EXAMPLE, SMALL)


def test_labels_cover_exactly_the_assistant_answers_and_their_end_of_turn():
    model = tiny_llava()
    collator = example_collator(model)
    rows = [json.loads(line) for line in (EXAMPLE / "conversations.jsonl").read_text().splitlines()]
    batch = collator([rows[3], rows[5]])  # a two-turn image sample and a text-only sample with a system turn
    for row, answers in ((0, ["A phone.", "It is day."]), (1, ["The sky is blue."])):
        labelled = batch["labels"][row][batch["labels"][row] != -100].tolist()
        expected = []
        for answer in answers:
            expected += TOKENIZER.encode(answer + "<|im_end|>", add_special_tokens=False)
        assert labelled == expected
    assert bool((batch["labels"][batch["input_ids"] == TOKENIZER.convert_tokens_to_ids("<image>")] == -100).all())
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_collator_packs_images_and_videos_of_the_whole_batch():
    model = tiny_llava()
    rows = [json.loads(line) for line in (EXAMPLE / "conversations.jsonl").read_text().splitlines()]
    batch = example_collator(model)(rows)  # three videos, three images, one text-only sample
    assert batch["cu_seqlens"].numel() - 1 == 3 and batch["video_cu_seqlens"].numel() - 1 == 3
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_component_modes_set_what_trains():
    model = configure_trainable(tiny_llava(), encoder="frozen", projector="full", llm="frozen")
    trainable = {".".join(name.split(".")[:2]) for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"model.multi_modal_projector"}
    peft_model = configure_trainable(tiny_llava(), encoder="lora", projector="full", llm="lora",
                                     lora_target_modules=("q_proj", "v_proj"))
    trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
    assert any("vision_tower" in name and "q_proj.lora_A" in name for name in trainable)
    assert any("language_model" in name and "v_proj.lora_B" in name for name in trainable)
    assert any("multi_modal_projector.modules_to_save" in name for name in trainable)
    assert not any("lora" in name and ("k_proj" in name or "o_proj" in name) for name in trainable)
    with pytest.raises(OneVisionInputError, match="Linear names are"):
        configure_trainable(tiny_llava(), projector="lora", llm="frozen", lora_target_modules=("q_proj",))
    with pytest.raises(OneVisionInputError, match="nothing would train"):
        configure_trainable(tiny_llava(), encoder="frozen", projector="frozen", llm="frozen")


def test_loss_falls_tenfold_on_a_tiny_task_within_thirty_steps(tmp_path):
    data = write_tiny_task(tmp_path)
    save_tiny_model(tmp_path / "model")
    trainer = finetune(tmp_path / "model", data, tmp_path / "out", projector="full", llm="full", max_steps=30,
                       batch_size=2, learning_rate=3e-3, logging_steps=3, processor_kwargs=SMALL)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 10
    assert losses[-1] < 0.1 * losses[0], losses


def test_gradient_checkpointing_gives_the_same_gradients():
    model = tiny_llava()
    model.train()
    batch = example_collator(model)([json.loads((EXAMPLE / "conversations.jsonl").read_text().splitlines()[4])])

    def projector_gradient():
        model.zero_grad()
        model(**batch).loss.backward()
        return model.multi_modal_projector.mlp.linear_1.weight.grad.clone()

    plain = projector_gradient()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    layers = [*model.vision_tower.encoder.layers, *model.language_model.layers]
    assert all(layer.gradient_checkpointing for layer in layers)  # the encoder's and the LM's layers
    torch.testing.assert_close(projector_gradient(), plain)


def test_lora_adapters_save_reload_and_merge_to_the_same_outputs(tmp_path):
    from peft import PeftModel

    base_model = tiny_llava()
    peft_model = configure_trainable(base_model, encoder="lora", projector="full", llm="lora").eval()
    with torch.no_grad():  # as if trained: non-zero LoRA B matrices and a changed projector
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.add_(torch.randn_like(parameter) * 0.05)
    batch = example_collator(base_model)([json.loads(line) for line in
                                          (EXAMPLE / "conversations.jsonl").read_text().splitlines()[3:5]])
    batch.pop("labels")
    with torch.no_grad():
        adapted = peft_model(**batch).logits
        untouched = tiny_llava()(**batch).logits
    assert not torch.allclose(adapted, untouched, atol=1e-3)

    peft_model.save_pretrained(tmp_path)
    reloaded = PeftModel.from_pretrained(tiny_llava(), tmp_path).eval()
    merged = reloaded.merge_and_unload()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, adapted)
        torch.testing.assert_close(merged(**batch).logits, adapted, atol=1e-5, rtol=1e-4)
    assert not any("lora" in name for name, _ in merged.named_parameters())
