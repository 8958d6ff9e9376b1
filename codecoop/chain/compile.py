"""Compile the Solidity suite with py-solc-x over the npm solc (solcjs), with an artifact cache.

No native solc can be installed offline, so ``solc/solc-v0.8.28`` (a launcher over a small node
shim) stands in for it: py-solc-x and slither talk to it as to the real binary. Artifacts are
cached under ``<cache>/artifacts/<key>.json``, keyed by the sha256 of every source, the compiler
version, the settings and the OpenZeppelin version, so a rebuild happens only when one of them changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from codecoop.errors import ToolchainError
from codecoop.paths import cache_root, repo_root

__all__ = [
    "SOLC_VERSION",
    "SETTINGS",
    "Artifact",
    "compile_contracts",
    "solc_launcher",
    "node_modules",
    "contracts_dir",
]

SOLC_VERSION = "0.8.28"
SETTINGS: dict = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 50},
    "remappings": ["@openzeppelin/=node_modules/@openzeppelin/"],
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}
#: Contracts that are deployed (the rest are interfaces and libraries).
DEPLOYABLE = ("ContributionToken", "MemberRegistry", "RoundManager", "ModelRegistry", "CoopTimelock", "CoopGovernor")

_FIX = "run `bash scripts/bootstrap.sh` (or `npm ci`) in the repository root"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list
    bytecode: str
    deployed_size: int


def contracts_dir() -> Path:
    """The folder of the Solidity sources."""
    path = repo_root() / "contracts"
    if not path.is_dir():
        raise ToolchainError(f"contract sources not found at {path}; set CODECOOP_ROOT to the codecoop checkout")
    return path


def node_modules() -> Path:
    """The npm folder holding ``solc`` and ``@openzeppelin/contracts``."""
    path = Path(os.environ.get("CODECOOP_NODE_MODULES") or repo_root() / "node_modules")
    for package in ("solc", "@openzeppelin/contracts"):
        if not (path / package / "package.json").is_file():
            raise ToolchainError(f"npm package {package!r} is missing under {path}: {_FIX}")
    return path


def solc_launcher() -> Path:
    """The ``solc-v0.8.28`` launcher, with node checked and the npm solc located for the shim."""
    if shutil.which("node") is None:
        raise ToolchainError(f"Node.js is required to compile the contracts (solc comes from npm): install nodejs, then {_FIX}")
    os.environ["CODECOOP_SOLC_MODULE"] = str(node_modules() / "solc")
    return Path(__file__).resolve().parent / "solc" / f"solc-v{SOLC_VERSION}"


def _sources() -> dict[str, str]:
    root = contracts_dir()
    return {f"contracts/{p.relative_to(root).as_posix()}": p.read_text() for p in sorted(root.rglob("*.sol"))}


def _cache_key(sources: dict[str, str]) -> str:
    oz = json.loads((node_modules() / "@openzeppelin" / "contracts" / "package.json").read_text())["version"]
    h = hashlib.sha256(json.dumps([SOLC_VERSION, SETTINGS, oz, sources], sort_keys=True).encode())
    return h.hexdigest()[:32]


@cache
def compile_contracts(force: bool = False) -> dict[str, Artifact]:
    """Compile every contract in ``contracts/`` (or load them from the cache) and return the deployable ones.

    Raises
    ------
    ToolchainError
        When node or the npm packages are missing, or the sources do not compile.
    """
    sources = _sources()
    path = cache_root() / "artifacts" / f"{_cache_key(sources)}.json"
    if path.is_file() and not force:
        data = json.loads(path.read_text())
    else:
        data = _run_solc(sources)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(data, f)
        os.replace(f.name, path)
    return {name: Artifact(name=name, **fields) for name, fields in data.items()}


def _run_solc(sources: dict[str, str]) -> dict[str, dict]:
    import solcx
    from solcx.exceptions import SolcError

    launcher = solc_launcher()
    root = node_modules().parent
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": SETTINGS,
    }
    try:
        out = solcx.compile_standard(request, solc_binary=launcher, base_path=str(root), allow_paths=[str(root)])
    except SolcError as exc:
        try:
            reported = json.loads(exc.stdout_data).get("errors", [])
        except (TypeError, ValueError):
            raise ToolchainError(f"solc failed: {exc.message}\n{exc.stderr_data}") from None
        out = {"errors": reported}
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ToolchainError("the contracts did not compile:\n" + "\n".join(e["formattedMessage"] for e in errors))
    result: dict[str, dict] = {}
    for unit, contracts in out["contracts"].items():
        for name, c in contracts.items():
            if name in DEPLOYABLE and unit.startswith("contracts/"):
                result[name] = {
                    "abi": c["abi"],
                    "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                    "deployed_size": len(c["evm"]["deployedBytecode"]["object"]) // 2,
                }
    missing = set(DEPLOYABLE) - set(result)
    if missing:
        raise ToolchainError(f"compiler output lacks {sorted(missing)}")
    return result
