"""GenEval's decision rules (Ghosh et al. 2023, "GenEval: An Object-Focused Framework for Evaluating Text-to-Image
Alignment", MIT licence), as pure functions over detections: no model, no image file. The definitions follow the
original evaluation script; docs/protocols.md says where ours differs.

Detections: per class name, a list of objects `(box, mask)` with box = [x1, y1, x2, y2, score] in pixels and mask a
boolean HxW array (or None). Metadata: {"tag", "include": [{class, count, color?, position?: [relation, group]}],
"exclude": [{class, count}]}.

    select_objects(by_class, tag)        per class: score above the threshold (0.3; 0.9 for the counting tag), most
                                         confident first, at most 16, same-class overlaps kept (max_overlap 1.0 =
                                         no suppression, the original's default)
    relative_position(box_a, box_b)      the relations of A to B ("left of", "right of", "above", "below") from the
                                         box centres, each box's size times the 0.1 margin taken off the offset
    evaluate(objects, metadata, colors)  (correct, reason): every include clause (AND), no exclude clause (OR);
                                         colours and positions judged on the most confident objects only
    tag_accuracy / overall               per tag: share of correct images; overall: mean of the tags' shares
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

THRESHOLD = 0.3
COUNTING_THRESHOLD = 0.9
MAX_OBJECTS = 16
MAX_OVERLAP = 1.0          # GenEval's NMS threshold default: 1.0 disables suppression
POSITION_THRESHOLD = 0.1
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
RELATIONS = ("left of", "right of", "above", "below")
COLOR_TEMPLATES = ("a photo of a {c} {classname}", "a photo of a {c}-colored {classname}", "a photo of a {c} object")
BACKGROUND = "#999"        # the grey that replaces everything outside an object's mask before colour classification


def color_prompts(classname: str) -> list[list[str]]:
    """Per colour (in COLORS order), the three texts CLIP embeds and averages into that colour's classifier."""
    return [[t.format(c=c, classname=classname) for t in COLOR_TEMPLATES] for c in COLORS]


def compute_iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """IoU with GenEval's inclusive pixel areas ((x2 - x1 + 1) * (y2 - y1 + 1))."""
    def area(b):
        return max(b[2] - b[0] + 1, 0) * max(b[3] - b[1] + 1, 0)

    inter = area([max(box_a[0], box_b[0]), max(box_a[1], box_b[1]), min(box_a[2], box_b[2]), min(box_a[3], box_b[3])])
    union = area(box_a) + area(box_b) - inter
    return inter / union if union else 0.0


def threshold_for(tag: str) -> float:
    return COUNTING_THRESHOLD if tag == "counting" else THRESHOLD


def select_objects(by_class: Mapping[str, Sequence[tuple[Any, Any]]], tag: str, *, max_objects: int = MAX_OBJECTS,
                   max_overlap: float = MAX_OVERLAP) -> dict[str, list[tuple[Any, Any]]]:
    """The objects GenEval keeps per class: score strictly above the tag's threshold, sorted by score (highest
    first: GenEval's `np.argsort(scores)[::-1]`, so on equal scores the later object comes first), the first
    `max_objects`, then greedy suppression of same-class boxes with IoU >= max_overlap (none at the default 1.0).
    Classes with no object left are absent."""
    import numpy as np

    thr = threshold_for(tag)
    out: dict[str, list[tuple[Any, Any]]] = {}
    for name, objs in by_class.items():
        order = [int(i) for i in np.argsort([float(o[0][4]) for o in objs])[::-1]]   # the original's, ties too
        order = [i for i in order if float(objs[i][0][4]) > thr][:max_objects]
        kept = []
        while order:
            top = order.pop(0)
            kept.append(objs[top])
            order = [i for i in order
                     if max_overlap == 1 or compute_iou(objs[top][0], objs[i][0]) < max_overlap]
        if kept:
            out[name] = kept
    return out


def relative_position(box_a: Sequence[float], box_b: Sequence[float],
                      margin: float = POSITION_THRESHOLD) -> set[str]:
    """Where A is relative to B. offset = centre(A) - centre(B); each axis shrinks towards 0 by margin x (size of
    A + size of B) on that axis; a relation holds when the shrunk offset, divided by the length of the original
    offset, is beyond 0.5 on its axis (image y grows downwards: "above" is dy < -0.5). Both shrunk offsets
    within 1e-3 of 0: no relation."""
    import math

    ca = ((box_a[0] + box_a[2]) / 2, (box_a[1] + box_a[3]) / 2)
    cb = ((box_b[0] + box_b[2]) / 2, (box_b[1] + box_b[3]) / 2)
    dims = (abs(box_a[2] - box_a[0]) + abs(box_b[2] - box_b[0]), abs(box_a[3] - box_a[1]) + abs(box_b[3] - box_b[1]))
    off = (ca[0] - cb[0], ca[1] - cb[1])
    rev = [max(abs(o) - margin * d, 0.0) * (1 if o > 0 else -1 if o < 0 else 0) for o, d in zip(off, dims)]
    if all(abs(r) < 1e-3 for r in rev):
        return set()
    norm = math.hypot(*off)
    dx, dy = rev[0] / norm, rev[1] / norm
    rels = set()
    if dx < -0.5:
        rels.add("left of")
    if dx > 0.5:
        rels.add("right of")
    if dy < -0.5:
        rels.add("above")
    if dy > 0.5:
        rels.add("below")
    return rels


