"""Miniature random-weight pipelines built offline from configs.

They exercise the real diffusers code paths (FluxPipeline, from_pretrained of a saved folder,
quantization, LoRA) without any download. Their images are noise: never quote their scores as
model quality.
"""

from __future__ import annotations

from pathlib import Path

TINY_FLUX_VERSION = "flux-tiny/v1"  # bump when the architecture or init below changes (pixels change)

_WORDS = (
    "a an the of on in with and red blue green black white yellow cat dog sign neon open hours "
    "bottle water garden bridge city sunset photo text says word letters chef hat kitchen eggs "
    "tiny big small two three four five left right above below under next to"
).split()


def _word_tokenizer(max_length: int, pad: str, eos: str, bos: str | None, unk: str):
    """A word-level tokenizer trained in code (no download), wrapped for transformers."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [pad, eos, unk] + ([bos] if bos else [])
    vocab = {tok: i for i, tok in enumerate(specials)}
    for w in _WORDS + [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789'\".,!?&@#%:-"):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])]
        )
    else:
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", special_tokens=[(eos, vocab[eos])]
        )
    kwargs = dict(tokenizer_object=tok, pad_token=pad, eos_token=eos, unk_token=unk,
                  model_max_length=max_length)
    if bos:
        kwargs["bos_token"] = bos
    return PreTrainedTokenizerFast(**kwargs), len(vocab)


def build_tiny_flux(seed: int = 0):
    """A FluxPipeline with miniature random weights (about 0.3 MB). Deterministic for a seed."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    clip_tok, clip_vocab = _word_tokenizer(77, "<pad>", "</s>", "<s>", "<unk>")
    t5_tok, t5_vocab = _word_tokenizer(512, "<pad>", "</s>", None, "<unk>")
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id,
        pad_token_id=clip_tok.pad_token_id, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-5,
        num_attention_heads=4, num_hidden_layers=5, projection_dim=32, vocab_size=clip_vocab,
        max_position_embeddings=77, hidden_act="gelu",
    ))
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=t5_vocab, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        pad_token_id=t5_tok.pad_token_id, eos_token_id=t5_tok.eos_token_id, decoder_start_token_id=0,
    ))
    vae = AutoencoderKL(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035,
        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
    )
    scheduler = FlowMatchEulerDiscreteScheduler()
    pipe = FluxPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=clip_tok,
        text_encoder_2=text_encoder_2, tokenizer_2=t5_tok, transformer=transformer,
    )
    for module in (transformer, text_encoder, text_encoder_2, vae):
        module.eval()  # from_pretrained does this; a freshly built T5 would apply dropout
    return pipe


def save_tiny_flux(folder: str | Path, seed: int = 0) -> Path:
    """Build the miniature pipeline and save it in diffusers layout (the layout real weights use)."""
    folder = Path(folder)
    build_tiny_flux(seed).save_pretrained(folder)
    return folder


TINY_SDXL_VERSION = "sdxl-tiny/v1"  # bump when the architecture or init below changes (pixels change)


def build_tiny_sdxl(seed: int = 0):
    """A StableDiffusionXLPipeline with miniature random weights. Deterministic for a seed.

    UNet2DConditionModel with SDXL's text_time conditioning, two CLIP text encoders (the second with
    projection, as in SDXL), AutoencoderKL with 4 latent channels, EulerDiscreteScheduler and word
    tokenizers trained in code. Its images are noise.
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    tok, vocab = _word_tokenizer(77, "<pad>", "</s>", "<s>", "<unk>")
    tok_2, vocab_2 = _word_tokenizer(77, "<pad>", "</s>", "<s>", "<unk>")
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 time ids x 8 + pooled text (projection_dim)
        cross_attention_dim=64, norm_num_groups=8,  # 32 + 32: both encoders' hidden states concatenated
    )

    def clip_config(vocab_size: int):
        return CLIPTextConfig(
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            hidden_size=32, intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
            num_hidden_layers=3, projection_dim=32, vocab_size=vocab_size, max_position_embeddings=77,
            hidden_act="gelu",
        )

    text_encoder = CLIPTextModel(clip_config(vocab))
    text_encoder_2 = CLIPTextModelWithProjection(clip_config(vocab_2))
    vae = AutoencoderKL(
        sample_size=64, in_channels=3, out_channels=3, block_out_channels=(8, 8), layers_per_block=1,
        latent_channels=4, norm_num_groups=4, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, scaling_factor=0.13025,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="leading", steps_offset=1)
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tok, tokenizer_2=tok_2,
        unet=unet, scheduler=scheduler,
    )
    for module in (unet, text_encoder, text_encoder_2, vae):
        module.eval()
    return pipe


def save_tiny_sdxl(folder: str | Path, seed: int = 0) -> Path:
    folder = Path(folder)
    build_tiny_sdxl(seed).save_pretrained(folder)
    return folder


def save_tiny_flux_lora(path: str | Path, seed: int = 0, rank: int = 4, strength: float = 4.0,
                        target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")) -> Path:
    """A random LoRA for flux-tiny's transformer, built with peft and saved in diffusers' LoRA format
    (FluxPipeline.save_lora_weights). Non-zero B matrices (peft's random init times `strength`), so it
    clearly changes the images. For tests and demos.
    """
    import torch
    from diffusers import FluxPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    path = Path(path)
    pipe = build_tiny_flux()
    torch.manual_seed(seed)
    pipe.transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                            target_modules=list(target_modules)))
    layers = {k: (v * strength if "lora_B" in k else v) for k, v in get_peft_model_state_dict(pipe.transformer).items()}
    FluxPipeline.save_lora_weights(path.parent, transformer_lora_layers=layers, weight_name=path.name)
    return path
