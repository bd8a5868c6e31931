"""OneVision-LLaVA: the OneVision encoder inside any Hugging Face causal LM.

Laid out like transformers' LLaVA: `OneVisionLlavaModel` (``vision_tower``, ``multi_modal_projector``,
``language_model``: the LM's base model) and `OneVisionLlavaForConditionalGeneration` (``model`` + ``lm_head``).
Checkpoints keep the layout the package always wrote (``vision_tower.*``, ``multi_modal_projector.*``,
``language_model.model.*``, ``language_model.lm_head.*``): transformers' weight-conversion mapping registered below
renames them on load and back on ``save_pretrained``, as it does for its own LLaVA checkpoints.

The processor expands every ``<image>`` / ``<video>`` placeholder into as many placeholder tokens as the projector
yields for that sample (`projectors.num_visual_tokens`); the model encodes all visual samples of the batch in one
packed encoder call, projects them, and ``masked_scatter``s the tokens into the placeholder positions of the LLM's
input embeddings, images into image placeholders and videos into video placeholders, each in text order.
Placeholders without visual inputs are embedded as ordinary tokens (with a warning), as transformers' LLaVA does.

Positions reaching the LLM: visual tokens keep the encoder's (t, h, w) order (the processors emit patches sorted
by (t, h, w); the 2x2 merge sorts its blocks by (t, h // 2, w // 2)), but the LLM sees them as a flat run of 1-D
positions, as in the released model.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel
from transformers.cache_utils import Cache
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import MultimodalBaseModelOutputWithPast, MultimodalCausalLMOutputWithPast
from transformers.modeling_utils import PreTrainedModel, slice_logits_to_keep
from transformers.utils import logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple

from ..errors import OneVisionInputError
from ..hub_code import HubCodeMixin
from .configuration_onevision_llava import OneVisionLlavaConfig
from .modeling_onevision_encoder import OneVisionEncoderModel, OneVisionPackedOutput
from .packing import (
    PackedVisionInputs,
    check_packed_inputs,
    concat_packed,
    cu_seqlens_from_lengths,
    pack_upstream_inputs,
)
from .projectors import build_projector, num_visual_tokens

logger = logging.get_logger(__name__)

IMAGE_INPUT_NAMES = ("pixel_values", "patch_positions", "cu_seqlens")
VIDEO_INPUT_NAMES = ("pixel_values_videos", "video_patch_positions", "video_cu_seqlens")
VISUAL_INPUT_NAMES = IMAGE_INPUT_NAMES + VIDEO_INPUT_NAMES

# The serialized layout (what the package always wrote) -> the modules: transformers' own LLaVA mappings, verbatim. The
# LM part assumes the causal LM keeps its base model under `model` (Qwen2, Qwen3, Llama, Mistral, Gemma, ...).
register_checkpoint_conversion_mapping("onevision_llava", [
    WeightRenaming(source_patterns=r"^language_model.lm_head", target_patterns="lm_head"),
    WeightRenaming(source_patterns=r"^language_model", target_patterns="model.language_model"),
    WeightRenaming(source_patterns=r"^vision_tower", target_patterns="model.vision_tower"),
    WeightRenaming(source_patterns=r"^multi_modal_projector", target_patterns="model.multi_modal_projector"),
], overwrite=True)
register_checkpoint_conversion_mapping("OneVisionLlavaModel", [
    WeightRenaming(source_patterns=r"^language_model.model", target_patterns="language_model"),
], overwrite=True)


class ProjectedVisualTokens:
    """``image_hidden_states`` / ``video_hidden_states``: all projected tokens of a modality, (M, D_text), in the
    order they fill the placeholders (the concatenation of ``image_outputs.pooler_output``)."""

    @property
    def image_hidden_states(self) -> torch.Tensor | None:
        return _concatenated_tokens(self.image_outputs)

    @property
    def video_hidden_states(self) -> torch.Tensor | None:
        return _concatenated_tokens(self.video_outputs)


def _concatenated_tokens(outputs) -> torch.Tensor | None:
    return None if outputs is None else torch.cat(outputs.pooler_output)


@dataclass
class OneVisionLlavaModelOutputWithPast(ProjectedVisualTokens, MultimodalBaseModelOutputWithPast):
    r"""
    last_hidden_state: (B, L, D_text) the LM base model's output.
    image_outputs / video_outputs: the encoder's `OneVisionPackedOutput` for that modality's samples, with
        ``pooler_output`` replaced, as in transformers' LLaVA, by the projected LLM tokens: a tuple of one
        (M_i, D_text) tensor per image / video.
    """


@dataclass
class OneVisionLlavaCausalLMOutputWithPast(ProjectedVisualTokens, MultimodalCausalLMOutputWithPast):
    r"""
    loss: next-token loss when ``labels`` are given.
    logits: (B, L, vocab) scores of the LM head.
    cache: the KV cache to continue generation with.
    hidden_states / attentions: the LLM's, when asked for.
    image_outputs / video_outputs: as in `OneVisionLlavaModelOutputWithPast`.
    """


def _packed_modality(name: str, pixel_values, patch_positions, cu_seqlens, patch_size: int, patch_dim: int):
    """One modality's visual inputs as `PackedVisionInputs`, or None; upstream 4-D/5-D pixels are packed first."""
    if pixel_values is None:
        if patch_positions is not None or cu_seqlens is not None:
            raise OneVisionInputError(f"{name} positions / cu_seqlens were given without their pixel values.")
        return None
    if cu_seqlens is None:
        return pack_upstream_inputs(pixel_values, patch_size, patch_positions=patch_positions)
    try:
        check_packed_inputs(pixel_values, patch_positions, cu_seqlens, patch_dim)
    except OneVisionInputError as error:
        raise OneVisionInputError(f"{name} inputs: {error}") from None
    return PackedVisionInputs(pixel_values, patch_positions, cu_seqlens)


