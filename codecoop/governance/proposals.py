"""Proposal builders: the calls a DAO proposal makes, as ``(target, calldata)`` pairs with a description.

Every governed parameter of every contract has a name here (``PARAMETERS``), so a voter writes
``quorum 7500`` rather than calldata, and ``describe_call`` turns any proposal's calldata back into
``RoundManager.setQuorum(7500)`` for ``codecoop dao show``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from codecoop.chain.cid import cid_from_bytes, cid_to_bytes
from codecoop.chain.clients import ContractClient
from codecoop.chain.deployment import Deployment
from codecoop.chain.units import to_wei
from codecoop.errors import ConfigError

__all__ = ["Proposal", "PARAMETERS", "set_parameter", "release", "member_action", "describe_call", "MEMBER_ACTIONS"]

Call = tuple[str, bytes]


@dataclass(frozen=True)
class Proposal:
    """What a proposal does and says: the governor's proposal id is derived from exactly these."""

    calls: tuple[Call, ...]
    description: str


def _tokens(text: str) -> int:
    """A token amount: ``12.5`` tokens, or ``12500000000000000000wei``."""
    text = text.strip()
    if text.endswith("wei"):
        return int(text[:-3])
    return to_wei(text)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "on", "yes"):
        return True
    if text.lower() in ("0", "false", "off", "no"):
        return False
    raise ConfigError(f"{text!r} is not a boolean (true/false)")


def _admission(text: str) -> int:
    modes = {"open": 0, "approval": 1}
    if text not in modes:
        raise ConfigError(f"admission is 'open' or 'approval', not {text!r}")
    return modes[text]


def _on(client: str, fn: str, parse: Callable[[str], Any]) -> Callable[[Deployment, str], Call]:
    def make(dep: Deployment, value: str) -> Call:
        c: ContractClient = getattr(dep, client)
        return c.address, c.encode(fn, parse(value))

    return make


def _window(index: int) -> Callable[[Deployment, str], Call]:
    def make(dep: Deployment, value: str) -> Call:
        p = dep.rounds.params()
        windows = [p.submit_window, p.disclose_window, p.commit_window, p.reveal_window, p.confirm_window]
        windows[index] = int(value)
        return dep.rounds.address, dep.rounds.encode("setWindows", *windows)

    return make


def _reward(index: int, parse: Callable[[str], int]) -> Callable[[Deployment, str], Call]:
    def make(dep: Deployment, value: str) -> Call:
        p = dep.rounds.params()
        rewards = [p.submit_reward, p.voter_reward, p.reward_bound]
        rewards[index] = parse(value)
        return dep.rounds.address, dep.rounds.encode("setRewards", *rewards)

    return make


#: Parameter name -> (help, builder of the call from the current deployment and the value as text).
PARAMETERS: dict[str, tuple[str, Callable[[Deployment, str], Call]]] = {
    "submit-window": ("blocks to commit to updates", _window(0)),
    "disclose-window": ("blocks to disclose the committed updates", _window(1)),
    "commit-window": ("blocks to commit votes", _window(2)),
    "reveal-window": ("blocks to reveal votes", _window(3)),
    "confirm-window": ("blocks to confirm the aggregate", _window(4)),
    "quorum": ("approval quorum in basis points of revealed voters (1..10000)", _on("rounds", "setQuorum", int)),
    "confirmations": ("matching aggregate confirmations that complete a round (k)", _on("rounds", "setConfirmations", int)),
    "max-updates": ("most updates per round (1..112)", _on("rounds", "setMaxUpdates", int)),
    "aggregation-strategy": ("strategy every node runs, e.g. fedtrimmedavg:beta=0.2", _on("rounds", "setAggregationStrategy", str)),
    "submit-reward": ("tokens for an accepted update at full score", _reward(0, _tokens)),
    "voter-reward": ("tokens per vote matching the outcome", _reward(1, _tokens)),
    "reward-bound": ("loss-delta bound of the score, micro-nats", _reward(2, int)),
    "epoch-length": ("blocks per epoch", _on("token", "setEpochLength", int)),
    "epoch-cap": ("most tokens issued per epoch", _on("token", "setEpochCap", _tokens)),
    "member-epoch-cap": ("most tokens one member receives per epoch", _on("token", "setMemberEpochCap", _tokens)),
    "welcome-grant": ("tokens granted to each newly admitted member (0: none)", _on("token", "setWelcomeGrant", _tokens)),
    "transfers": ("whether holders may transfer tokens (true/false)", _on("token", "setTransfersEnabled", _bool)),
    "admission": ("'open' or 'approval'", _on("members", "setAdmission", _admission)),
    "min-improvement": ("release rule: least relative perplexity improvement, basis points", _on("models", "setMinImprovement", int)),
}

MEMBER_ACTIONS = {"admit": "approve", "suspend": "suspend", "reinstate": "reinstate", "remove": "remove"}


