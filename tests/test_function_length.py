"""No function in evalsuite/ over 60 lines (signature, docstring and body) without a stated reason.

Run it as a script to list every function over the limit with its length:
    python tests/test_function_length.py [LIMIT]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "evalsuite"
LIMIT = 60

# "path:qualname" -> why it is longer, for now
ALLOWED: dict[str, str] = {}


def long_functions(root: Path = PKG, limit: int = LIMIT) -> list[tuple[int, str]]:
    """(lines, "path:qualname") of every function or method over `limit` lines, longest first."""
    out: list[tuple[int, str]] = []

    def walk(node: ast.AST, prefix: str, rel: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = child.end_lineno - child.lineno + 1
                if n > limit:
                    out.append((n, f"{rel}:{prefix}{child.name}"))
                walk(child, f"{prefix}{child.name}.", rel)
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.", rel)

    for p in sorted(root.rglob("*.py")):
        walk(ast.parse(p.read_text(encoding="utf-8")), "", str(p.relative_to(root.parent)))
    return sorted(out, reverse=True)


def test_no_long_function_without_a_reason():
    found = long_functions()
    unexplained = [f"{name} ({n} lines)" for n, name in found if name not in ALLOWED]
    assert unexplained == [], "split these into named steps, or state why not in ALLOWED: " + ", ".join(unexplained)


def test_the_lister_sees_a_long_function(tmp_path):
    pkg = tmp_path / "evalsuite"
    pkg.mkdir()
    body = "\n".join(f"        x{i} = {i}" for i in range(61))
    (pkg / "m.py").write_text(f"def short():\n    return 1\n\n\nclass C:\n    def long(self):\n{body}\n")
    assert long_functions(pkg) == [(62, "evalsuite/m.py:C.long")]


if __name__ == "__main__":
    for n, name in long_functions(limit=int(sys.argv[1]) if len(sys.argv) > 1 else LIMIT):
        print(f"{n:5d}  {name}" + (f"   ({ALLOWED[name]})" if name in ALLOWED else ""))
