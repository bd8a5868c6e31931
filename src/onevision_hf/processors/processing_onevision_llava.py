"""`OneVisionLlavaProcessor`: tokenizer, image processor and video processor of OneVision-LLaVA.

```python
processor = AutoProcessor.from_pretrained(model_dir)
messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe the video."}]}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
inputs = processor(text=prompt, videos="clip.mp4", return_tensors="pt")
output = model.generate(**inputs, max_new_tokens=32)
```

Every ``<image>`` / ``<video>`` in the text stands for the next image / video (in text order across the batch) and is
expanded into exactly as many placeholder tokens as the model's projector yields for it
(`projectors.num_visual_tokens`, the one place that counts them). Images are packed into ``pixel_values``,
``patch_positions``, ``cu_seqlens``; videos into ``pixel_values_videos``, ``video_patch_positions``,
``video_cu_seqlens``: the keyword arguments of ``model(...)`` and ``model.generate(...)``.
"""

import PIL.Image
import torch
from transformers.processing_utils import MultiModalData, ProcessorMixin
from transformers.utils import PROCESSOR_NAME
from transformers.video_processing_utils import VideoProcessorMixin

from ..errors import OneVisionInputError
from ..hub_code import save_with_hub_code
from ..modeling.projectors import PROJECTOR_TYPES, num_visual_tokens

IMAGE_KEYS = ("pixel_values", "patch_positions", "cu_seqlens")
VIDEO_KEYS = ("pixel_values_videos", "video_patch_positions", "video_cu_seqlens")


def check_prompts(text: list[str]) -> None:
    """An empty prompt would make a model call with no input tokens: refuse it by its index."""
    if not text:
        raise OneVisionInputError("text is an empty list; give one prompt per sample.")
    for index, sample in enumerate(text):
        if not sample.strip():
            raise OneVisionInputError(f"text sample {index} is empty; give the prompt (and its <image> / <video>).")


def _flatten_images(images) -> list:
    """One image, a list, a per-sample nested list, or a 4-D batch -> a flat list of images."""
    if isinstance(images, (list, tuple)):
        return [image for item in images for image in _flatten_images(item)]
    if getattr(images, "ndim", None) == 4:
        return list(images)
    return [images]


def _is_frame(item) -> bool:
    return isinstance(item, PIL.Image.Image) or getattr(item, "ndim", None) == 3


def _flatten_videos(videos) -> list:
    """One video (a file, bytes, a (T, H, W, 3) array, a list of frames), a list or a nested list -> flat list."""
    if isinstance(videos, (list, tuple)):
        if videos and all(_is_frame(item) for item in videos):
            return [list(videos)]
        return [video for item in videos for video in _flatten_videos(item)]
    return [videos]


