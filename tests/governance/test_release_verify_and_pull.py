"""A release of a tiny-model adapter: verified by a voter before the vote, then pulled as a merged
Hugging Face folder with a model card (real base model, real evaluation; slow)."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import pytest
import torch

from codecoop.storage import LocalStore
from codecoop.training import Adapter, LoraSpec, expected_lora_shapes, load_base

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return load_base("tiny", device="cpu")


def _adapter_bytes(tiny, scale: float) -> bytes:
    spec = LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=("q_proj", "v_proj"))
    g = torch.Generator().manual_seed(0)
    tensors = {n: torch.randn(shape, generator=g) * scale for n, shape in expected_lora_shapes(tiny, spec).items()}
    return Adapter(tensors, tiny.model_id, tiny.weights_hash, spec, {}).to_bytes()


def _held_out(folder: Path) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    folder.mkdir()
    for name in ("textwrap.py", "colorsys.py", "bisect.py", "shlex.py"):
        shutil.copy(stdlib / name, folder / name)
    return folder


def test_a_voter_verifies_a_release_and_a_user_pulls_it_with_its_model_card(cli, tiny, tmp_path, capsys):
    store_root = tmp_path / "store"
    store = LocalStore(store_root, durable=False)
    cid = store.put(_adapter_bytes(tiny, 0.01))
    assert cli.run("dao", "propose", "release", "v1", "--cid", cid, "--store-root", str(store_root), member=0) == 0
    pid = cli.last_proposal()
    capsys.readouterr()
    code = cli.run(
        "dao", "verify", str(pid), "--data", str(_held_out(tmp_path / "mine")), "--humaneval", "1",
        "--max-blocks", "4", "--max-new-tokens", "16", "--store-root", str(store_root),
    )  # fmt: skip
    out = capsys.readouterr()
    assert "held-out perplexity" in out.out and "release criteria" in out.out
    assert code in (0, 1)  # a random adapter may or may not beat the base; the verdict is printed either way
    cli.pass_last(voters=[0, 1, 2])

    folder = tmp_path / "hf"
    assert cli.run("model", "pull", "v1", "--out", str(folder), "--store-root", str(store_root)) == 0
    assert (folder / "config.json").is_file() and (folder / "README.md").is_file()
    assert any(folder.glob("*.safetensors"))
    release = json.loads((folder / "codecoop-release.json").read_text())
    assert release["cid"] == cid and release["parent"] is None
    assert "codecoop release v1" in (folder / "README.md").read_text()


def test_pull_refuses_a_release_whose_object_is_damaged(cli, tiny, tmp_path, capsys):
    store_root = tmp_path / "store"
    store = LocalStore(store_root, durable=False)
    cid = store.put(_adapter_bytes(tiny, 0.02))
    assert cli.run("dao", "propose", "release", "v9", "--cid", cid, "--parent", "none", member=0) == 0
    cli.pass_last(voters=[0, 1, 2])
    obj = store_root / "objects" / cid[-2:] / cid
    obj.write_bytes(obj.read_bytes()[:-1] + b"\x00")
    assert cli.run("model", "pull", "v9", "--out", str(tmp_path / "hf"), "--store-root", str(store_root)) == 1
    assert "damaged" in capsys.readouterr().err
