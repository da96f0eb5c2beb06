"""notebooks/explore_run.ipynb executes top to bottom (nbclient, the venv's python as kernel) against a
scored demo run and reproduces the report's numbers."""

import json
import sys
from pathlib import Path

import pytest

from conftest import REPO


def test_notebook_runs_against_demo_run(scored_demo_run, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # a kernel spec of our own, in a temp dir: this interpreter, this checkout first on the path, offline
    spec_dir = tmp_path / "jupyter" / "kernels" / "evalsuite-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "evalsuite test", "language": "python",
        "env": {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "EVALSUITE_RUN_DIR": str(scored_demo_run),
                "EVALSUITE_NOTEBOOK_OUT": str(tmp_path / "nb-out"), "MPLBACKEND": "Agg"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    nb_path = REPO / "notebooks" / "explore_run.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")   # committed stripped
    NotebookClient(nb, kernel_name="evalsuite-test", timeout=120, resources={"metadata": {"path": str(REPO)}}).execute()

    def result(i):
        outs = [o for o in nb.cells[i].outputs if o.output_type == "execute_result"]
        return outs[-1]["data"]["text/plain"]

    codes = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert "{'flux-tiny': 0.0, 'reference': 100.0}" in result(codes[3])           # main chart values
    assert "'flux-tiny/text': 0.0" in result(codes[5]) and "'reference/text': 100.0" in result(codes[5])
    assert "usually correct" in result(codes[-1])
    assert (tmp_path / "nb-out" / "text_accuracy.png").stat().st_size > 5000
    assert (tmp_path / "nb-out" / "text_accuracy_by_category.png").is_file()
