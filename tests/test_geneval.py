"""GenEval's rules on hand-made detections (every expected value worked out by hand from the original
evaluate_images.py logic), mmdet-style post-processing on hand-made logits, and the miniature random-weight
Mask2Former loaded through the same from_pretrained path as real weights."""

import json

import numpy as np
from test_scoring_clip import tiny_clip  # noqa: F401  (the random-weight open_clip fixture)
import pytest

from evalsuite.metrics import geneval as G


def obj(x1, y1, x2, y2, score=0.95):
    return ([x1, y1, x2, y2, score], None)


def test_relative_position_by_hand():
    # centres (5,5) and (25,5): offset -20 in x, margin 0.1 x (10 + 10) = 2 -> -18 / 20 = -0.9 < -0.5
    assert G.relative_position([0, 0, 10, 10], [20, 0, 30, 10]) == {"left of"}
    assert G.relative_position([20, 0, 30, 10], [0, 0, 10, 10]) == {"right of"}
    # diagonal: offsets (-10, -10) shrink to (-8, -8); / 14.14 = -0.566 on both axes
    assert G.relative_position([0, 0, 10, 10], [10, 10, 20, 20]) == {"left of", "above"}
    assert G.relative_position([0, 20, 10, 30], [0, 0, 10, 10]) == {"below"}
    # within the margin on both axes: no relation at all
    assert G.relative_position([0, 0, 10, 10], [1, 0, 11, 10]) == set()
    # (-12, -8) shrink to (-10, -6); / 14.42 = (-0.693, -0.416): left of, not above
    assert G.relative_position([0, 0, 10, 10], [12, 8, 22, 18]) == {"left of"}


def test_iou_inclusive_pixels():
    # areas 10 x 10 = 100 each, intersection x 5..9 = 5 x 10 = 50, union 150
    assert G.compute_iou([0, 0, 9, 9], [5, 0, 14, 9]) == pytest.approx(1 / 3)
    assert G.compute_iou([0, 0, 9, 9], [20, 20, 29, 29]) == 0


def test_select_objects_thresholds_order_cap_and_overlap():
    cats = [obj(0, 0, 5, 5, 0.5), obj(0, 0, 5, 5, 0.95), obj(0, 0, 5, 5, 0.2), obj(0, 0, 5, 5, 0.31),
            obj(0, 0, 5, 5, 0.3)]
    picked = G.select_objects({"cat": cats, "dog": [obj(0, 0, 1, 1, 0.1)]}, "two_object")
    assert [o[0][4] for o in picked["cat"]] == [0.95, 0.5, 0.31]     # 0.3 itself is not above 0.3
    assert "dog" not in picked
    assert [o[0][4] for o in G.select_objects({"cat": cats}, "counting")["cat"]] == [0.95]   # 0.9 for counting
    many = [obj(0, 0, 5, 5, 0.5 + i / 100) for i in range(20)]
    assert len(G.select_objects({"cat": many}, "single_object")["cat"]) == 16
    # same-class duplicates are kept by default (max_overlap 1.0); with 0.5 the duplicate box goes
    dup = [obj(0, 0, 9, 9, 0.9), obj(0, 0, 9, 9, 0.8), obj(20, 20, 29, 29, 0.7)]
    assert len(G.select_objects({"cat": dup}, "single_object")["cat"]) == 3
    assert [o[0][4] for o in G.select_objects({"cat": dup}, "single_object", max_overlap=0.5)["cat"]] == [0.9, 0.7]


def no_colors(objs, classname):
    raise AssertionError("no colour clause here")


COUNTING = {"tag": "counting", "include": [{"class": "cat", "count": 2}], "exclude": [{"class": "cat", "count": 3}]}


def test_counting_include_and_exclude():
    two, three = [obj(0, 0, 5, 5)] * 2, [obj(0, 0, 5, 5)] * 3
    assert G.evaluate({"cat": two}, COUNTING, no_colors) == (True, "")
    assert G.evaluate({"cat": three}, COUNTING, no_colors) == (False, "expected cat<3, found 3")
    assert G.evaluate({"cat": two[:1]}, COUNTING, no_colors) == (False, "expected cat>=2, found 1")
    assert G.evaluate({}, COUNTING, no_colors) == (False, "expected cat>=2, found 0")


