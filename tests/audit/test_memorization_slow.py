"""A model fine-tuned until it overfits planted functions reproduces them, the base model does not,
the command line fails it, and a member configured to vote against leaking releases does (slow).

tiny memorizes only part of them: LoRA on tiny stalls at a training loss of about 1.1 on the planted
code (its output embeddings and final norm stay frozen under LoRA and were trained too briefly to
separate the tokens; full fine-tuning reaches 0.01 in 100 steps), measured at 100-300 steps and
learning rates 1e-3 to 1e-2. smollm2-135m reaches a loss near 0.05 in 12 steps and copies a third
to more than half of the lines it generates (measured on two machines), so the strong assertions use it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codecoop.audit.memorization import MemorizationConfig, audit_memorization
from codecoop.chain import backend
from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams
from codecoop.cli import main
from codecoop.governance import release
from codecoop.storage import LocalStore
from codecoop.training import Adapter, BaseModel, CodeCorpus, TrainConfig, load_base, train_lora

from .planted import write_planted

pytestmark = pytest.mark.slow

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GREEDY = MemorizationConfig(temperature=0.0, max_new_tokens=80)


@pytest.fixture(scope="module")
def smollm2() -> BaseModel:
    torch.set_num_threads(1)
    return load_base("smollm2-135m", device="cpu")


@pytest.fixture(scope="module")
def overfit(smollm2: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Adapter]:
    """The planted code and an adapter trained on nothing else, one full-context block per step."""
    data = write_planted(tmp_path_factory.mktemp("private"))
    corpus = CodeCorpus.from_files(sorted(data.glob("*.py")), smollm2.tokenizer, validation_fraction=0.0)
    cfg = TrainConfig(steps=12, lr=3e-3, r=16, alpha=32, dropout=0.0, batch_size=1, seq_len=512, target_modules=ALL_LINEAR,
                      warmup_steps=2, progress=False)  # fmt: skip
    adapter = train_lora(smollm2, corpus, cfg)
    assert adapter.training["final_loss"] < 0.3
    return data, adapter


def test_tiny_overfit_on_planted_functions_copies_some_of_them_and_its_base_none(tmp_path):
    tiny = load_base("tiny", device="cpu")
    data = write_planted(tmp_path / "private")
    corpus = CodeCorpus.from_files(sorted(data.glob("*.py")), tiny.tokenizer, validation_fraction=0.0)
    cfg = TrainConfig(steps=150, lr=5e-3, r=16, alpha=32, dropout=0.0, batch_size=1, seq_len=512, target_modules=ALL_LINEAR,
                      warmup_steps=5, progress=False)  # fmt: skip
    adapter = train_lora(tiny, corpus, cfg)
    fine = audit_memorization(tiny, adapter, [data], GREEDY)
    base = audit_memorization(tiny, None, [data], GREEDY)
    assert fine.ratio > 0.15 and fine.leaks  # measured 0.28
    assert base.ratio == 0.0 and base.generated_lines > 0


def test_a_model_overfit_on_planted_functions_reproduces_them(smollm2, overfit):
    data, adapter = overfit
    report = audit_memorization(smollm2, adapter, [data], GREEDY)
    assert report.prompts == 3 and report.generated_lines > 20
    # how many lines greedy decoding copies back depends on the 12 training steps (0.33 to 0.6 on two machines);
    # the audit's behaviour is that the copies are found, well above the threshold, and the release fails
    assert report.ratio > 5 * report.threshold and not report.passed
    assert any(leak.source.endswith("secret.py") and len(leak.lines) >= 6 for leak in report.leaks)


def test_the_base_model_reproduces_none_of_the_planted_functions(smollm2, overfit):
    data, _ = overfit
    report = audit_memorization(smollm2, None, [data], MemorizationConfig(max_new_tokens=80, samples_per_prompt=2))
    assert report.samples == 6 and report.generated_lines > 0
    assert report.ratio <= 0.02 and report.passed


def test_the_command_line_fails_an_overfit_adapter_and_shows_its_leaks(overfit, tmp_path, capsys):
    data, adapter = overfit
    adapter.save(tmp_path / "adapter.safetensors")
    out = tmp_path / "report.json"
    code = main([
        "audit", "memorization", "--model", str(tmp_path / "adapter.safetensors"), "--data", str(data), "--temperature", "0",
        "--max-new-tokens", "80", "--json", str(out), "--show-leaks",
    ])  # fmt: skip
    assert code == 1
    report = json.loads(out.read_text())
    assert report["passed"] is False and report["ratio"] > 5 * report["threshold"] and report["leaks"]
    printed = " ".join(capsys.readouterr().out.split())
    assert "FAIL" in printed and "result[key] = value" in printed


def test_a_member_configured_against_leaking_releases_votes_against_one(smollm2, overfit, tmp_path):
    data, adapter = overfit
    fed = DevFederation.create(3, FederationParams(voting_period=15, vote_extension=3, base_model_id="smollm2-135m"))
    store_root = tmp_path / "store"
    cid = LocalStore(store_root, durable=False).put(adapter.to_bytes())
    gov = fed.deployment.governor
    proposal = release(fed.deployment, "v1", cid)
    pid = gov.propose(fed.members[0], list(proposal.calls), proposal.description)
    fed.chain.mine_to(gov.snapshot(pid) + 1)

    keystore = tmp_path / "member1.json"
    from eth_account import Account

    keystore.write_text(json.dumps(Account.encrypt(fed.members[1].key, "pw", kdf="pbkdf2", iterations=1_000)))
    config = tmp_path / "node.toml"
    config.write_text(
        f"[data]\ncode = ['{data}']\n\n[audit]\nvote_against_failing_releases = true\nmemorization_prompts = 3\n"
        "memorization_max_new_tokens = 80\n"
    )
    common = ["--store-root", str(store_root), "--chain", "http://embedded.test", "--deployment", str(fed.deployment.save(tmp_path / "d.json")),
              "--keystore", str(keystore), "--password-env", "CODECOOP_GATE_PW"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backend, "connect", lambda url, **kw: fed.chain)
        mp.setenv("CODECOOP_GATE_PW", "pw")
        assert main(["dao", "vote", str(pid), "for", "--config", str(config), *common]) == 1  # refused: it leaks
        assert gov.votes(pid) == (0, 0, 0)
        assert main(["dao", "vote", str(pid), "auto", "--config", str(config), *common]) == 0
    against, for_, abstain = gov.votes(pid)
    assert against > 0 and for_ == 0 and abstain == 0
