"""notebooks/explore_run.ipynb executes top to bottom (nbclient, the venv's python as kernel) against a
scored demo run, from the repository root and from notebooks/, draws its charts inline and shows the
report's numbers: the test computes them with the same public API and asserts they are equal."""

import json
import os
import sys

from conftest import REPO


def _execute(run_dir_env: str, cwd, tmp_path, monkeypatch, tag: str):
    import nbformat
    from nbclient import NotebookClient

    # a kernel spec of our own, in a temp dir: this interpreter, offline. No PYTHONPATH: the notebook finds the
    # checkout itself (an uninstalled checkout must work from the repository root and from notebooks/)
    spec_dir = tmp_path / f"jupyter-{tag}" / "kernels" / "evalsuite-test"
    spec_dir.mkdir(parents=True)
    env = {"HF_HUB_OFFLINE": "1", "EVALSUITE_RUN_DIR": run_dir_env, "EVALSUITE_NOTEBOOK_OUT": str(tmp_path / f"out-{tag}")}
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "evalsuite test", "language": "python", "env": env}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / f"jupyter-{tag}"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    nb = nbformat.read(REPO / "notebooks" / "explore_run.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")   # committed stripped
    NotebookClient(nb, kernel_name="evalsuite-test", timeout=180, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb, tmp_path / f"out-{tag}"


def test_notebook_equals_report_from_root_and_notebooks_folder(scored_demo_run, tmp_path, monkeypatch):
    from evalsuite.report import build_tables, load_runs

    monkeypatch.delenv("PYTHONPATH", raising=False)
    tables = build_tables(load_runs([scored_demo_run]))
    text = tables["text"]
    cat = tables["categories"]
    cat = cat[(cat.metric == "text_exact") & (cat.variant == "lenient") & (cat.n_items > 0)]
    expected = {"text": {b: float(m) for b, m, n in zip(text.backend, text["mean"], text.n_items) if n},
                "by_category": {f"{b}/{c}": float(m) for b, c, m in zip(cat.backend, cat.category, cat["mean"])},
                "verdicts": dict(zip(text.backend, text.verdict))}
    assert expected["text"] == {"flux-tiny": 0.0, "reference": 100.0}

    # from the repository root with an absolute run folder; from notebooks/ with a path relative to the root
    rel = os.path.relpath(scored_demo_run, REPO)
    for tag, env_dir, cwd in (("root", str(scored_demo_run), REPO), ("nbdir", rel, REPO / "notebooks")):
        nb, out = _execute(env_dir, cwd, tmp_path, monkeypatch, tag)
        got = json.loads((out / "numbers.json").read_text())
        assert got == expected, tag
        inline = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if o.output_type == "display_data" and "image/png" in o.get("data", {})]
        assert len(inline) == 2, tag                                    # both charts drawn inline
        assert (out / "text_accuracy.png").stat().st_size > 5000
        assert (out / "text_accuracy_by_category.png").is_file()
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
