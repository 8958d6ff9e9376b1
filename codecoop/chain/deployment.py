"""Deploy the whole contract suite and keep its record (addresses, ABIs, parameters) as JSON."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from codecoop.chain.backend import Chain
from codecoop.chain.cid import cid_to_bytes
from codecoop.chain.clients import (
    GovernorClient,
    MembersClient,
    ModelsClient,
    RoundsClient,
    TimelockClient,
    TokenClient,
)
from codecoop.chain.compile import Artifact, compile_contracts
from codecoop.chain.params import FederationParams
from codecoop.chain.reverts import RevertDecoder
from codecoop.errors import ChainError, ConfigError

__all__ = ["Deployment", "DeploymentRecord", "deploy", "charter_document", "raw_cid"]

FORMAT = "codecoop-deployment/1"
ZERO = "0x" + "00" * 20


def charter_document(params: FederationParams) -> bytes:
    """The default federation charter as canonical JSON bytes (its CID goes on-chain)."""
    doc = {
        "format": "codecoop-charter/1",
        "data_protocol": (
            "Each member trains only on code it has the right to use, de-duplicates it, never shares it, "
            "and publishes only LoRA adapter tensors as safetensors."
        ),
        "model": {"base_model_id": params.base_model_id, "base_weights_sha256": params.base_weights_hash},
        "update_strategy": {"aggregation": params.aggregation_strategy, "quorum_bps": params.quorum_bps},
        "versioning": {
            "release_by": "CoopGovernor proposal executed by the timelock",
            "min_improvement_bps": params.min_improvement_bps,
        },
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def raw_cid(data: bytes) -> str:
    """CIDv1 (raw codec, sha2-256) of ``data``: what ``ipfs add --cid-version=1 --raw-leaves`` gives for one chunk."""
    from multiformats import CID, multihash

    return str(CID("base32", 1, "raw", multihash.wrap(hashlib.sha256(data).digest(), "sha2-256")))


@dataclass(frozen=True)
class DeploymentRecord:
    """What identifies a deployment: enough for anyone with chain access to use or audit it."""

    chain_id: int
    block: int
    deployer: str
    addresses: dict[str, str]
    abis: dict[str, list]
    params: FederationParams
    gas_used: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "chain_id": self.chain_id,
            "block": self.block,
            "deployer": self.deployer,
            "addresses": self.addresses,
            "params": self.params.to_dict(),
            "gas_used": self.gas_used,
            "abis": self.abis,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeploymentRecord:
        if data.get("format") != FORMAT:
            raise ConfigError(f"not a codecoop deployment file (format {data.get('format')!r}, expected {FORMAT!r})")
        return cls(
            chain_id=data["chain_id"],
            block=data["block"],
            deployer=data["deployer"],
            addresses=data["addresses"],
            abis=data["abis"],
            params=FederationParams.from_dict(data["params"]),
            gas_used=data.get("gas_used", {}),
        )


class Deployment:
    """A deployed suite on a chain, with one typed client per contract."""

    def __init__(self, chain: Chain, record: DeploymentRecord):
        self.chain = chain
        self.record = record
        chain.decoder = RevertDecoder(record.abis.items())
        a, abi = record.addresses, record.abis
        self.token = TokenClient(chain, a["ContributionToken"], abi["ContributionToken"])
        self.members = MembersClient(chain, a["MemberRegistry"], abi["MemberRegistry"])
        self.rounds = RoundsClient(chain, a["RoundManager"], abi["RoundManager"])
        self.models = ModelsClient(chain, a["ModelRegistry"], abi["ModelRegistry"])
        self.timelock = TimelockClient(chain, a["CoopTimelock"], abi["CoopTimelock"])
        self.governor = GovernorClient(chain, a["CoopGovernor"], abi["CoopGovernor"])

    @property
    def params(self) -> FederationParams:
        return self.record.params

    @property
    def addresses(self) -> dict[str, str]:
        return dict(self.record.addresses)

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(self.record.to_json(), f, indent=1)
        os.replace(f.name, path)
        return path

    @classmethod
    def load(cls, path: str | Path, chain: Chain) -> Deployment:
        """Attach to a saved deployment; refuses a file made for another chain."""
        try:
            record = DeploymentRecord.from_json(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"deployment file {path} does not exist; deploy first (codecoop chain deploy --out {path})") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"deployment file {path} is malformed: {exc}") from None
        if record.chain_id != chain.chain_id:
            raise ConfigError(f"deployment file {path} is for chain id {record.chain_id}, but {chain.url} is chain id {chain.chain_id}")
        if not chain.w3.eth.get_code(record.addresses["RoundManager"]):
            raise ConfigError(f"no contract at the RoundManager address of {path} on {chain.url}: wrong chain or it was reset")
        return cls(chain, record)


def deploy(chain: Chain, params: FederationParams | None = None, deployer: LocalAccount | None = None) -> Deployment:
    """Deploy and wire the suite, then hand every contract to the timelock.

    The deployer owns the contracts only while wiring them; at the end the timelock owns every
    parameter, the governor is its only proposer and canceller, anyone may execute a ready
    operation, and the deployer keeps no role.
    """
    params = params or FederationParams()
    if not params.charter_cid:
        from dataclasses import replace

        params = replace(params, charter_cid=raw_cid(charter_document(params)))
    artifacts = compile_contracts()
    if deployer is None:
        if not chain.is_dev():
            raise ChainError(f"{chain.url} has no dev accounts: pass a funded deployer account")
        deployer = chain.new_account()
    chain.decoder = RevertDecoder((n, a.abi) for n, a in artifacts.items())
    gas: dict[str, int] = {}
    start_block = chain.block_number

    def create(name: str, *args: Any) -> Any:
        art: Artifact = artifacts[name]
        factory = chain.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        tx = chain.transact(factory.constructor(*args), deployer)
        address = tx.receipt["contractAddress"]
        gas[name] = tx.gas_used
        return chain.w3.eth.contract(address=address, abi=art.abi)

    def send(contract: Any, fn: str, *args: Any) -> None:
        tx = chain.transact(contract.functions[fn](*args), deployer)
        gas[f"wire:{fn}"] = gas.get(f"wire:{fn}", 0) + tx.gas_used

    me = deployer.address
    token = create(
        "ContributionToken",
        params.token_name,
        params.token_symbol,
        me,
        params.epoch_length,
        params.epoch_cap,
        params.member_epoch_cap,
        params.welcome_grant,
    )
    registry = create("MemberRegistry", me, token.address, 0 if params.admission == "open" else 1)
    rounds = create(
        "RoundManager",
        me,
        token.address,
        registry.address,
        (
            params.submit_window,
            params.disclose_window,
            params.commit_window,
            params.reveal_window,
            params.confirm_window,
            params.quorum_bps,
            params.confirmations,
            params.max_updates,
            params.reward_bound,
            params.submit_reward,
            params.voter_reward,
        ),
        params.aggregation_strategy,
    )
    models = create(
        "ModelRegistry",
        me,
        cid_to_bytes(params.charter_cid),
        params.base_model_id,
        bytes.fromhex(params.base_weights_hash.removeprefix("0x")),
        params.min_improvement_bps,
    )
    timelock = create("CoopTimelock", params.timelock_delay, [], [ZERO], me)
    governor = create(
        "CoopGovernor",
        token.address,
        timelock.address,
        params.voting_delay,
        params.voting_period,
        params.proposal_threshold,
        params.quorum_percent,
        params.vote_extension,
    )
    for role in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
        send(timelock, "grantRole", keccak(text=role), governor.address)
    send(token, "setMinter", rounds.address)
    send(token, "setRegistry", registry.address)
    for contract in (token, registry, rounds, models):
        send(contract, "transferOwnership", timelock.address)
    send(timelock, "renounceRole", b"\x00" * 32, me)

    contracts = {
        "ContributionToken": token,
        "MemberRegistry": registry,
        "RoundManager": rounds,
        "ModelRegistry": models,
        "CoopTimelock": timelock,
        "CoopGovernor": governor,
    }
    record = DeploymentRecord(
        chain_id=chain.chain_id,
        block=start_block,
        deployer=me,
        addresses={n: c.address for n, c in contracts.items()},
        abis={n: artifacts[n].abi for n in contracts},
        params=params,
        gas_used=gas,
    )
    return Deployment(chain, record)
