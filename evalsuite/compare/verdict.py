"""The overall verdict of a comparison: which gates count, what it rests on, its exit code."""

from __future__ import annotations

from typing import Any, Mapping

from .facts import DECISIONS


def gist(reason: str) -> str:
    """A missing reason's first part for the verdict line (the table and compare.json keep it whole)."""
    cut = reason.find("): ")
    return reason[: cut + 1] if cut > 0 else reason


def gated_decisions(result: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(backend pair, what, decision) for every gate that counts in the overall verdict. A gated metric that
    was not measured, rests on unscored items or on too few prompts is inconclusive (with the reason in
    `what`), unless --allow-missing names a metric that is missing."""
    out = []
    for pr in result["pairs"]:
        where = f"{pr['baseline_backend']} -> {pr['candidate_backend']}"
        out.append((where, "hard gates", pr["hard_gates"]["decision"]))
        ng = [u for u in pr["unmatched"] if u["side"] == "candidate" and "not generated" in u["reason"]]
        if ng:
            out.append((where, f"{len(ng)} candidate item(s) not generated yet", "inconclusive"))
        for m, e in pr["metrics"].items():
            if not e.get("gated") or e["decision"] == "not applicable":
                continue
            if e["decision"] == "missing":
                if not e.get("allowed_missing"):
                    out.append((where, f"{m} (missing: {gist(e['missing_reason'])})", "inconclusive"))
            elif e["decision"] == "inconclusive" and e.get("inconclusive_reason"):
                out.append((where, f"{m} ({e['inconclusive_reason']})", "inconclusive"))
            elif e["decision"] in DECISIONS:
                out.append((where, m, e["decision"]))
        for g, e in pr["fidelity"]["gates"].items():
            if e["decision"] in DECISIONS:
                what = f"{g} ({e['inconclusive_reason']})" if e.get("inconclusive_reason") else g
                out.append((where, what, e["decision"]))
    return out


def rests_on(result: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the verdict rests on: the gated metrics measured with their pairs and prompts, the gated metrics
    missing (with the reason), those allowed missing, and the reported-only metrics."""
    gated, missing, allowed, na = [], [], [], []
    for pr in result["pairs"]:
        pre = f"{pr['candidate_backend']}: " if len(result["pairs"]) > 1 else ""
        for m, e in pr["metrics"].items():
            if not e.get("gated"):
                continue
            if e["decision"] == "not applicable":
                na.append(f"{pre}{m}")
            elif e["decision"] == "missing":
                (allowed if e.get("allowed_missing") else missing).append(f"{pre}{m} ({gist(e['missing_reason'])})")
            else:
                gated.append(f"{pre}{m} ({e.get('n_items', 0)} pairs over {e.get('n_prompts', 0)} prompts"
                             + (f", {e['n_items_missing']} unscored" if e.get("n_items_missing") else "") + ")")
        for g, e in pr["fidelity"]["gates"].items():
            if e["decision"] == "missing":
                missing.append(f"{pre}{g} ({gist(e['missing_reason'])})")
            else:
                gated.append(f"{pre}{g} ({e.get('n_prompts', 0)} prompts)")
    return {"gated": gated, "missing": missing, "allowed_missing": allowed, "not_applicable": na}


def overall_verdict(result: Mapping[str, Any]) -> dict[str, Any]:
    dec = gated_decisions(result)
    failed = [f"{w}: {what}" for w, what, d in dec if d == "fail"]
    inconclusive = [f"{w}: {what}" for w, what, d in dec if d == "inconclusive"]
    measured = [d for w, what, d in dec if what != "hard gates" and d in ("pass", "fail")]
    if failed:
        v = "fail"
    elif inconclusive or not measured:
        v = "inconclusive"
    else:
        v = "pass"
    reason = ("failed: " + ", ".join(failed)) if failed else (
        ("inconclusive: " + ", ".join(inconclusive)) if inconclusive else
        ("no gated metric could be measured (score the runs, or give the baseline 2+ seeds)" if not measured
         else "every gated metric passed"))
    basis = rests_on(result)
    parts = [f"gated: {', '.join(basis['gated']) or 'none measured'}"]
    if basis["missing"]:
        parts.append(f"missing: {', '.join(basis['missing'])}")
    if basis["allowed_missing"]:
        parts.append(f"allowed missing (--allow-missing): {', '.join(basis['allowed_missing'])}")
    if basis["not_applicable"]:
        parts.append(f"not applicable to these prompts: {', '.join(basis['not_applicable'])}")
    return {"decision": v, "exit_code": {"pass": 0, "fail": 1, "inconclusive": 3}[v], "reason": reason,
            "failed": failed, "inconclusive": inconclusive, "rests_on": basis, "basis": "; ".join(parts)}


def exit_code(result: Mapping[str, Any]) -> int:
    return int(result["verdict"]["exit_code"])