def test_colour_judged_on_the_most_confident_objects_only():
    meta = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}]}
    seen = []

    def classify(objs, classname):
        seen.append((len(objs), classname))
        return ["blue"]

    cars = [obj(0, 0, 5, 5, 0.9), obj(6, 0, 9, 5, 0.5)]     # the red one is second
    assert G.evaluate({"car": cars}, meta, classify) == (False, "expected red car>=1, found 0 red; and 1 blue")
    assert seen == [(1, "car")]
    assert G.evaluate({"car": cars}, meta, lambda o, c: ["red"]) == (True, "")


def test_colour_attribution_two_objects():
    meta = {"tag": "color_attr", "include": [{"class": "vase", "count": 1, "color": "green"},
                                             {"class": "umbrella", "count": 1, "color": "orange"}]}
    colours = {"vase": ["orange"], "umbrella": ["green"]}
    ok, reason = G.evaluate({"vase": [obj(0, 0, 5, 5)], "umbrella": [obj(0, 0, 5, 5)]}, meta,
                            lambda o, c: colours[c])
    assert not ok and reason == ("expected green vase>=1, found 0 green; and 1 orange\n"
                                 "expected orange umbrella>=1, found 0 orange; and 1 green")


POSITION = {"tag": "position", "include": [{"class": "teddy bear", "count": 1},
                                           {"class": "dog", "count": 1, "position": ["right of", 0]}]}


def test_position_rules():
    teddy, right, left = obj(0, 0, 10, 10), obj(20, 0, 30, 10), obj(-20, 0, -10, 10)
    assert G.evaluate({"teddy bear": [teddy], "dog": [right]}, POSITION, no_colors) == (True, "")
    assert G.evaluate({"teddy bear": [teddy], "dog": [left]}, POSITION, no_colors) == \
        (False, "expected dog right of target, found left of target")
    assert G.evaluate({"teddy bear": [teddy], "dog": [obj(1, 0, 11, 10)]}, POSITION, no_colors) == \
        (False, "expected dog right of target, found  target")      # no relation: the original's empty join
    assert G.evaluate({"dog": [right]}, POSITION, no_colors) == \
        (False, "expected teddy bear>=1, found 0\nno target for dog to be right of")
    # only the most confident dog counts: a second dog on the left is never looked at
    assert G.evaluate({"teddy bear": [teddy], "dog": [right, obj(-20, 0, -10, 10, 0.5)]}, POSITION, no_colors)[0]


def test_tag_accuracy_and_overall_mean_of_tags():
    acc = G.tag_accuracy([("single_object", True), ("single_object", False), ("counting", True),
                          ("counting", True), ("counting", False), ("counting", True)])
    assert acc == {"single_object": 0.5, "counting": 0.75}
    assert G.overall(acc) == pytest.approx(0.625)      # not the pooled 4/6
    assert G.overall({}) is None


def test_metadata_errors_name_the_clause():
    assert G.metadata_errors(COUNTING) == []
    assert G.metadata_errors(POSITION) == []
    bad = {"tag": "position", "include": [{"class": "dog", "count": 1, "position": ["beside", 0]}]}
    assert "include[0]: 'position' must be" in G.metadata_errors(bad)[0]
    assert G.metadata_errors({"tag": "x", "include": [{"class": "dog", "count": 0, "color": "teal"}]}) == [
        "include[0]: 'count' must be an integer >= 1",
        "include[0]: 'color' must be one of red, orange, yellow, green, blue, purple, pink, brown, black, white"]


def test_colour_templates_are_genevals():
    p = G.color_prompts("car")
    assert len(p) == 10 and p[0] == ["a photo of a red car", "a photo of a red-colored car", "a photo of a red object"]


def test_mmdet_style_instances_on_hand_made_logits():
    torch = pytest.importorskip("torch")
    from evalsuite.scoring.geneval import COCO_NAMES, instances

    cls = torch.full((1, 81), -20.0)
    cls[0, COCO_NAMES.index("cat")] = 10.0                   # P(cat) = 1 / (1 + 80 e^-30) ~ 1
    masks = torch.full((1, 4, 8), -10.0)
    masks[0, 2:4, 1:6] = 10.0                                # rows 2-3, columns 1-5
    out = instances(cls, masks, torch.ones(4, 8, dtype=torch.bool), (4, 8))
    box, mask = out["cat"][0]
    assert box[:4] == [1.0, 2.0, 6.0, 4.0]                   # x_max + 1, y_max + 1, as mmdet's mask2bbox
    assert box[4] == pytest.approx(1 / (1 + np.exp(-10)), abs=1e-6)   # P(cat) x mean mask probability
    assert mask.sum() == 10
    picked = G.select_objects(out, "single_object")
    assert list(picked) == ["cat"]


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory):
    """A miniature random-weight Mask2Former (Swin backbone) saved like a hub checkpoint."""
    torch = pytest.importorskip("torch")
    from transformers import (Mask2FormerConfig, Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor,
                              SwinConfig)

    backbone = SwinConfig(embed_dim=32, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4, image_size=64,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    cfg = Mask2FormerConfig(backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32,
                            encoder_feedforward_dim=32, dim_feedforward=32, encoder_layers=1, decoder_layers=2,
                            num_attention_heads=2, num_queries=10, num_labels=80)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-mask2former")
    Mask2FormerForUniversalSegmentation(cfg).save_pretrained(folder)
    Mask2FormerImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}, size_divisor=32).save_pretrained(folder)
    return folder


