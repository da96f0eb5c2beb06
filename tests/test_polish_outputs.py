"""Charts fit for a paper (300 dpi PNG beside the SVG, colour-blind-safe palette with distinct markers,
visible zero bars and [0, 0] intervals, no empty panels), the compare page's verdict table, the no-op
rerun's up-to-date checks and the quiet filter of known third-party chatter."""

import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REPO, cli_env
from evalsuite.report import charts as C

COLS = ["backend", "metric", "variant", "scorer_id", "mean", "ci_low", "ci_high", "n_items", "unit", "missing_reasons"]


def _agg(rows):
    return pd.DataFrame([dict(zip(COLS, r)) for r in rows])


def _rgb(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _has_colour(img, colour, box, tol=40):
    a = np.asarray(img.convert("RGB").crop(box)).astype(int)
    return bool((np.abs(a - np.array(colour)).sum(axis=2) < tol).any())


def test_bar_chart_300_dpi_png_beside_svg_and_a_visible_zero_bar(tmp_path):
    agg = _agg([("zero", "text_exact", "lenient", "o", 0.0, 0.0, 0.0, 6, "%", None),
                ("full", "text_exact", "lenient", "o", 100.0, 100.0, 100.0, 6, "%", None)])
    colours = C.backend_colours(["zero", "full"])
    png, svg = C.bar_chart(agg, "text_exact", "lenient", "text accuracy (%)", tmp_path, colours=colours,
                           order=["zero", "full"], stem="bars")
    assert svg.suffix == ".svg" and svg.stat().st_size > 0
    with Image.open(png) as im:
        assert im.info["dpi"][0] == pytest.approx(300, abs=1)
        assert im.width >= 1000                                  # was 433 px at 110 dpi
        # the zero backend's colour is drawn (its mean marker at 0), in the left half of the chart
        assert _has_colour(im, _rgb(colours["zero"]), (0, 0, im.width // 2, im.height))
    text = svg.read_text()
    assert ">0%<" in text and ">[0, 0]<" in text and ">[100, 100]<" in text   # zero-width intervals spelled out


def test_palette_is_okabe_ito_with_distinct_markers_and_no_orange_next_to_vermillion():
    labels = [f"b{i}" for i in range(6)]
    colours, markers = C.backend_colours(labels), C.backend_markers(labels)
    assert set(colours.values()) <= set(C.OKABE_ITO) and len(set(colours.values())) == 6
    assert len(set(markers.values())) == 6
    assert "#D55E00" not in colours.values()       # vermillion only from the 7th backend on (close to orange)
    assert C.backend_colours(["b", "a"]) == C.backend_colours(["a", "b"])   # the order given does not matter


def test_speed_chart_has_no_empty_panel(tmp_path):
    speed = pd.DataFrame([{"backend": "a", "hardware": "cpu", "median s/image": 0.5},
                          {"backend": "b", "hardware": "cpu", "median s/image": 0.05}])
    only_text = _agg([("a", "text_exact", "lenient", "o", 10.0, 0.0, 20.0, 6, "%", None),
                      ("b", "text_exact", "lenient", "o", 90.0, 80.0, 100.0, 6, "%", None),
                      ("a", "prompt_following", "", "c", float("nan"), float("nan"), float("nan"), 0, "%", "no CLIP"),
                      ("b", "prompt_following", "", "c", float("nan"), float("nan"), float("nan"), 0, "%", "no CLIP")])
    both = pd.concat([only_text[only_text.metric == "text_exact"],
                      _agg([("a", "prompt_following", "", "c", 50.0, 40.0, 60.0, 6, "%", None)])])
    ids = {"ocr": "o", "clip": "c"}
    colours = C.backend_colours(["a", "b"])
    one = C.speed_quality_scatter(speed, only_text, tmp_path / "one", colours=colours, scorer_ids=ids)
    two = C.speed_quality_scatter(speed, both, tmp_path / "two", colours=colours, scorer_ids=ids)
    svg_one = one[1].read_text()
    assert "prompt following" not in svg_one and "text accuracy" in svg_one
    assert "prompt following" in two[1].read_text()
    with Image.open(one[0]) as a, Image.open(two[0]) as b:
        assert a.width < 0.7 * b.width                           # one panel, not a half-empty pair


def test_compare_page_shows_the_verdict_as_tables():
    from evalsuite.report.compare_page import text_table as _table, verdict_html

    md = "\n".join(["# Paired comparison\n\nbaseline `a` -> candidate `b`\n", "## x -> y: 12 pairs over 6 prompts",
                    *_table(["metric", "baseline", "candidate", "delta", "decision"],
                            [["text_exact (pp)", "50.00", "40.00", "-10.00", "FAIL"],
                             ["clip_score (points)", "-", "-", "-", "missing: CLIP weights unavailable"]], True),
                    "fidelity to the baseline: PSNR 30 dB", "**verdict: FAIL (exit 1): text_exact fell**"])
    html = verdict_html(md)
    assert "<pre" not in html and "<table>" in html and "---" not in html
    assert "<th>metric</th>" in html and "<td class='fail'>FAIL</td>" in html
    assert "<td class='num'>-10.00</td>" in html
    assert "<h2>x -&gt; y: 12 pairs over 6 prompts</h2>" in html
    assert "<b class='fail'>verdict: FAIL (exit 1): text_exact fell</b>" in html
    assert "baseline `a`" not in html and "Paired comparison" not in html   # the page has its own title


def test_report_reuse_rewrites_nothing_when_up_to_date_and_redoes_on_change(scored_demo_run, tmp_path):
    from evalsuite.report import write_report

    run = tmp_path / "run"
    shutil.copytree(scored_demo_run, run)
    first = write_report([run], progress=False, log=lambda m: None, reuse=True)
    assert not first.up_to_date and first.tables
    out = run / "report"
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = write_report([run], progress=False, log=lambda m: None, reuse=True)
    assert again.up_to_date and again.text() == first.text() and again.summary().endswith("nothing rewritten")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == written
    # an input changes (an item record is touched): the report is made again
    rec = next((run / "items" / "reference").rglob("*.json"))
    os.utime(rec, ns=(rec.stat().st_atime_ns, rec.stat().st_mtime_ns + 1_000_000))
    third = write_report([run], progress=False, log=lambda m: None, reuse=True)
    assert not third.up_to_date
    # a deleted chart: made again too
    (out / "charts" / "bars_text_exact.png").unlink()
    fourth = write_report([run], progress=False, log=lambda m: None, reuse=True)
    assert not fourth.up_to_date and (out / "charts" / "bars_text_exact.png").is_file()


def test_rescore_with_nothing_to_do_loads_no_clip_and_rewrites_nothing(scored_demo_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(scored_demo_run, run)
    written = {p: p.stat().st_mtime_ns for p in (run / "scores").rglob("*") if p.is_file()}
    code = ("import sys, evalsuite; r = evalsuite.score(sys.argv[1], progress=False, log=print); "
            "print(r.summary()); print('open_clip' in sys.modules, 'torch' in sys.modules, 'pandas' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code, str(run)], cwd=REPO, env=cli_env(), capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "missing 18" in p.stdout                                   # CLIP still missing, with its reason
    assert "CLIP weights ViT-L-14:openai unavailable" in p.stdout
    assert p.stdout.strip().splitlines()[-1] == "False False False"   # nothing loaded
    assert {p: p.stat().st_mtime_ns for p in (run / "scores").rglob("*") if p.is_file()} == written


def test_known_chatter_is_filtered_by_exact_message_only():
    from evalsuite import quiet

    name = "diffusers.quantizers.torchao.torchao_quantizer"
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    h = Keep()
    logger = logging.getLogger(name)
    logger.addHandler(h)
    try:
        quiet.install()
        logger.warning("Unable to import `torchao` Tensor objects. This may affect loading checkpoints serialized "
                       "with `torchao`")
        logger.warning("Unable to import `torchao` Tensor objects because of something new")
        logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found, using CUDA_HOME='%s'",
                                                               "/usr/local/cuda")
        quiet.uninstall()
        logger.warning("Unable to import `torchao` Tensor objects. This may affect loading checkpoints serialized "
                       "with `torchao`")
    finally:
        logger.removeHandler(h)
    assert seen == ["Unable to import `torchao` Tensor objects because of something new",
                    "Unable to import `torchao` Tensor objects. This may affect loading checkpoints serialized with "
                    "`torchao`"]


def test_cli_hides_the_torchao_import_line_unless_verbose():
    code = ("import sys\nfrom evalsuite.cli import _quiet_third_party\n"
            "if sys.argv[1] == 'quiet': _quiet_third_party()\n"
            "import diffusers.quantizers.torchao.torchao_quantizer\n")
    env = cli_env()
    quiet = subprocess.run([sys.executable, "-c", code, "quiet"], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=300)
    loud = subprocess.run([sys.executable, "-c", code, "loud"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "Unable to import `torchao` Tensor objects" in loud.stderr     # the chatter is real here ...
    assert "Unable to import `torchao` Tensor objects" not in quiet.stderr  # ... and filtered by default


def test_default_clip_model_fast_path_is_what_open_clip_validation_gives():
    import open_clip

    from evalsuite.scoring.clip import DEFAULT_CLIP_MODEL, parse_clip_model

    spec = parse_clip_model(None)
    name, tag = DEFAULT_CLIP_MODEL.split(":")
    assert name in open_clip.list_models() and tag in open_clip.list_pretrained_tags_by_model(name)
    assert (spec.name, spec.pretrained, spec.checkpoint, spec.config, spec.identity) == (name, tag, None, None,
                                                                                          DEFAULT_CLIP_MODEL)
    assert parse_clip_model(DEFAULT_CLIP_MODEL) == spec
