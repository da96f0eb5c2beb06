"""The GenEval scorer (`--scorers geneval`): an instance-segmentation detector and CLIP colour classification,
judged by GenEval's rules (metrics/geneval.py; definitions and differences from the original: docs/protocols.md).

Detector: Mask2Former through transformers (`Mask2FormerForUniversalSegmentation` and its image processor),
chosen by $EVALSUITE_GENEVAL_DETECTOR:
    ORG/REPO[@REVISION]   a hub repository (default facebook/mask2former-swin-small-coco-instance); the resolved
                          commit is recorded as the revision
    /path/folder          a local `save_pretrained` folder (identity: local:<sha256 of its files>[:16]); the tests'
                          miniature random-weight detector is one
Labels are taken by index as the 80 COCO classes under GenEval's names (`object_names.txt`: "tv remote",
"computer mouse", ...), as the original indexes mmdet's per-class results.

Pre-processing follows mmdet's test pipeline (the config GenEval loads): resized keeping the ratio to fit
1333 x 800, normalised with the ImageNet mean and std, zero-padded to a multiple of 32 (`Detector.inputs`).
Post-processing follows mmdet's Mask2Former instance head: the top 100 (query, class) pairs by class probability,
each mask's logits upsampled to the processed image, cropped to its unpadded part and resized to the image,
binary at sigmoid > 0.5, score = class probability x the mean mask probability inside the binary mask, box =
the binary mask's extent (x_max + 1, y_max + 1).

Colour: CLIP (the --clip-model, default ViT-L-14:openai, GenEval's) on each object's masked crop (outside the
mask grey #999, cropped to its box), with open_clip's default eval transform (shortest side resized, centre
crop) and, per class name, a zero-shot classifier over GenEval's 10 colours from its three templates
(embeddings normalised, averaged, normalised). CLIP is loaded only for prompts with a colour clause; without it
those images' metric is missing with the reason.

Weights are never replaced by random ones: a detector that cannot be had makes every geneval metric missing.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from ..errors import EvalsuiteError
from ..metrics import geneval as G
from .base import Scorer, ScoreOptions, ScorerUnavailable

DEFAULT_DETECTOR = "facebook/mask2former-swin-small-coco-instance"
DETECTOR_ENV = "EVALSUITE_GENEVAL_DETECTOR"
GENEVAL_SCORER_VERSION = "geneval/v1"
MAX_PER_IMAGE = 100
TEST_SCALE = (1333, 800)   # mmdet's Mask2Former COCO test pipeline: Resize(img_scale=(1333, 800), keep_ratio=True)
PAD_DIVISOR = 32
COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "computer mouse", "tv remote", "computer keyboard", "cell phone", "microwave", "oven", "toaster",
    "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush")


def detector_source(value: str | None = None) -> str:
    return (value or os.environ.get(DETECTOR_ENV) or DEFAULT_DETECTOR).strip()


def _folder_hash(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return _hash_files(str(folder), tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@functools.lru_cache(maxsize=8)
def _hash_files(folder: str, files: tuple) -> str:
    """sha256 over the files' relative names and contents; cached per (name, size, mtime) list, so a large local
    checkpoint is read once per process, not at every option check."""
    h = hashlib.sha256()
    for name, _, _ in files:
        h.update(Path(name).relative_to(folder).as_posix().encode())
        h.update(hashlib.sha256(Path(name).read_bytes()).digest())
    return h.hexdigest()[:16]


def detector_identity(source: str) -> str:
    """What the scores are keyed by: `local:<hash>` for a folder, the repository (and asked revision) otherwise."""
    p = Path(source)
    if p.is_dir():
        return f"local:{_folder_hash(p)}"
    if p.exists() or source.startswith((".", "/")):
        raise EvalsuiteError(f"${DETECTOR_ENV} '{source}': not a folder with a saved Mask2Former model")
    return source


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _resolve(source: str) -> tuple[str, str]:
    """(local folder to load from, revision recorded): a hub repository is fetched (or found in the cache)."""
    if Path(source).is_dir():
        return source, detector_identity(source)
    from huggingface_hub import snapshot_download

    repo, _, rev = source.partition("@")
    folder = snapshot_download(repo, revision=rev or None, local_files_only=_offline(),
                               allow_patterns=["*.json", "*.safetensors", "*.txt"])
    if not any(Path(folder).glob("*.safetensors")):   # an older repository: PyTorch weights only
        folder = snapshot_download(repo, revision=rev or None, local_files_only=_offline(),
                                   allow_patterns=["*.json", "*.bin", "*.txt"])
    return folder, Path(folder).name


class Detector:
    """A loaded Mask2Former and its image processor; `detect(image)` -> GenEval's per-class objects."""

    def __init__(self, source: str, device: str | None = None):
        import torch
        from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

        folder, self.revision = _resolve(source)
        auto = not device or device == "auto"
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if auto else device
        self.model = Mask2FormerForUniversalSegmentation.from_pretrained(folder, local_files_only=True).to(self.device)
        self.model.eval()
        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        n = self.model.config.num_labels
        if n != len(COCO_NAMES):
            raise ScorerUnavailable(f"detector {source} has {n} classes, GenEval needs the 80 COCO classes")

    def detect(self, image) -> dict[str, list[tuple[list[float], Any]]]:
        import torch

        pixels, mask = self.inputs(image)
        with torch.no_grad():
            out = self.model(pixel_values=pixels.to(self.device), pixel_mask=mask.to(self.device))
        return instances(out.class_queries_logits[0], out.masks_queries_logits[0], mask[0], (image.height, image.width))

    def inputs(self, image):
        """mmdet's test pipeline: resized keeping the ratio to fit TEST_SCALE (long side <= 1333, short side 800),
        normalised by the processor (ImageNet mean and std), then zero-padded (not stretched) to a multiple of 32."""
        import torch
        import torch.nn.functional as F

        x = self.processor(images=[image.convert("RGB")], return_tensors="pt", size_divisor=0,
                           size={"shortest_edge": TEST_SCALE[1], "longest_edge": TEST_SCALE[0]})
        pixels = x["pixel_values"]
        h, w = pixels.shape[-2:]
        ph, pw = -(-h // PAD_DIVISOR) * PAD_DIVISOR, -(-w // PAD_DIVISOR) * PAD_DIVISOR
        mask = torch.zeros((1, ph, pw), dtype=torch.long)
        mask[:, :h, :w] = 1
        return F.pad(pixels, (0, pw - w, 0, ph - h)), mask


def instances(class_logits, mask_logits, pixel_mask, size: tuple[int, int], max_per_image: int = MAX_PER_IMAGE):
    """mmdet's Mask2Former instance post-processing (see the module docstring) -> {class name: [(box, mask)]},
    box = [x1, y1, x2, y2, score] and mask a boolean numpy array of the image's size."""
    import torch
    import torch.nn.functional as F

    probs = class_logits.float().softmax(-1)[:, :-1]
    n_classes = probs.shape[1]
    scores, idx = probs.flatten().topk(min(max_per_image, probs.numel()))
    labels, queries = idx % n_classes, idx // n_classes
    used, inverse = torch.unique(queries, return_inverse=True)   # each query's mask is upsampled once
    masks = F.interpolate(mask_logits.float()[used][None], size=tuple(pixel_mask.shape[-2:]), mode="bilinear",
                          align_corners=False)[0]
    vh, vw = int(pixel_mask.any(1).sum()), int(pixel_mask.any(0).sum())
    masks = F.interpolate(masks[None, :, :vh, :vw], size=size, mode="bilinear", align_corners=False)[0][inverse]
    prob = masks.sigmoid()
    binary = prob > 0.5
    mask_scores = (prob * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
    det = (scores * mask_scores).cpu().numpy()
    out: dict[str, list[tuple[list[float], Any]]] = {}
    for k in range(len(det)):
        m = binary[k]
        ys, xs = torch.where(m)
        box = [float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1] if len(xs) else [0.0] * 4
        out.setdefault(COCO_NAMES[int(labels[k])], []).append((box + [float(det[k])], m.cpu().numpy()))
    return out


def masked_crop(image, box, mask):
    """GenEval's colour input: the image with everything outside the object's mask grey (#999), cropped to its box."""
    from PIL import Image

    rgb = image.convert("RGB")
    if mask is not None:
        rgb = Image.composite(rgb, Image.new("RGB", rgb.size, color=G.BACKGROUND), Image.fromarray(mask))
    return rgb.crop(tuple(box[:4]))


class ColorClassifier:
    """GenEval's colour judgement with an open_clip model (scoring/clip.py's ClipModel)."""

    def __init__(self, cm):
        import open_clip

        self.cm = cm
        cfg = getattr(cm.model.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size") or cm.model.visual.image_size
        self.transform = open_clip.image_transform(size, is_train=False, mean=cfg.get("mean"), std=cfg.get("std"),
                                                   resize_mode="shortest")
        self._weights: dict[str, Any] = {}

    def weights(self, classname: str):
        if classname not in self._weights:
            rows = []
            for texts in G.color_prompts(classname):
                e = self.cm.encode_texts(texts).mean(0)
                rows.append(e / e.norm())
            import torch

            self._weights[classname] = torch.stack(rows, dim=1)
        return self._weights[classname]

    def __call__(self, image, objects, classname: str) -> list[str]:
        import torch

        crops = [self.transform(masked_crop(image, box, mask)) for box, mask in objects]
        with torch.no_grad():
            f = self.cm.model.encode_image(torch.stack(crops).to(self.cm.device)).float()
        f = f / f.norm(dim=-1, keepdim=True)
        return [G.COLORS[int(i)] for i in (100.0 * f @ self.weights(classname)).argmax(1)]


def _uses_color(meta: dict | None) -> bool:
    return bool(meta) and any("color" in c for c in meta.get("include", []))


def judge_image(image, meta: dict, detector: Detector, colors) -> tuple[dict, dict]:
    """(values, details) of one image: the detector's objects selected by GenEval's rules and its verdict.
    `colors(image, objects, classname)` classifies objects' colours (called only for colour clauses)."""
    objects = G.select_objects(detector.detect(image), meta["tag"])

    def classify(objs, classname):
        return colors(image, objs, classname)

    correct, reason = G.evaluate(objects, meta, classify)
    details = {"tag": meta["tag"], "correct": correct, "reason": reason,
               "objects": {k: [[round(float(x), 3) for x in box] for box, _ in v] for k, v in objects.items()},
               "threshold": G.threshold_for(meta["tag"]), "detector_revision": detector.revision}
    return {("geneval", meta["tag"]): float(correct)}, details


class GenevalScorer(Scorer):
    """GenEval's per-image `correct` (metric geneval, variant = the prompt's tag) for prompts with GenEval metadata."""

    kind = "geneval"

    @classmethod
    def check_options(cls, opts: ScoreOptions) -> None:
        from .clip import parse_clip_model

        parse_clip_model(opts.clip_model)
        detector_identity(detector_source())

    @classmethod
    def from_options(cls, opts: ScoreOptions) -> list[Scorer]:
        from .clip import parse_clip_model

        cls.check_options(opts)
        det = detector_identity(detector_source())
        clip = parse_clip_model(opts.clip_model).identity
        ident = {"scorer": "geneval", "version": GENEVAL_SCORER_VERSION, "detector": det, "clip": clip,
                 "rules": {"threshold": G.THRESHOLD, "counting_threshold": G.COUNTING_THRESHOLD,
                           "max_objects": G.MAX_OBJECTS, "max_overlap": G.MAX_OVERLAP,
                           "position_threshold": G.POSITION_THRESHOLD, "background": G.BACKGROUND}}
        return [cls("geneval", det, GENEVAL_SCORER_VERSION, ident, options=opts)]

    def inputs(self, prompt) -> dict[str, Any]:
        return {"prompt": prompt.prompt, "geneval": prompt.geneval}

    def metrics_for(self, prompt) -> list[tuple[str, str]]:
        return [("geneval", prompt.geneval["tag"])] if prompt.geneval else []

    def load(self, entry: dict[str, Any]) -> None:
        source = detector_source()
        try:
            self._detector = Detector(source, self.options.device)
        except ScorerUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to get the weights is the stored reason
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            where = "offline, not in the local cache" if _offline() else "could not be loaded"
            raise ScorerUnavailable(f"GenEval detector {source} unavailable ({where}): {first}") from None
        self._colors = None
        self._clip_reason: str | None = None

    def _color_fn(self):
        """The colour classifier, loaded on first need; None (with _clip_reason) when CLIP cannot be had."""
        if self._colors is None and self._clip_reason is None:
            from .clip import ClipUnavailable, load_clip, parse_clip_model

            try:
                self._colors = ColorClassifier(load_clip(parse_clip_model(self.options.clip_model),
                                                         self.options.device))
            except ClipUnavailable as e:
                self._clip_reason = f"colour needs CLIP: {e}"
        return self._colors

    def score_batch(self, jobs, images, store) -> list:
        """One result per job. An image that cannot be judged (CLIP unavailable for a colour clause, the detector
        or CLIP raised) is its reason string: recorded missing with it and never cached, so a rerun retries."""
        out = []
        for job, image in zip(jobs, images):
            meta = job.prompt.geneval
            if not meta:
                out.append(({}, {"note": "prompt has no GenEval metadata"}))
                continue
            try:
                colors = self._color_fn() if _uses_color(meta) else None
                if _uses_color(meta) and colors is None:
                    out.append(self._clip_reason)
                    continue
                out.append(judge_image(image, meta, self._detector, colors))
            except Exception as e:  # noqa: BLE001 - an engine error (e.g. CUDA out of memory) is this item's reason
                first = (str(e).strip().splitlines() or [""])[0][:200]
                out.append(f"GenEval judging failed ({type(e).__name__}: {first}); rerun `evalsuite score` to retry")
        return out