class OneVisionLlavaPreTrainedModel(HubCodeMixin, PreTrainedModel):
    config_class = OneVisionLlavaConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _skip_keys_device_placement = ["past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = False
    _supports_attention_backend = True

    def hub_auto_map(self) -> dict:
        """What a hub folder of this model names (`hub_code`): its config, the base model and its class."""
        return {"config.json": {"AutoConfig": type(self.config), "AutoModel": OneVisionLlavaModel,
                                type(self)._auto_class: type(self)}}


def _modality_outputs(encoded: OneVisionPackedOutput, rows: slice, packed: PackedVisionInputs, tokens: torch.Tensor,
                      token_offsets: list[int], upstream: bool, output_hidden_states: bool,
                      output_attentions: bool) -> OneVisionPackedOutput:
    """One modality's share of a joint encoder call: its rows (as (B, L, D) for upstream-style pixels), its
    hidden states / attentions when asked for, and its projected tokens per sample as ``pooler_output``."""

    def shaped(states: torch.Tensor) -> torch.Tensor:
        states = states[rows]
        return states.view(packed.cu_seqlens.shape[0] - 1, -1, states.shape[-1]) if upstream else states

    attentions = None
    if output_attentions and encoded.attentions:
        attentions = tuple(weights[..., rows, rows] for weights in encoded.attentions)  # (1, H, n, n) blocks
    return OneVisionPackedOutput(
        last_hidden_state=shaped(encoded.last_hidden_state),
        pooler_output=tuple(tokens[start:end] for start, end in zip(token_offsets[:-1], token_offsets[1:])),
        hidden_states=tuple(shaped(states) for states in encoded.hidden_states) if output_hidden_states else None,
        attentions=attentions,
        cu_seqlens=packed.cu_seqlens,
    )


class OneVisionLlavaModel(OneVisionLlavaPreTrainedModel):
    """``vision_tower`` (OneVision encoder) -> ``multi_modal_projector`` -> ``language_model`` (the LM's base model)."""

    def __init__(self, config: OneVisionLlavaConfig):
        super().__init__(config)
        self.vision_tower = OneVisionEncoderModel(config.vision_config)
        self.multi_modal_projector = build_projector(config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.language_model.set_input_embeddings(value)

    def get_visual_features(
        self,
        pixel_values: torch.Tensor | None = None,
        patch_positions: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_patch_positions: torch.Tensor | None = None,
        video_cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> tuple[OneVisionPackedOutput | None, OneVisionPackedOutput | None]:
        """Encode every image and video sample in ONE packed encoder call; return (image outputs, video outputs).

        Images come first in the packed call, videos after. Each result is the encoder's output for that modality
        (None when absent) with ``pooler_output`` holding the projected LLM tokens, one (M_i, D_text) per sample.
        """
        vision_config = self.config.vision_config
        patch_dim = vision_config.num_channels * vision_config.patch_size**2
        images = _packed_modality("image", pixel_values, patch_positions, cu_seqlens, vision_config.patch_size,
                                  patch_dim)
        videos = _packed_modality("video", pixel_values_videos, video_patch_positions, video_cu_seqlens,
                                  vision_config.patch_size, patch_dim)
        parts = [part for part in (images, videos) if part is not None]
        if not parts:
            return None, None
        output_hidden_states = (output_hidden_states if output_hidden_states is not None
                                else vision_config.output_hidden_states)
        output_attentions = output_attentions if output_attentions is not None else vision_config.output_attentions
        packed = concat_packed(parts)
        encoded = self.vision_tower(
            pixel_values=packed.pixel_values,  # the patch embedding moves them to its device and dtype
            patch_positions=packed.patch_positions,
            cu_seqlens=packed.cu_seqlens,
            output_hidden_states=True,  # the features are one of them
            output_attentions=output_attentions,
            return_dict=True,
        )
        features = encoded.hidden_states[self.config.vision_feature_layer]  # (N, D_vision)
        tokens, token_offsets = self.multi_modal_projector(features, packed.patch_positions, packed.cu_seqlens)
        token_offsets = token_offsets.tolist()
        outputs, first_row, first_sample = [], 0, 0
        for part, upstream in ((images, cu_seqlens is None), (videos, video_cu_seqlens is None)):
            if part is None:
                outputs.append(None)
                continue
            num_rows, num_samples = part.pixel_values.shape[0], part.cu_seqlens.shape[0] - 1
            offsets = token_offsets[first_sample:first_sample + num_samples + 1]
            outputs.append(_modality_outputs(encoded, slice(first_row, first_row + num_rows), part, tokens, offsets,
                                             upstream, output_hidden_states, output_attentions))
            first_row, first_sample = first_row + num_rows, first_sample + num_samples
        return outputs[0], outputs[1]

    @can_return_tuple
    def get_image_features(self, pixel_values: torch.Tensor, patch_positions: torch.Tensor | None = None,
                           cu_seqlens: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                           output_attentions: bool | None = None, **kwargs) -> OneVisionPackedOutput:
        """Images -> the encoder's output for them, ``pooler_output`` the projected tokens of each image."""
        return self.get_visual_features(pixel_values, patch_positions, cu_seqlens,
                                        output_hidden_states=output_hidden_states,
                                        output_attentions=output_attentions)[0]

    @can_return_tuple
    def get_video_features(self, pixel_values_videos: torch.Tensor, video_patch_positions: torch.Tensor | None = None,
                           video_cu_seqlens: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                           output_attentions: bool | None = None, **kwargs) -> OneVisionPackedOutput:
        """Videos -> the encoder's output for them, ``pooler_output`` the projected tokens of each video."""
        return self.get_visual_features(pixel_values_videos=pixel_values_videos,
                                        video_patch_positions=video_patch_positions,
                                        video_cu_seqlens=video_cu_seqlens, output_hidden_states=output_hidden_states,
                                        output_attentions=output_attentions)[1]

    def _placeholder_mask(self, input_ids, inputs_embeds, token_id: int | None, modality: str) -> torch.Tensor:
        """(B, L) bool: where the ``modality`` placeholder tokens are."""
        if token_id is None:
            raise OneVisionInputError(
                f"{modality} inputs were given but config.{modality}_token_id is not set: the model does not know "
                f"which token marks where {modality} features go."
            )
        if input_ids is not None:
            return input_ids == token_id
        placeholder = self.get_input_embeddings()(torch.tensor(token_id, device=inputs_embeds.device))
        return (inputs_embeds == placeholder).all(-1)

    def _scatter(self, input_ids, inputs_embeds, features, token_id, modality: str) -> torch.Tensor:
        mask = self._placeholder_mask(input_ids, inputs_embeds, token_id, modality)
        num_placeholders = int(mask.sum())
        if num_placeholders != features.shape[0]:
            raise OneVisionInputError(
                f"the text has {num_placeholders} {modality} placeholder tokens but the {modality} inputs yield "
                f"{features.shape[0]} LLM tokens through the {self.config.projector_type!r} projector; build the "
                "inputs with OneVisionLlavaProcessor (whose projector_type must match the model's)."
            )
        mask = mask.unsqueeze(-1).to(inputs_embeds.device)
        return inputs_embeds.masked_scatter(mask, features.to(inputs_embeds.device, inputs_embeds.dtype))

    def _warn_about_orphan_placeholders(self, input_ids, cache, present: dict[str, bool]) -> None:
        """A prefill whose text has placeholders of a modality without inputs: embedded as text, as transformers'
        LLaVA does (text-only calls stay valid), but most likely a forgotten image or video."""
        if input_ids is None or (cache is not None and cache.get_seq_length() > 0):
            return
        for modality, token_id in (("image", self.config.image_token_id), ("video", self.config.video_token_id)):
            if token_id is not None and not present[modality] and bool((input_ids == token_id).any()):
                logger.warning_once(
                    f"input_ids contain {int((input_ids == token_id).sum())} {modality} placeholder tokens but no "
                    f"{modality} inputs were given; they are embedded as ordinary tokens."
                )

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        patch_positions: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_patch_positions: torch.Tensor | None = None,
        video_cu_seqlens: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> OneVisionLlavaModelOutputWithPast:
        r"""
        input_ids: (B, L) token ids, with one placeholder token per LLM token of each image / video.
        pixel_values, patch_positions, cu_seqlens: packed image samples ((N, C*p*p), (N, 3) (t, h, w), (B_img+1,)),
            as `OneVisionImageProcessor` returns them; (B, C, H, W) pixels without cu_seqlens are packed densely.
        pixel_values_videos, video_patch_positions, video_cu_seqlens: packed video samples, likewise.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise OneVisionInputError("give exactly one of input_ids or inputs_embeds.")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        image_outputs, video_outputs = self.get_visual_features(
            pixel_values, patch_positions, cu_seqlens, pixel_values_videos, video_patch_positions, video_cu_seqlens,
            output_hidden_states=kwargs.get("output_hidden_states"), output_attentions=kwargs.get("output_attentions"),
        )
        self._warn_about_orphan_placeholders(
            input_ids, cache, {"image": image_outputs is not None, "video": video_outputs is not None}
        )
        for modality, outputs, token_id in (("image", image_outputs, self.config.image_token_id),
                                            ("video", video_outputs, self.config.video_token_id)):
            if outputs is not None:
                inputs_embeds = self._scatter(input_ids, inputs_embeds, torch.cat(outputs.pooler_output), token_id,
                                              modality)

        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
        )
        return OneVisionLlavaModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_outputs=image_outputs,
            video_outputs=video_outputs,
        )


class OneVisionLlavaForConditionalGeneration(OneVisionLlavaPreTrainedModel, GenerationMixin):
    """`OneVisionLlavaModel` (``model``) and the LM head (``lm_head``)."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}  # as transformers' LLaVA: sharded with the LM's embedding

    def __init__(self, config: OneVisionLlavaConfig):
        super().__init__(config)
        self.model = OneVisionLlavaModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    @property
    def vision_tower(self) -> OneVisionEncoderModel:
        return self.model.vision_tower

    @property
    def multi_modal_projector(self) -> nn.Module:
        return self.model.multi_modal_projector

    @property
    def language_model(self) -> PreTrainedModel:
        """The LM's base model (its head is ``lm_head``)."""
        return self.model.language_model

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module):
        self.lm_head = value

    def get_image_features(self, pixel_values: torch.Tensor, patch_positions: torch.Tensor | None = None,
                           cu_seqlens: torch.Tensor | None = None, **kwargs) -> OneVisionPackedOutput:
        """See `OneVisionLlavaModel.get_image_features`."""
        return self.model.get_image_features(pixel_values, patch_positions, cu_seqlens, **kwargs)

    def get_video_features(self, pixel_values_videos: torch.Tensor, video_patch_positions: torch.Tensor | None = None,
                           video_cu_seqlens: torch.Tensor | None = None, **kwargs) -> OneVisionPackedOutput:
        """See `OneVisionLlavaModel.get_video_features`."""
        return self.model.get_video_features(pixel_values_videos, video_patch_positions, video_cu_seqlens, **kwargs)

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        patch_positions: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_patch_positions: torch.Tensor | None = None,
        video_cu_seqlens: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> OneVisionLlavaCausalLMOutputWithPast:
        r"""
        The inputs of `OneVisionLlavaModel.forward`, plus
        labels: (B, L) next-token targets, -100 where no loss is taken.
        logits_to_keep: compute logits of the last ``logits_to_keep`` positions only (0: all).
        """
        outputs = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
            inputs_embeds=inputs_embeds, pixel_values=pixel_values, patch_positions=patch_positions,
            cu_seqlens=cu_seqlens, pixel_values_videos=pixel_values_videos,
            video_patch_positions=video_patch_positions, video_cu_seqlens=video_cu_seqlens, use_cache=use_cache,
            **kwargs,
        )
        logits = self.lm_head(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size,
                                      **kwargs)
        return OneVisionLlavaCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_outputs=outputs.image_outputs,
            video_outputs=outputs.video_outputs,
        )

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs):
        """Visual inputs go to the prefill step only; later steps read the visual tokens from the KV cache."""
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        if not is_first_iteration and kwargs.get("use_cache", True):
            for name in VISUAL_INPUT_NAMES:
                model_inputs.pop(name, None)
        return model_inputs

    def _expand_inputs_for_generation(self, expand_size: int = 1, is_encoder_decoder: bool = False,
                                      input_ids: torch.LongTensor | None = None, **model_kwargs):
        """Beam search / several return sequences: repeat each row's visual samples with the row (packed inputs
        have no batch dimension to ``repeat_interleave``)."""
        visual = {name: model_kwargs.pop(name) for name in VISUAL_INPUT_NAMES if model_kwargs.get(name) is not None}
        expanded_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size, is_encoder_decoder, input_ids, **model_kwargs
        )
        if expand_size > 1 and visual:
            if input_ids is None:
                raise OneVisionInputError("expanding visual inputs for generation needs input_ids, not inputs_embeds.")
            for names, token_id in ((IMAGE_INPUT_NAMES, self.config.image_token_id),
                                    (VIDEO_INPUT_NAMES, self.config.video_token_id)):
                if names[0] in visual:
                    visual.update(zip(names, self._repeat_visual_samples(
                        input_ids == token_id, *(visual.get(name) for name in names), expand_size
                    )))
        model_kwargs.update(visual)
        return expanded_ids, model_kwargs

    def _repeat_visual_samples(self, placeholder_mask, pixel_values, patch_positions, cu_seqlens, expand_size: int):
        """Packed samples owned by text rows [r0, r1, ...] -> owned by [r0 x expand_size, r1 x expand_size, ...]."""
        if cu_seqlens is None:  # upstream (B, C, H, W) pixels: one sample per leading index
            packed = pack_upstream_inputs(pixel_values, self.config.vision_config.patch_size,
                                          patch_positions=patch_positions)
            pixel_values, patch_positions, cu_seqlens = packed.pixel_values, packed.patch_positions, packed.cu_seqlens
        tokens_per_sample = num_visual_tokens(patch_positions, cu_seqlens, self.config.projector_type).tolist()
        samples_of_row, next_sample = [], 0
        for remaining in placeholder_mask.sum(-1).tolist():  # each row owns the next samples its placeholders fill
            first = next_sample
            while remaining > 0 and next_sample < len(tokens_per_sample):
                remaining -= tokens_per_sample[next_sample]
                next_sample += 1
            if remaining != 0:
                break
            samples_of_row.append(range(first, next_sample))
        if len(samples_of_row) != placeholder_mask.shape[0] or next_sample != len(tokens_per_sample):
            raise OneVisionInputError(
                "the placeholder tokens of the text rows do not split into whole visual samples; build the inputs "
                "with OneVisionLlavaProcessor."
            )
        sample_order = [sample for row in samples_of_row for _ in range(expand_size) for sample in row]
        bounds = cu_seqlens.tolist()
        patch_index = torch.cat([torch.arange(bounds[s], bounds[s + 1]) for s in sample_order]).to(pixel_values.device)
        lengths = [bounds[s + 1] - bounds[s] for s in sample_order]
        return (pixel_values[patch_index], patch_positions[patch_index.to(patch_positions.device)],
                cu_seqlens_from_lengths(lengths, device=cu_seqlens.device))


__all__ = ["OneVisionLlavaCausalLMOutputWithPast", "OneVisionLlavaForConditionalGeneration", "OneVisionLlavaModel",
           "OneVisionLlavaModelOutputWithPast", "OneVisionLlavaPreTrainedModel"]
