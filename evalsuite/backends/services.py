"""The dated model table of each remote service (evalsuite/data/services/SERVICE.yaml): data, not code.

Each file holds `service`, `checked` (the date its facts were checked), `sources`, `price_unit`
(image | megapixel) and `models: {NAME: {...}}` with per model:
    status          active | deprecated | shut_down
    shutdown_date   YYYY-MM-DD (deprecated: announced; shut_down: when it stopped answering)
    replacement     the model to use instead
    price           USD per image (or per started megapixel); null = unknown
    price_checked   the date the price was last confirmed (defaults to `checked`)
    takes           the parameters the service applies for this model: only these are sent and recorded
    sizes           size rules {multiple_of, min_edge, max_edge, max_ratio, max_pixels}
    aspect_ratios   the ratios a model takes instead of a size
    plus model-specific defaults (default_steps, default_guidance, quality, ...).
A model missing from the table is `unknown`: it runs (the service may be newer than the table) with an
unknown price and the backend's general parameter rules.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EvalsuiteError

DATA = Path(__file__).resolve().parent.parent / "data" / "services"
STATUSES = ("active", "deprecated", "shut_down")


@dataclass(frozen=True)
class ModelInfo:
    service: str
    model: str
    status: str                          # active | deprecated | shut_down | unknown
    checked: str
    price: float | None = None
    price_unit: str = "image"
    price_checked: str | None = None
    shutdown_date: str | None = None
    replacement: str | None = None
    takes: frozenset[str] | None = None  # None: not in the table, the backend's general rules apply
    rules: dict[str, Any] = field(default_factory=dict)

    def applies(self, param: str, default: bool = True) -> bool:
        """Whether the service applies param for this model (default for models not in the table)."""
        return default if self.takes is None else param in self.takes

    def lifecycle(self) -> str:
        """One short phrase: 'active', 'deprecated, shuts down 2027-01-01 (use X)', 'shut down 2026-05-12 (use X)'."""
        if self.status == "unknown":
            return f"not in the {self.service} table checked {self.checked}"
        if self.status == "active":
            return "active"
        verb = "shut down" if self.status == "shut_down" else "deprecated, shuts down"
        use = f" (use {self.replacement})" if self.replacement else ""
        return f"{verb} {self.shutdown_date or '(date not announced)'}{use}"

    def price_text(self) -> str:
        if self.price is None:
            return "price unknown"
        if self.price == 0:
            return "no charge"
        unit = "MP" if self.price_unit == "megapixel" else "image"
        return f"${self.price:g}/{unit} ({self.price_checked or self.checked})"


# Tables declared in code by a service class (RemoteService.table) for a service with no YAML file.
DECLARED: dict[str, dict[str, Any]] = {}


@functools.lru_cache(maxsize=None)
def table(service: str) -> dict[str, Any]:
    """The parsed table of a service; a one-line error naming the file and entry when it is malformed."""
    import yaml

    path = DATA / f"{service}.yaml"
    if service in DECLARED and not path.exists():
        return check_table(DECLARED[service], f"the table of the {service} service class")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EvalsuiteError(f"{path}: cannot read the {service} model table ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise EvalsuiteError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return check_table(data, str(path))


def check_table(data: Any, path: str) -> dict[str, Any]:
    """A table (service, checked, models) checked field by field; errors name where it came from."""
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict) or not data.get("checked"):
        raise EvalsuiteError(f"{path}: expected 'service', 'checked' and a 'models' mapping")
    for name, m in data["models"].items():
        if not isinstance(m, dict) or m.get("status") not in STATUSES:
            raise EvalsuiteError(f"{path}: models.{name}: field 'status' must be one of {', '.join(STATUSES)}")
        if m["status"] != "active" and not m.get("shutdown_date"):
            raise EvalsuiteError(f"{path}: models.{name}: field 'shutdown_date' is required for status {m['status']}")
        if m.get("price") is not None and (not isinstance(m["price"], (int, float)) or m["price"] < 0):
            raise EvalsuiteError(f"{path}: models.{name}: field 'price' must be a number >= 0 or null")
    return data


def model_info(service: str, model: str) -> ModelInfo:
    t = table(service)
    m = t["models"].get(model)
    checked = str(t["checked"])
    unit = t.get("price_unit", "image")
    if m is None:
        return ModelInfo(service, model, "unknown", checked, price_unit=unit)
    rules = {k: v for k, v in m.items() if k not in (
        "status", "shutdown_date", "replacement", "price", "price_checked", "takes")}
    takes = frozenset(m["takes"]) if "takes" in m else None
    return ModelInfo(service, model, m["status"], checked, price=m.get("price"), price_unit=unit,
                     price_checked=str(m.get("price_checked") or checked), shutdown_date=m.get("shutdown_date"),
                     replacement=m.get("replacement"), takes=takes, rules=rules)


def refuse_shut_down(info: ModelInfo, raw: str) -> None:
    """A shut-down model fails at plan time with one line: date, replacement, and how to keep old images."""
    if info.status != "shut_down":
        return
    use = f"; use {info.service}:{info.replacement}" if info.replacement else ""
    raise EvalsuiteError(
        f"backend '{raw}': {info.service} model '{info.model}' was shut down on {info.shutdown_date}{use}; "
        f"images saved from it can still be evaluated with folder:PATH (table checked {info.checked})")


def models(service: str) -> dict[str, ModelInfo]:
    return {name: model_info(service, name) for name in table(service)["models"]}


def nearest_ratio(w: int, h: int, ratios: list[str] | tuple[str, ...]) -> str:
    """The aspect ratio 'A:B' of ratios closest to w:h (compared on a log scale, so 2:1 and 1:2 are as far
    from 1:1), for models that take an aspect ratio instead of a size."""
    import math

    def dist(r: str) -> float:
        a, b = r.split(":")
        return abs(math.log((int(a) / int(b)) / (w / h)))

    return min(ratios, key=dist)
