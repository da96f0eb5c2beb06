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
