"""CLIP scorer with a tiny random open_clip model (plumbing and formulas only: its numbers mean nothing)."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.errors import EvalsuiteError
from evalsuite.scoring.clip import (ClipModel, clip_s_from_cosine, clip_score_from_cosine, load_clip,
                                    parse_clip_model, rank_against_negatives, score_batch)

TINY_CFG = {"embed_dim": 16, "quick_gelu": True,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """(config.json, checkpoint.pt) of a random-weight open_clip model, loaded like a local checkpoint."""
    import open_clip

    d = tmp_path_factory.mktemp("tinyclip")
    cfg = d / "tiny-clip-test.json"
    cfg.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(cfg)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-clip-test", pretrained=None)
    torch.save(model.state_dict(), d / "tiny.pt")
    return cfg, d / "tiny.pt"


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(32, 32), (64, 32), (24, 48), (40, 40), (32, 32), (50, 20)]
    return [Image.fromarray(rng.integers(0, 255, (sizes[i % 6][1], sizes[i % 6][0], 3), dtype=np.uint8))
            for i in range(n)]


PROMPTS = ["a red cube left of a blue sphere", "three green apples in a bowl", "a neon sign that says open",
           "a cat chef whisking eggs", "a street sign main st", "fresh coffee on a chalkboard"]
NEGS = [["a blue cube left of a red sphere", "a red cube right of a blue sphere"], ["two green apples in a bowl"],
        [], ["a dog chef whisking eggs"], ["a street sign main st"], []]


def test_parse_clip_model_identity_and_errors(tiny_clip):
    cfg, ckpt = tiny_clip
    spec = parse_clip_model(f"{cfg}:{ckpt}")
    assert spec.name == "tiny-clip-test" and spec.checkpoint == str(ckpt)
    assert spec.identity.startswith("tiny-clip-test:local:")
    assert parse_clip_model(None).identity == "ViT-L-14:openai"
    for bad in ("ViT-L-14", "NoSuchNet:openai", "ViT-L-14:nosuchtag", "ViT-B-32:/does/not/exist.pt"):
        with pytest.raises(EvalsuiteError):
            parse_clip_model(bad)


def test_batched_equals_one_by_one_and_formulas(tiny_clip):
    cfg, ckpt = tiny_clip
    cm = load_clip(parse_clip_model(f"{cfg}:{ckpt}"), "cpu")
    imgs = images(6)
    batched = score_batch(cm, imgs, PROMPTS, NEGS)
    single = [score_batch(cm, [im], [p], [n])[0] for im, p, n in zip(imgs, PROMPTS, NEGS)]
    for b, s, negs in zip(batched, single, NEGS):
        assert b["details"]["cosine"] == pytest.approx(s["details"]["cosine"], abs=1e-5)
        cos = b["details"]["cosine"]
        assert b["values"][("clip_score", "")] == pytest.approx(100 * max(cos, 0.0))
        assert b["values"][("clip_s", "")] == pytest.approx(2.5 * max(cos, 0.0))
        assert (("prompt_following", "") in b["values"]) == bool(negs)
        if negs:
            ncos = [n["cosine"] for n in b["details"]["negatives"]]
            assert b["details"]["rank"] == 1 + sum(c >= cos for c in ncos)
            assert b["values"][("prompt_following", "")] == float(all(cos > c for c in ncos))
    # a negative identical to the prompt ties: never "strictly above", so not accurate
    assert batched[4]["details"]["rank"] == 2 and batched[4]["values"][("prompt_following", "")] == 0.0
    # the embeddings are L2-normalised: cosine within [-1, 1], and the same as a manual computation
    e_i, e_t = cm.encode_images(imgs[:1]), cm.encode_texts(PROMPTS[:1])
    assert float(e_i.norm()) == pytest.approx(1.0, abs=1e-5)
    assert batched[0]["details"]["cosine"] == pytest.approx(float(e_i @ e_t.T), abs=1e-5)


def test_clamp_and_ranking_pure():
    assert clip_score_from_cosine(-0.25) == 0.0 and clip_s_from_cosine(-0.25) == 0.0
    assert clip_score_from_cosine(0.3125) == pytest.approx(31.25)
    assert clip_s_from_cosine(0.4) == pytest.approx(1.0)
    assert rank_against_negatives(0.3, [0.1, 0.2]) == (1, True)
    assert rank_against_negatives(0.3, [0.3, 0.2]) == (2, False)
    assert rank_against_negatives(0.1, [0.5, 0.2]) == (3, False)


def test_long_prompt_truncated_keeping_end_token(tiny_clip):
    cfg, ckpt = tiny_clip
    cm = load_clip(parse_clip_model(f"{cfg}:{ckpt}"), "cpu")
    long = "a very long prompt " * 30
    out = score_batch(cm, images(1), [long], [[]])[0]
    assert out["details"]["prompt_truncated"] is True
    assert score_batch(cm, images(1), ["short"], [[]])[0]["details"]["prompt_truncated"] is False
    tokens = cm.tokenizer([long])[0]
    assert tokens.shape[0] == 77 and int(tokens[-1]) == cm.tokenizer.eot_token_id


def _tiny_transformers_clip(folder):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder.mkdir(parents=True)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    proc = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                            crop_size={"height": 32, "width": 32}), tokenizer=tok)
    torch.manual_seed(0)
    eos = vocab["<|endoftext|>"]
    cfg = CLIPConfig(text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                      num_hidden_layers=2, max_position_embeddings=77, eos_token_id=eos,
                                      bos_token_id=vocab["<|startoftext|>"], pad_token_id=eos),
                     vision_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                        image_size=32, patch_size=8), projection_dim=16)
    CLIPModel(cfg).save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


class _Features(torch.nn.Module):
    """transformers 5 returns model outputs from get_*_features where torchmetrics 1.9 expects tensors."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    def get_image_features(self, *a, **k):
        out = self.model.get_image_features(*a, **k)
        return out if torch.is_tensor(out) else out.pooler_output

    def get_text_features(self, *a, **k):
        out = self.model.get_text_features(*a, **k)
        return out if torch.is_tensor(out) else out.pooler_output