ColorFn = Callable[[Sequence[tuple[Any, Any]], str], Sequence[str]]


def _color_check(req, found, classify: ColorFn) -> str | None:
    colors = list(classify(found, req["class"]))
    want, n = req["color"], req["count"]
    if colors.count(want) >= n:
        return None
    seen = ", ".join(f"{colors.count(c)} {c}" for c in COLORS if c in colors)
    return f"expected {want} {req['class']}>={n}, found {colors.count(want)} {want}; and {seen}"


def _position_check(req, found, groups) -> str | None:
    rel, target = req["position"]
    if groups[target] is None:
        return f"no target for {req['class']} to be {rel}"
    for obj in found:
        for tobj in groups[target]:
            true_rels = relative_position(obj[0], tobj[0])
            if rel not in true_rels:
                return f"expected {req['class']} {rel} target, found {' and '.join(sorted(true_rels))} target"
    return None


def evaluate(objects: Mapping[str, Sequence[tuple[Any, Any]]], metadata: Mapping[str, Any],
             classify_colors: ColorFn) -> tuple[bool, str]:
    """GenEval's verdict on one image: (correct, reason), the reason one line per failed clause (empty when
    correct). Include clauses in order: fewer than `count` objects of the class fails; otherwise the `count` most
    confident are kept as its group and, with `color`, fewer than `count` of them classified as that colour
    fails; with `position` [relation, i], a failed group i fails ("no target"), else every kept object must hold
    the relation to every object of group i (the first pair that does not is the reason). A failed clause's
    group is None. Exclude clauses: `count` or more objects of the class fails."""
    correct, reasons, groups = True, [], []
    for req in metadata.get("include", []):
        name, n = req["class"], req["count"]
        found = list(objects.get(name, []))[:n]
        why = None
        if len(found) < n:
            why = f"expected {name}>={n}, found {len(found)}"
        else:
            if "color" in req:
                why = _color_check(req, found, classify_colors)
            if why is None and "position" in req:
                why = _position_check(req, found, groups)
        if why is not None:
            correct = False
            reasons.append(why)
        groups.append(found if why is None else None)
    for req in metadata.get("exclude", []):
        name = req["class"]
        if len(objects.get(name, [])) >= req["count"]:
            correct = False
            reasons.append(f"expected {name}<{req['count']}, found {len(objects[name])}")
    return correct, "\n".join(reasons)


def tag_accuracy(results: Sequence[tuple[str, bool]]) -> dict[str, float]:
    """Per tag (in TAGS order, then others by first appearance): the share of correct images."""
    sums: dict[str, list[int]] = {}
    for tag, ok in results:
        sums.setdefault(tag, []).append(int(bool(ok)))
    order = [t for t in TAGS if t in sums] + [t for t in sums if t not in TAGS]
    return {t: sum(sums[t]) / len(sums[t]) for t in order}


def overall(per_tag: Mapping[str, float]) -> float | None:
    """GenEval's overall score: the unweighted mean of the per-tag accuracies (None without any)."""
    vals = [float(v) for v in per_tag.values()]
    return sum(vals) / len(vals) if vals else None


def metadata_errors(meta: Any) -> list[str]:
    """What is wrong with one prompt's GenEval metadata (one phrase each; the caller adds file and entry)."""
    if not isinstance(meta, Mapping):
        return ["must be a mapping with 'tag', 'include' and optionally 'exclude'"]
    out = []
    if not isinstance(meta.get("tag"), str) or not meta.get("tag"):
        out.append("'tag' must be a non-empty string")
    for key in ("include", "exclude"):
        clauses = meta.get(key, [])
        if not isinstance(clauses, list):
            out.append(f"'{key}' must be a list")
            continue
        for j, c in enumerate(clauses):
            out += [f"{key}[{j}]: {p}" for p in _clause_errors(c, j, key)]
    extra = set(meta) - {"tag", "include", "exclude", "prompt"}
    if extra:
        out.append(f"unknown field(s) {', '.join(sorted(extra))}")
    return out


def _clause_errors(c: Any, j: int, key: str) -> list[str]:
    if not isinstance(c, Mapping):
        return ["must be a mapping with 'class' and 'count'"]
    out = []
    if not isinstance(c.get("class"), str) or not c.get("class"):
        out.append("'class' must be a non-empty string")
    if not isinstance(c.get("count"), int) or isinstance(c.get("count"), bool) or c.get("count") < 1:
        out.append("'count' must be an integer >= 1")
    if "color" in c and c["color"] not in COLORS:
        out.append(f"'color' must be one of {', '.join(COLORS)}")
    if "position" in c:
        p = c["position"]
        if key == "exclude":
            out.append("'position' is only meaningful in include clauses")
        elif not (isinstance(p, list) and len(p) == 2 and p[0] in RELATIONS and isinstance(p[1], int)
                  and not isinstance(p[1], bool) and 0 <= p[1] < j):
            out.append(f"'position' must be [relation, index of an earlier include clause], relation one of "
                       f"{', '.join(RELATIONS)}")
    extra = set(c) - {"class", "count", "color", "position"}
    if extra:
        out.append(f"unknown field(s) {', '.join(sorted(extra))}")
    return out
