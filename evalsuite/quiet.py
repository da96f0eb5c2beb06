"""Quiet by default: known third-party chatter that says nothing about the run is filtered by its exact
message (never a blanket level or category), so anything new or unexpected still shows. `-v` turns the
filters off.

Each entry: the logger that emits it (a filter on that logger sees its records) or None (a filter on
Python's last-resort and root handlers, for libraries that log without handlers of their own), and a
regular expression matching the whole message.
"""

from __future__ import annotations

import logging
import re
import warnings

KNOWN_LOG_MESSAGES: list[tuple[str | None, str]] = [
    # diffusers, on import without torchao's optional tensor classes (CPU machines)
    ("diffusers.quantizers.torchao.torchao_quantizer",
     r"Unable to import `torchao` Tensor objects\. This may affect loading checkpoints serialized with `torchao`"),
    # torch, when CUDA_HOME exists but no CUDA runtime does (CPU machines with a CUDA toolkit folder)
    ("torch.utils.cpp_extension", r"No CUDA runtime is found, using CUDA_HOME='[^']*'"),
    # torch, when a library (torchao) registers an Enum subclass as a pytree constant
    ("torch.utils._pytree", r"<enum '[^']*'> is an Enum subclass and is now natively supported by torch\.compile as "
                            r"an opaque value type\. Calling register_constant\(\) on Enum subclasses is deprecated "
                            r"and will be an error in a future release\."),
    # bitsandbytes on CPU, when the kernels-community CPU kernel cannot be fetched (offline)
    (None, r"Failed to load CPU gemm_4bit_forward from kernels-community: .*"),
]

KNOWN_WARNINGS: list[str] = [
    # torch's DataLoader inside EasyOCR on a machine without an accelerator
    r"'pin_memory' argument is set as true but no accelerator is found, then device pinned memory won't be used\.",
    # optimum-quanto / torchao creating quantized tensors (torch deprecates these functions)
    r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation functions that "
    r"produce tensors with dtype torch\.quint8, torch\.qint8, and torch\.qint32 are deprecated and will be removed in "
    r"a future PyTorch release\. Please see https://github\.com/pytorch/pytorch/issues/\d+ for more information\.",
]


class KnownChatter(logging.Filter):
    """Drops records whose whole message matches one of the patterns."""

    def __init__(self, patterns: list[str]):
        super().__init__()
        self.patterns = [re.compile(p, re.S) for p in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format is not ours to hide
            return True
        return not any(p.fullmatch(msg) for p in self.patterns)


_installed: list[tuple[object, logging.Filter]] = []


def install() -> None:
    """Filter the known chatter (idempotent)."""
    if _installed:
        return
    by_logger: dict[str | None, list[str]] = {}
    for name, pattern in KNOWN_LOG_MESSAGES:
        by_logger.setdefault(name, []).append(pattern)
    for name, patterns in by_logger.items():
        f = KnownChatter(patterns)
        if name is None:
            targets = [logging.lastResort, *logging.getLogger().handlers]
        else:
            targets = [logging.getLogger(name)]
        for t in targets:
            if t is not None:
                t.addFilter(f)
                _installed.append((t, f))
    for pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def uninstall() -> None:
    """Remove the log filters again (warnings filters stay: tests reset them themselves)."""
    while _installed:
        t, f = _installed.pop()
        t.removeFilter(f)
