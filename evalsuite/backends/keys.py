"""The remote service classes and the secrets they declare, in one place both sides import one way.

Every `RemoteService` subclass (backends/base.py) adds itself to SERVICE_CLASSES when its module is imported;
redaction (`remote.redact`, `remote.SECRET_ENV`) and `evalsuite backends` (availability.py) read the union of
their `secret_env` from here. This module imports nothing of evalsuite at import time; the backend registry's
modules are imported by name when the classes are asked for (they are cheap: SDKs load lazily).
"""

from __future__ import annotations

import importlib

# Every RemoteService subclass (backends/base.py), by "module.qualname", registered when its module is imported.
SERVICE_CLASSES: dict[str, type] = {}


def register(cls: type) -> None:
    SERVICE_CLASSES[f"{cls.__module__}.{cls.__qualname__}"] = cls


def import_registry_modules() -> None:
    """Import every module of the backend registry (so each remote service class has registered itself)."""
    from . import REGISTRY

    for module in sorted({e.module for e in REGISTRY.values()}):
        importlib.import_module(module)


def service_classes() -> list[type]:
    """Every remote service class of the registry."""
    import_registry_modules()
    return list(SERVICE_CLASSES.values())


def service_class_of(module: str) -> type | None:
    """The RemoteService class defined in a registry module, or None for a local backend."""
    importlib.import_module(module)
    for cls in SERVICE_CLASSES.values():
        if cls.__module__ == module:
            return cls
    return None


def secret_values() -> list[str]:
    """Every secret value set in the environment for any registered service (what redaction removes)."""
    return [v for cls in service_classes() for v in cls.secret_values() if v]


def secret_env_names() -> tuple[str, ...]:
    """The environment variables that hold secrets of any registered service, in a stable order."""
    names: list[str] = []
    for cls in service_classes():
        for n in cls.secret_env or ():
            if n not in names:
                names.append(n)
    return tuple(names)