class OneVisionLlavaProcessor(ProcessorMixin):
    r"""
    Args:
        image_processor: a `OneVisionImageProcessor`.
        tokenizer: the LM's tokenizer, with ``<image>`` and ``<video>`` tokens.
        video_processor: a `OneVisionVideoProcessor`.
        chat_template: Jinja template of `apply_chat_template` (default: the tokenizer's).
        projector_type: the model's ``config.projector_type``; decides how many tokens a sample expands into.
    """

    def __init__(self, image_processor=None, tokenizer=None, video_processor=None, chat_template=None,
                 projector_type: str = "mlp2x_gelu", **kwargs):
        if projector_type not in PROJECTOR_TYPES:
            raise OneVisionInputError(f"projector_type must be one of {PROJECTOR_TYPES}, got {projector_type!r}.")
        self.projector_type = projector_type
        self.image_token = getattr(tokenizer, "image_token", None) or "<image>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<video>"
        for token in (self.image_token, self.video_token):
            if token not in tokenizer.get_vocab():
                raise OneVisionInputError(f"the tokenizer has no {token!r} token; add it as a special token.")
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        chat_template = chat_template if chat_template is not None else getattr(tokenizer, "chat_template", None)
        super().__init__(image_processor, tokenizer, video_processor, chat_template=chat_template, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' ``save_pretrained``; registered with ``register_for_auto_class``, it writes a
        self-contained hub folder (`hub_code`)."""
        return save_with_hub_code(self, super().save_pretrained, save_directory, *args, **kwargs)

    def hub_auto_map(self) -> dict:
        """What a hub folder of this processor names (`hub_code`): it and its image and video processors."""
        name = PROCESSOR_NAME
        return {name: {"AutoProcessor": type(self)},
                f"{name}#image_processor": {"AutoImageProcessor": type(self.image_processor)},
                f"{name}#video_processor": {"AutoVideoProcessor": type(self.video_processor)}}

    @classmethod
    def for_model_config(cls, config, tokenizer, **processor_kwargs) -> "OneVisionLlavaProcessor":
        """Default image and video processors matching a `OneVisionLlavaConfig` (patch size, temporal grid,
        projector; videos are selected in whole 2x2 blocks for the ``spatial_merge`` projector)."""
        from .image_processing_onevision import OneVisionImageProcessor
        from .video_processing_onevision import OneVisionVideoProcessor

        vision = config.vision_config
        return cls(
            image_processor=OneVisionImageProcessor(patch_size=vision.patch_size),
            tokenizer=tokenizer,
            video_processor=OneVisionVideoProcessor(
                patch_size=vision.patch_size, rope_temporal_size=vision.rope_temporal_size,
                selection_unit=2 if config.projector_type == "spatial_merge" else 1,
            ),
            projector_type=config.projector_type,
            **processor_kwargs,
        )

    def check_argument_for_proper_class(self, argument_name, argument):
        # transformers exports VideoProcessorMixin at top level only with torchvision, which this package avoids
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"video_processor must be a VideoProcessorMixin, got {type(argument).__name__}.")
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)

    def prepare_inputs_layout(self, images=None, text=None, videos=None, audio=None, **kwargs):
        """Text as a list; images and videos reach their own processors unloaded (paths, bytes, arrays, ...)."""
        if isinstance(text, str):
            text = [text]
        return images, (list(text) if text is not None else None), videos, audio

    def validate_inputs(self, images=None, text=None, videos=None, audio=None, **kwargs):
        if text is None:
            raise OneVisionInputError(
                "OneVisionLlavaProcessor needs text with one <image> / <video> per image / video; for visual "
                "inputs alone call its image_processor or video_processor."
            )
        if not all(isinstance(sample, str) for sample in text):
            raise OneVisionInputError("text must be a string or a list of strings.")
        check_prompts(text)
        for modality, token, inputs, flatten in (("image", self.image_token, images, _flatten_images),
                                                 ("video", self.video_token, videos, _flatten_videos)):
            in_text = sum(sample.count(token) for sample in text)
            given = len(flatten(inputs)) if inputs is not None else 0
            if in_text != given:
                raise OneVisionInputError(
                    f"the number of {token} tokens in the prompts should be the same as the number of {modality}s: "
                    f"the text has {in_text} {token} placeholder(s) but {given} {modality}(s) were given; put one "
                    f"{token} where each {modality} goes."
                )

    def _process_images(self, images, **kwargs):
        inputs = self.image_processor(_flatten_images(images), **kwargs)
        return inputs, [self.replace_image_token(inputs, index) for index in range(len(inputs["cu_seqlens"]) - 1)]

    def _process_videos(self, videos, **kwargs):
        outputs = self.video_processor(_flatten_videos(videos), **kwargs)
        inputs = dict(zip(VIDEO_KEYS, (outputs[key] for key in IMAGE_KEYS)))
        if "video_metadata" in outputs:
            inputs["video_metadata"] = outputs["video_metadata"]
        return inputs, [self.replace_video_token(inputs, index) for index in range(len(inputs["video_cu_seqlens"]) - 1)]

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        """The placeholder run image ``image_idx`` expands into: one ``<image>`` per LLM token it yields."""
        return self.image_token * self._sample_tokens(image_inputs, IMAGE_KEYS, image_idx)

    def replace_video_token(self, video_inputs: dict, video_idx: int, **kwargs) -> str:
        """The placeholder run video ``video_idx`` expands into: one ``<video>`` per LLM token it yields."""
        return self.video_token * self._sample_tokens(video_inputs, VIDEO_KEYS, video_idx)

    def _sample_tokens(self, inputs: dict, keys: tuple[str, str, str], index: int) -> int:
        _, positions_key, cu_seqlens_key = keys
        start, end = (int(bound) for bound in inputs[cu_seqlens_key][index:index + 2])
        return self._count_tokens(inputs[positions_key][start:end])

    def _get_num_multimodal_tokens(self, image_sizes=None, video_sizes=None, images_kwargs=None, videos_kwargs=None,
                                   **kwargs) -> MultiModalData:
        """LLM tokens (and encoder patches) of images of ``image_sizes`` (height, width) and videos of
        ``video_sizes`` (frames, height, width), without the pixels (transformers' helper for vLLM). A video's
        count is exact for the ``mlp2x_gelu`` projector and for ``spatial_merge`` with 2 x 2 selection units; with
        single-patch units the codec's choice decides how many 2 x 2 blocks are occupied, and this raises."""
        data = {}
        if image_sizes is not None:
            positions = [self.image_processor.image_patch_positions(height, width, **(images_kwargs or {}))
                         for height, width in image_sizes]
            data["num_image_patches"] = [len(rows) for rows in positions]
            data["num_image_tokens"] = [self._count_tokens(rows) for rows in positions]
        if video_sizes is not None:
            videos_kwargs = dict(videos_kwargs or {})
            unit = videos_kwargs.get("selection_unit", self.video_processor.selection_unit)
            if self.projector_type == "spatial_merge" and unit == 1:
                raise OneVisionInputError(
                    "with the spatial_merge projector and selection_unit=1 a video's token count depends on which "
                    "patches the codec selects; it cannot be known before processing the video."
                )
            data["num_video_tokens"] = [
                self._count_tokens(self.video_processor.selected_positions(frames, height, width, **videos_kwargs))
                for frames, height, width in video_sizes
            ]
        return MultiModalData(**data)

    def _count_tokens(self, positions) -> int:
        """LLM tokens of one sample whose patches sit at (K, 3) ``positions``."""
        return int(num_visual_tokens(torch.as_tensor(positions), [0, len(positions)], self.projector_type)[0])

    @property
    def unused_input_names(self) -> list[str]:
        return ["image_grid_hw"]

    @property
    def model_input_names(self) -> list[str]:
        return list(self.tokenizer.model_input_names) + list(IMAGE_KEYS) + list(VIDEO_KEYS)

    def post_process_image_text_to_text(self, generated_outputs, skip_special_tokens=True, **kwargs) -> list[str]:
        """Generated token ids (B, L) -> texts."""
        return self.tokenizer.batch_decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)


__all__ = ["OneVisionLlavaProcessor"]
