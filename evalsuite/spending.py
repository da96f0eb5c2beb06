"""The spending guard of a run: checks of --concurrency/--max-cost/--rate-limit, and before the first paid call
the calls and estimated cost per remote backend (prices from the dated service tables), refusing many paid
calls without --yes."""

from __future__ import annotations

import math

from .errors import EvalsuiteError


def check_spending(spend) -> None:
    """--concurrency, --max-cost and --rate-limit: one-line errors before anything is written."""
    concurrency, max_cost, rate_limit = spend.concurrency, spend.max_cost, spend.rate_limit
    if concurrency is not None and concurrency < 1:
        raise EvalsuiteError(f"--concurrency must be at least 1, got {concurrency}")
    for name, v in (("--max-cost", max_cost), ("--rate-limit", rate_limit)):
        if v is not None and not math.isfinite(v):
            raise EvalsuiteError(f"{name} must be a finite number, got {v}")
    if max_cost is not None and max_cost < 0:
        raise EvalsuiteError(f"--max-cost must be >= 0, got {max_cost}")
    if rate_limit is not None and rate_limit <= 0:
        raise EvalsuiteError(f"--rate-limit must be > 0 calls per second, got {rate_limit}")


def cost_guard(objs, plan, todos, *, yes: bool, dry_run: bool, max_cost: float | None,
                max_calls_without_confirm: int, log) -> None:
    """Print calls and estimated cost per remote backend; refuse many paid calls without yes."""
    from .backends.remote import PRICES_AS_OF

    lines, paid_calls, total = [], 0, 0.0
    unpriced: list[tuple[str, int]] = []       # remote backends with calls planned and no known price
    for b in objs:
        rows = todos[b.label]
        if dry_run and not b.remote:
            lines.append(f"  {b.label:<32} {len(rows):>5} item(s) to generate locally")
        if not b.remote:
            continue
        cost = sum(b.estimate_cost(1, (w, h)) or 0.0 for _, _, w, h in rows)
        price = b.price_per_image
        if price is None:
            est = "price unknown (set price=USD)"
            if rows:
                unpriced.append((b.label, len(rows)))
        elif price == 0:
            est = "no charge"
        else:
            dated = f" (price as of {b.info.price_checked})" if b.info is not None and b.info.price_checked else ""
            est = f"about ${cost:.2f}{dated}"
        if rows and price != 0:
            paid_calls += len(rows)
        total += cost
        life = f"; {b.info.lifecycle()}" if b.info is not None and b.info.status in ("deprecated", "unknown") else ""
        lines.append(f"  {b.label:<32} {len(rows):>5} call(s), {est}, {b.concurrency} in flight{life}")
    if not lines:
        return
    if paid_calls or dry_run:
        log(f"{'plan' if dry_run else 'remote calls'} (prices from the model tables checked {PRICES_AS_OF}, each "
            "with its own date; override per backend with price=):")
        for line in lines:
            log(line)
        n_unpriced = sum(n for _, n in unpriced)
        log(f"  total: {paid_calls} paid call(s), estimated ${total:.2f}"
            + (f" for the priced ones; {n_unpriced} call(s) at an unknown price" if n_unpriced else "")
            + (f"; --max-cost ${max_cost:.2f}" if max_cost is not None else ""))
    if max_cost is not None and unpriced:
        what = ", ".join(f"{label} ({n} call(s))" for label, n in unpriced)
        msg = (f"--max-cost cannot bound {what}: the price per image is unknown in the dated model table; "
               "add price=USD to that backend's options (e.g. openai-gpt-image-2:price=0.05) or drop --max-cost")
        if not dry_run:
            raise EvalsuiteError(msg)
        log(f"  note: {msg}")
    if not dry_run and paid_calls > max_calls_without_confirm and not yes:
        raise EvalsuiteError(f"{paid_calls} paid remote calls planned (estimated ${total:.2f}), more than "
                             f"{max_calls_without_confirm} without confirmation; rerun with --yes to go ahead, "
                             "--dry-run to see the plan, or --max-cost USD to cap the spend")
