"""The import boundaries of architecture decision 11, read from the source.

Services talk to each other only through events, so no service package imports another's;
the what-if replays the council's rules, so it imports `rules/`, never a service; and the
rulebook stays pure: `contracts/`, the standard library and pydantic (the library the
contracts' value types are built with), nothing else.

A service's own `tests/` folder is not part of its process and is left out: some of its
tests start another service's app beside it to follow an event across.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module a file imports, absolute, wherever the import statement stands."""
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else ""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = (package or _module_name(path)).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _imports_of(package: str) -> list[tuple[str, str]]:
    """(module, what it imports) for the package's own code, its tests left out."""
    return [
        (_module_name(path), imported)
        for path in sorted((ROOT / package).rglob("*.py"))
        if "tests" not in path.relative_to(ROOT / package).parts
        for imported in _imports(path)
    ]


def _is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another_service(service: str) -> None:
    others = [s for s in SERVICES if s != service]
    crossing = {
        (module, imported)
        for module, imported in _imports_of(f"services/{service}")
        if any(_is_within(imported, f"services.{other}") for other in others)
    }
    assert not crossing, f"services.{service} imports another service: {sorted(crossing)}"


def test_the_whatif_never_imports_a_service() -> None:
    crossing = {(m, i) for m, i in _imports_of("whatif") if _is_within(i, "services")}
    assert not crossing, f"the what-if imports services: {sorted(crossing)}"


def test_the_rulebook_imports_only_contracts_the_standard_library_and_pydantic() -> None:
    allowed = ("rules", "contracts", "pydantic", "__future__")
    outside = {
        (module, imported)
        for module, imported in _imports_of("rules")
        if imported.split(".")[0] not in sys.stdlib_module_names
        and not any(_is_within(imported, package) for package in allowed)
    }
    assert not outside, f"rules imports beyond contracts: {sorted(outside)}"


def test_allocations_process_loads_no_other_services_code() -> None:
    """The policy routes run the what-if in allocation's own process: loading allocation's app
    must not load payments' (or any other service's) code."""
    probe = (
        "import sys, services.allocation.api, services.allocation.policy_api\n"
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('services.')}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "['allocation']"
