"""The typed base of every backend, and the small base of the remote services.

`Backend` states every attribute and method the runner uses, with the defaults of a simple local backend,
so the runner reads attributes instead of probing objects (`b.remote`, `b.close()`, `b.estimate_cost(...)`).

`RemoteService` is what a remote service declares once, in its own file:

    service      the name in the registry and in its price table (evalsuite/data/services/SERVICE.yaml)
    key_env      the environment variables any one of which enables it (availability: "missing key: set ...")
    secret_env   every environment variable holding a secret of it (default: key_env); redaction reads the
                 union over all services (`secret_env_names()`), so a new service cannot forget to redact
    package      the importable package it needs (availability: "missing package ...")
    needs_note   an extra line for `evalsuite backends` when it is usable (comfyui: a running server)

and it inherits the shared per-item machinery: `estimate_cost` from its dated price, `generate` and
`generate_one` (load, then run `_one(req, stats)` under remote.run_item's retry/timing/failure rules).
A subclass only writes `__init__` (parse its spec, set `price_key`/`price_per_image`), `config`, `key`,
`prepare`, `load`, `_one` and, if it holds a client, `close`.
"""

from __future__ import annotations

import abc
import os
from typing import Any, ClassVar

from . import GenRequest, GenResult, keys
from .remote import estimate_cost as priced_estimate, run_item


class Backend:
    """What the runner may use on any backend object; local backends override what they need."""

    name: str = ""
    spec: str = ""
    label: str = ""
    remote: ClassVar[bool] = False
    max_batch_size: int = 1
    labelled_noise: bool = False
    default_size: tuple[int, int] = (1024, 1024)
    concurrency: int = 1
    price_per_image: float | None = None
    info: Any = None           # remote: the service table's ModelInfo (lifecycle, price date)
    device: Any = None         # local: the torch device, None elsewhere

    def config(self) -> dict[str, Any]:
        return {}

    def key(self) -> dict[str, Any]:
        return {}

    def accepts(self, prompt) -> bool:
        return True

    def item_extra(self, prompt, seed):
        return None

    def unmatched(self, planned: set[tuple[str, int]]) -> list[str]:
        """Inputs of the backend that no planned item uses (folder: files matching no prompt)."""
        return []

    def estimate_cost(self, n: int, size: tuple[int, int]) -> float | None:
        return None

    def prepare(self) -> None:
        return None

    def load(self) -> None:
        return None

    def close(self) -> None:
        return None

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        raise TypeError(f"{type(self).__name__} defines no generate()")


class RemoteService(Backend, abc.ABC):
    remote: ClassVar[bool] = True
    service: ClassVar[str]
    key_env: ClassVar[tuple[str, ...]] = ()
    secret_env: ClassVar[tuple[str, ...] | None] = None
    package: ClassVar[str] = "httpx"
    needs_note: ClassVar[str] = ""
    # The dated model table (the layout of evalsuite/data/services/*.yaml: checked, price_unit, models) for a
    # service without a YAML file there; a YAML file, where one exists, wins.
    table: ClassVar[dict[str, Any] | None] = None

    price_key: str = ""

    def take_spec(self, spec) -> None:
        """What every remote service keeps of its spec (label from the pixel-relevant part); no quantization."""
        from ..errors import EvalsuiteError
        from . import label_for

        self.spec, self.name, self.label = spec.raw, spec.name, label_for(spec.raw)
        if spec.quant:
            raise EvalsuiteError(f"backend '{spec.raw}': remote models take no quantization")

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if not getattr(cls, "service", None):
            raise TypeError(f"{cls.__name__}: a RemoteService declares `service`")
        if cls.secret_env is None:
            cls.secret_env = tuple(cls.key_env)
        missing = [n for n in cls.key_env if n not in cls.secret_env]
        if missing:
            raise TypeError(f"{cls.__name__}: key variable(s) {', '.join(missing)} missing from secret_env")
        keys.register(cls)
        if cls.table is not None:
            from . import services

            services.DECLARED[cls.service] = {"service": cls.service, **cls.table}
            services.table.cache_clear()

    @classmethod
    def secret_values(cls) -> list[str]:
        """The secret strings this service may send (redaction removes each): its variables' values."""
        return [os.environ.get(n, "") for n in cls.secret_env or ()]

    def estimate_cost(self, n: int, size: tuple[int, int]) -> float | None:
        return priced_estimate(self.price_per_image, self.price_key, n, size)

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        return [self.generate_one(r) for r in requests]

    def generate_one(self, req: GenRequest) -> GenResult:
        self.load()
        return run_item(self.label, lambda stats: self._one(req, stats))

    @abc.abstractmethod
    def _one(self, req: GenRequest, stats: dict[str, Any]) -> GenResult:
        """One item: submit, wait, download; raise remote.RemoteFailure for a final failure."""


# The registry of service classes and their secrets lives in backends/keys.py (remote.py's redaction reads it
# there without importing this module); these names stay importable from here, where they always were.
SERVICE_CLASSES = keys.SERVICE_CLASSES
service_classes, service_class_of = keys.service_classes, keys.service_class_of
secret_values, secret_env_names = keys.secret_values, keys.secret_env_names
