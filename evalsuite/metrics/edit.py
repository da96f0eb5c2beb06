"""Edit distance: the pure string functions both the text metrics (metrics/text.py) and the published text
protocols (metrics/text_protocols.py) rest on. Standard library only.

    levenshtein(a, b)   insertions, deletions and substitutions, each cost 1
    ned(a, b)           levenshtein(a, b) / max(len(a), len(b)); 0 when both are empty
"""

from __future__ import annotations


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def ned(a: str, b: str) -> float:
    """Normalised edit distance: Levenshtein(a, b) / max(len(a), len(b)); 0 when both are empty."""
    n = max(len(a), len(b))
    return levenshtein(a, b) / n if n else 0.0