def set_parameter(d: Deployment, changes: Sequence[tuple[str, str]], description: str | None = None) -> Proposal:
    """A proposal changing one or more parameters, each ``(name, value as text)``."""
    calls = []
    for name, value in changes:
        if name not in PARAMETERS:
            raise ConfigError(f"unknown parameter {name!r}; choose one of {', '.join(PARAMETERS)}")
        try:
            calls.append(PARAMETERS[name][1](d, value))
        except ValueError as exc:
            raise ConfigError(f"parameter {name}: {value!r} is not a valid value ({exc})") from None
    text = description or "Set " + ", ".join(f"{n} = {v}" for n, v in changes)
    return Proposal(tuple(calls), text)


def release(
    d: Deployment,
    tag: str,
    cid: str,
    *,
    parent: int = 0,
    metrics_cid: str | None = None,
    base_model_id: str | None = None,
    description: str | None = None,
) -> Proposal:
    """A proposal releasing model version ``tag`` (adapter ``cid``) on top of version ``parent`` (0: the base)."""
    model_id = base_model_id or d.models.charter().base_model_id
    call = (
        d.models.address,
        d.models.encode("release", tag, cid_to_bytes(cid), parent, cid_to_bytes(metrics_cid) if metrics_cid else b"", model_id),
    )
    text = description or f"Release {tag}: {cid}" + (f" (metrics {metrics_cid})" if metrics_cid else "")
    return Proposal((call,), text)


def member_action(d: Deployment, action: str, member: str, description: str | None = None) -> Proposal:
    """A proposal to admit (approve a pending member), suspend, reinstate or remove ``member``."""
    if action not in MEMBER_ACTIONS:
        raise ConfigError(f"member action is one of {', '.join(MEMBER_ACTIONS)}, not {action!r}")
    call = (d.members.address, d.members.encode(MEMBER_ACTIONS[action], member))
    return Proposal((call,), description or f"{action.capitalize()} member {member}")


def describe_call(d: Deployment, target: str, calldata: bytes) -> tuple[str, str, dict[str, Any]]:
    """``(contract, function, arguments)`` of one proposal call, decoded with the deployment's ABIs."""
    for client in (d.rounds, d.token, d.members, d.models, d.governor, d.timelock):
        if client.address.lower() == target.lower():
            fn, args = client.contract.decode_function_input(calldata)
            return client.name, fn.fn_name, dict(args)
    return target, "0x" + calldata[:4].hex(), {}


def _pct(bps: Any) -> str:
    return f"{int(bps) / 100:g}%"


def _tok(wei: Any) -> str:
    from codecoop.chain.units import to_tokens

    return f"{to_tokens(int(wei)):,.4g} tokens"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:14]}…{text[-6:]}"


def describe_action(d: Deployment, target: str, calldata: bytes) -> str:
    """One proposal call in words: "set quorum to 75%", "release v3 = bafy..., parent v2", "admit 0x..."."""
    contract, fn, a = describe_call(d, target, calldata)
    if contract == "ModelRegistry" and fn == "release":
        parent = int(a["parent"])
        try:
            named = d.models.version(parent).tag if parent else "the base model"
        except Exception:  # a parent that does not exist yet (the proposal would revert)
            named = f"version #{parent}"
        return f"release {a['tag']} = {cid_from_bytes(a['cid'])}, parent {named}"
    words: dict[str, Callable[[dict[str, Any]], str]] = {
        "setQuorum": lambda a: f"set quorum to {_pct(a['quorumBps'])}",
        "setConfirmations": lambda a: f"set confirmations to {a['confirmations']}",
        "setMaxUpdates": lambda a: f"set most updates per round to {a['maxUpdates']}",
        "setAggregationStrategy": lambda a: f"set aggregation strategy to {a['strategy']!r}",
        "setWindows": lambda a: "set windows to submit {}, disclose {}, commit {}, reveal {}, confirm {} blocks".format(*a.values()),
        "setRewards": lambda a: "set rewards to {} per accepted update, {} per matching vote, bound {} micro-nats".format(
            _tok(a["submitReward"]), _tok(a["voterReward"]), a["rewardBound"]
        ),
        "setEpochLength": lambda a: f"set epoch length to {a['epochLength_']} blocks",
        "setEpochCap": lambda a: f"set epoch cap to {_tok(a['cap'])}",
        "setMemberEpochCap": lambda a: f"set member epoch cap to {_tok(a['cap'])}",
        "setWelcomeGrant": lambda a: f"set welcome grant to {_tok(a['amount'])}",
        "setTransfersEnabled": lambda a: "enable token transfers" if a["enabled"] else "disable token transfers",
        "setAdmission": lambda a: "set admission to " + ("approval" if int(a["admission_"]) else "open"),
        "setMinImprovement": lambda a: f"set the release rule's least improvement to {_pct(a['bps'])}",
        "approve": lambda a: f"admit {a['member']}",
        "suspend": lambda a: f"suspend {a['member']}",
        "reinstate": lambda a: f"reinstate {a['member']}",
        "remove": lambda a: f"remove {a['member']}",
    }
    if fn in words:
        try:
            return words[fn](a)
        except (KeyError, TypeError):
            pass
    args = ", ".join(f"{k}={_short(v)}" for k, v in a.items())
    return f"call {contract}.{fn}({args})"
