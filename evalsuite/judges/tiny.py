"""A miniature random-weight vision-language judge built offline from a config (Qwen2.5-VL architecture).

`save_tiny_vlm(folder)` writes a model folder in the layout real weights use (config.json, safetensors, the
processor with its tokenizer and chat template), so the local judge loads it through the same
`AutoModelForImageTextToText.from_pretrained` / `AutoProcessor.from_pretrained` path as
Qwen/Qwen2.5-VL-7B-Instruct. Its tokenizer is trained in code (the `tokenizers` library, word level). Its
answers come from random weights: they exercise the code, they never say anything about an image.
`full_size_config()` is the default judge's architecture (for bench/gpu_check.py: memory and speed of a
full-size random-weight judge, no download).
"""

from __future__ import annotations

from pathlib import Path

TINY_VLM_VERSION = "vlm-tiny/v1"   # bump when the architecture, tokenizer or init below changes

_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
             "<|image_pad|>", "<|video_pad|>"]
_WORDS = ("system user assistant you are a helpful does this figure show please answer yes no Yes No YES NO "
          "is there the an of on in with and red blue green black white yellow cat dog sign neon open hours "
          "bottle two three four left right above below under next to says text word not any what").split()

# The chat template of the Qwen2.5-VL Instruct models, reduced to single images and text (their own template
# adds videos and tool calls); the system line is the one the real template adds by default.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tokenizer():
    """A word-level tokenizer trained in code with the Qwen2.5-VL special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    corpus = [" ".join(_WORDS), " ".join(chr(c) for c in range(ord("a"), ord("z") + 1)),
              " ".join("0123456789'\".,!?&@#%:-")]
    trainer = trainers.WordLevelTrainer(special_tokens=["<unk>"] + _SPECIALS, min_frequency=1)
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<|endoftext|>",
                                   eos_token="<|im_end|>", model_max_length=4096,
                                   additional_special_tokens=_SPECIALS[1:])
    fast.padding_side = "left"
    return fast


def tiny_config(vocab_size: int, tok):
    """A Qwen2.5-VL config small enough to build and run on a CPU in well under a second."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tok.convert_tokens_to_ids(t) for t in _SPECIALS}
    return Qwen2_5_VLConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": [2, 1, 1]},
                         tie_word_embeddings=True, bos_token_id=ids["<|endoftext|>"],
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True)


def full_size_config(tok):
    """The architecture of Qwen/Qwen2.5-VL-7B-Instruct (its config.json's sizes: 28 layers of width 3584, a
    32-block vision tower, vocabulary 152064), for a random-weight judge of the default's size without a
    download; the special tokens are those of `tok` (the tokenizer trained in code)."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tok.convert_tokens_to_ids(t) for t in _SPECIALS}
    return Qwen2_5_VLConfig(
        text_config=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                          "mrope_section": [16, 24, 24]}, tie_word_embeddings=False),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)


def build_processor(tok=None, max_pixels: int = 56 * 56 * 4):
    """Qwen2.5-VL's processor (its image processor with small max_pixels) around the given tokenizer."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    tok = tok or tokenizer()
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=max_pixels, patch_size=14,
                                            merge_size=2, temporal_patch_size=2)
    return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=Qwen2VLVideoProcessor(),
                               chat_template=CHAT_TEMPLATE)


def build_tiny_vlm(seed: int = 0):
    """(model, processor): a miniature Qwen2_5_VLForConditionalGeneration with random weights."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    tok = tokenizer()
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(len(tok), tok)).eval()
    return model, build_processor(tok)


def save_tiny_vlm(folder: str | Path, seed: int = 0) -> Path:
    """Build the miniature judge and save it in the layout real weights use (save_pretrained)."""
    folder = Path(folder)
    model, processor = build_tiny_vlm(seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
