"""Rebuild the tiny byte-level BPE tokenizer and the tiny Qwen3 text config in this folder (offline, ~1 s).

    python assets/tiny-llm/build_tokenizer.py

The tokenizer exists for tests and examples only: a byte-level BPE of at most 1024 tokens (any text encodes)
trained on the sentences below, with the ChatML turn markers of Qwen chat models and the ``<image>`` /
``<video>`` placeholders as special tokens, and a ChatML chat template whose message content may be a string
or a list of
``{"type": "image"}`` / ``{"type": "video"}`` / ``{"type": "text", "text": ...}`` parts.
"""

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config

HERE = Path(__file__).parent
VOCAB_SIZE = 1024
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'video' %}{{ '<video>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CORPUS = """
Describe the video. What happens in this video? What is shown in the image? Answer in one word.
A man talks on a car phone while driving. The car moves along a road and trees pass by the window.
People ride bikes along a street. Two cyclists pass a parked car. The camera follows the riders.
Waves roll onto a sandy beach under a blue sky. The camera is held in portrait orientation.
A red square on a white background. A blue circle in the middle of a green field.
The first frame shows a face. The last frame shows the sea. How many people are there? There are two.
Is it day or night? It is day. What colour is the sky? The sky is blue. What is the man holding? A phone.
yes no one two three four five six seven eight nine ten left right top bottom middle small large
beach bikes carphone video image frame patch token encoder model language vision question answer
user assistant system
""" * 4


def build_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS.splitlines(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"},
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )


def build_text_config(tokenizer: PreTrainedTokenizerFast) -> Qwen3Config:
    return Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=32768, tie_word_embeddings=True,
        initializer_range=0.2,  # a random tiny LM with 0.02 has near-uniform logits: greedy text is one token
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


if __name__ == "__main__":
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(HERE)
    config = build_text_config(tokenizer).to_diff_dict()
    config.pop("transformers_version", None)
    (HERE / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    print(f"saved a {len(tokenizer)}-token tokenizer and a tiny Qwen3 config to {HERE}")