def test_cross_check_torchmetrics_clip_score(tmp_path):
    from torchmetrics.functional.multimodal import clip_score as tm_clip_score
    from transformers import CLIPModel, CLIPProcessor

    folder = _tiny_transformers_clip(tmp_path / "openai-tiny-clip")
    model, proc = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    loader = lambda: (_Features(model), proc)  # noqa: E731
    # our scorer on the same model, through score_batch (adapter: HF processor as transform and tokenizer)
    cm = ClipModel(spec=None, model=type("M", (), {
        "encode_image": lambda self, x: _Features(model).get_image_features(pixel_values=x),
        "encode_text": lambda self, ids: _Features(model).get_text_features(input_ids=ids),
    })(), preprocess=lambda im: proc(images=im, return_tensors="pt")["pixel_values"][0],
        tokenizer=lambda texts: proc(text=texts, return_tensors="pt", padding=True)["input_ids"],
        context_length=77, device="cpu")
    imgs = images(6, seed=3)
    prompts = ["abc", "zz top", "open 24", "cafe", "x y z", "main st"]
    ours = [o["values"][("clip_score", "")] for o in score_batch(cm, imgs, prompts, [[]] * 6)]
    raw = []
    for im, p, mine in zip(imgs, prompts, ours):
        t = torch.from_numpy(np.array(im)).permute(2, 0, 1)
        theirs = float(tm_clip_score(t, p, model_name_or_path=loader).detach())   # one sample: mean clamp == per-sample clamp
        assert mine == pytest.approx(theirs, abs=1e-4)
        raw.append(100 * score_batch(cm, [im], [p], [[]])[0]["details"]["cosine"])
    # over a batch torchmetrics clamps the mean of raw scores, not each sample
    ts = [torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in imgs]
    batch = float(tm_clip_score(ts, prompts, model_name_or_path=loader).detach())
    assert batch == pytest.approx(max(float(np.mean(raw)), 0.0), abs=1e-4)


def test_score_run_with_local_clip_then_another_model_beside(demo_run, tmp_path, tiny_clip):
    import evalsuite

    cfg, ckpt = tiny_clip
    d = tmp_path / "run"
    shutil.copytree(demo_run, d)
    spec = f"{cfg}:{ckpt}"
    r1 = evalsuite.score(d, "clip", clip_model=spec, progress=False, log=lambda m: None)
    assert list(r1.counts.values())[0].scored == 18
    df = evalsuite.load_scores(d)
    assert set(df["metric"]) == {"clip_score", "clip_s", "prompt_following"}
    assert df["missing_reason"].isna().all() and df["model"].str.startswith("tiny-clip-test:local:").all()
    # prompt_following only where the prompt has negatives (every smoke prompt has them)
    assert len(df[df.metric == "prompt_following"]) == 18
    r2 = evalsuite.score(d, "clip", clip_model=spec, progress=False, log=lambda m: None)
    c = list(r2.counts.values())[0]
    assert (c.scored, c.cached) == (0, 18)
    # another CLIP model (offline: unavailable) adds rows beside the old ones, missing with the reason
    evalsuite.score(d, "clip", progress=False, log=lambda m: None)
    df2 = evalsuite.load_scores(d)
    assert set(df2["model"]) == {df["model"].iloc[0], "ViT-L-14:openai"}
    old = df2[df2.model == df["model"].iloc[0]]
    assert old["value"].notna().all() and len(old) == len(df)
    new = df2[df2.model == "ViT-L-14:openai"]
    assert new["value"].isna().all()
    assert new["missing_reason"].str.startswith("CLIP weights ViT-L-14:openai unavailable").all()
    agg = evalsuite.aggregate(d)
    row = agg[(agg.backend == "flux-tiny") & (agg.metric == "clip_score") & (agg.model == df["model"].iloc[0])].iloc[0]
    per_prompt = old[(old.backend == "flux-tiny") & (old.metric == "clip_score")].groupby("prompt_id")["value"].mean()
    assert row["mean"] == pytest.approx(per_prompt.mean()) and row["n_prompts"] == 6 and row["n_items"] == 12
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