def test_tiny_detector_through_from_pretrained(tiny_detector):
    from PIL import Image

    from evalsuite.scoring.geneval import Detector, detector_identity

    det = Detector(str(tiny_detector), "cpu")
    assert det.revision == detector_identity(str(tiny_detector)) and det.revision.startswith("local:")
    # mmdet's test pipeline: 80 x 64 fits 1333 x 800 at 12.5x (short side 800), padded with zeros to a multiple of 32
    pixels, mask = det.inputs(Image.new("RGB", (80, 64), "red"))
    assert pixels.shape == (1, 3, 800, 1024) and mask.shape == (1, 800, 1024) and int(mask.sum()) == 800 * 1000
    assert float(pixels[..., 1000:].abs().max()) == 0.0
    im = Image.new("RGB", (80, 64), "red")
    out = det.detect(im)
    n = sum(len(v) for v in out.values())
    assert n == 100                                           # the top 100 (query, class) pairs of 10 x 80
    for objs in out.values():
        for box, mask in objs:
            assert mask.shape == (64, 80) and 0 <= box[4] <= 1 and box[0] <= box[2] <= 80


def test_unavailable_detector_is_a_reason(monkeypatch, tmp_path):
    from evalsuite.scoring.base import ScorerUnavailable
    from evalsuite.scoring.geneval import GenevalScorer
    from evalsuite.scoring.base import ScoreOptions

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EVALSUITE_GENEVAL_DETECTOR", "nobody-org/no-such-mask2former")
    (unit,) = GenevalScorer.from_options(ScoreOptions())
    with pytest.raises(ScorerUnavailable, match="GenEval detector nobody-org/no-such-mask2former unavailable "
                                                "\\(offline, not in the local cache\\)"):
        unit.load({})


def test_shipped_geneval_prompts_carry_their_metadata():
    from evalsuite.importers import import_file
    from evalsuite.protocols import GENEVAL_METADATA

    ps = import_file("geneval", GENEVAL_METADATA)
    assert len(ps.prompts) == 553
    counts = {}
    for p in ps.prompts:
        assert p.geneval["tag"] == p.category and G.metadata_errors(p.geneval) == []
        counts[p.category] = counts.get(p.category, 0) + 1
    assert counts == {"single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100,
                      "color_attr": 100}
    pos = next(p for p in ps.prompts if p.prompt == "a photo of a dog right of a teddy bear")
    assert pos.geneval["include"][1] == {"class": "dog", "count": 1, "position": ["right of", 0]}
    # a prompt without GenEval metadata hashes as before the field existed
    from evalsuite.promptset import Prompt

    plain = Prompt(id="a", prompt="a cat")
    assert "geneval" not in plain.hash_dump()


def test_bad_geneval_metadata_names_file_line_and_field(tmp_path):
    from evalsuite.errors import EvalsuiteError
    from evalsuite.importers import import_geneval

    f = tmp_path / "m.jsonl"
    f.write_text(json.dumps({"tag": "colors", "prompt": "a teal car",
                             "include": [{"class": "car", "count": 1, "color": "teal"}]}) + "\n")
    with pytest.raises(EvalsuiteError, match=r"m.jsonl: line 1: field 'geneval' metadata: include\[0\]: 'color'"):
        import_geneval(f)


def test_masked_crop_is_grey_outside_the_mask():
    from PIL import Image

    from evalsuite.scoring.geneval import masked_crop

    im = Image.new("RGB", (8, 4), (255, 0, 0))
    mask = np.zeros((4, 8), dtype=bool)
    mask[1:3, 2:4] = True
    crop = masked_crop(im, [1, 0, 5, 4, 0.9], mask)
    assert crop.size == (4, 4)
    px = np.asarray(crop)
    assert (px[1:3, 1:3] == [255, 0, 0]).all()                    # the object keeps its pixels
    assert (px[0] == [0x99, 0x99, 0x99]).all() and (px[:, 3] == [0x99, 0x99, 0x99]).all()


def test_colour_classifier_through_the_clip_loader(tiny_clip):
    import torch
    from PIL import Image

    from evalsuite.scoring.clip import load_clip, parse_clip_model
    from evalsuite.scoring.geneval import ColorClassifier

    cfg, ckpt = tiny_clip
    cm = load_clip(parse_clip_model(f"{cfg}:{ckpt}"), "cpu")
    clf = ColorClassifier(cm)
    w = clf.weights("car")
    assert w.shape == (16, 10)
    texts = G.color_prompts("car")[3]                               # green: the three templates
    e = cm.encode_texts(texts).mean(0)
    assert torch.allclose(w[:, 3], e / e.norm(), atol=1e-6)          # normalised, averaged, normalised
    # open_clip's default eval transform (what GenEval's create_model_and_transforms gives), not ours "longest"
    import open_clip

    _, _, default = open_clip.create_model_and_transforms("tiny-clip-test", pretrained=None)
    odd = Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype("uint8"))
    assert torch.equal(clf.transform(odd), default(odd))
    im = Image.new("RGB", (32, 32), (0, 200, 0))
    colours = clf(im, [([0, 0, 16, 16, 0.9], None), ([8, 8, 32, 32, 0.8], np.ones((32, 32), dtype=bool))], "car")
    assert len(colours) == 2 and set(colours) <= set(G.COLORS)


def test_a_detector_error_is_that_images_reason_and_the_pass_goes_on():
    """score_items' contract: an engine error (here the detector raising, as CUDA out of memory would) is the
    item's reason string (recorded missing, not cached); the other images are still judged."""
    from types import SimpleNamespace

    from PIL import Image

    from evalsuite.scoring.base import ScoreOptions
    from evalsuite.scoring.geneval import GenevalScorer

    good, bad = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")

    class Boom:
        revision = "test"

        def detect(self, image):
            if image is bad:
                raise RuntimeError("CUDA out of memory\nmore lines")
            return {"cat": [obj(0, 0, 4, 4, 0.9)]}

    (unit,) = GenevalScorer.from_options(ScoreOptions())
    unit._detector, unit._colors, unit._clip_reason = Boom(), None, None
    meta = {"tag": "single_object", "include": [{"class": "cat", "count": 1}]}
    jobs = [SimpleNamespace(prompt=SimpleNamespace(geneval=meta)) for _ in range(3)]
    out = unit.score_batch(jobs, [good, bad, good], None)
    assert out[0] == out[2] and out[0][0] == {("geneval", "single_object"): 1.0}
    assert out[1] == ("GenEval judging failed (RuntimeError: CUDA out of memory); rerun `evalsuite score` to "
                      "retry")
    # CLIP raising while it loads (not "unavailable": e.g. out of memory) is the colour image's reason too
    def oom():
        raise RuntimeError("CUDA out of memory")

    unit._color_fn = oom
    colour = {"tag": "colors", "include": [{"class": "cat", "count": 1, "color": "red"}]}
    out = unit.score_batch([SimpleNamespace(prompt=SimpleNamespace(geneval=colour)), jobs[0]], [good, good], None)
    assert out[0] == "GenEval judging failed (RuntimeError: CUDA out of memory); rerun `evalsuite score` to retry"
    assert out[1][0] == {("geneval", "single_object"): 1.0}


def test_equal_scores_keep_the_originals_order_later_object_first():
    """GenEval orders by np.argsort(scores)[::-1]: for [0.8 (a), 0.9 (b), 0.8 (c)] the ascending argsort is
    [0, 2, 1], reversed [1, 2, 0]: b, then c before a (the later of the tied objects first)."""
    a, b, c = obj(0, 0, 5, 5, 0.8), obj(10, 10, 15, 15, 0.9), obj(20, 20, 25, 25, 0.8)
    picked = G.select_objects({"cat": [a, b, c]}, "single_object")["cat"]
    assert [o[0][0] for o in picked] == [10, 20, 0]
    # two tied objects: the later one first (it is the one a `count` of 1 keeps)
    assert G.select_objects({"cat": [a, c]}, "single_object")["cat"][0] is c
