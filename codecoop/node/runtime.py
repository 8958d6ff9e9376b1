"""Assemble a live :class:`~codecoop.node.node.Node` from a :class:`~codecoop.node.config.NodeConfig`:
chain, deployment, key, content store, libp2p host, base model and private code."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codecoop.errors import ChainError, ConfigError
from codecoop.node.config import NodeConfig

__all__ = ["LiveNode", "open_deployment", "start_node"]


def open_deployment(chain_url: str, deployment_file: Path, *, setting: str = "chain.url") -> Any:
    """Connect to the chain at ``chain_url`` and attach to the deployment recorded in ``deployment_file``.

    ``setting`` names where the URL came from (an option, a configuration key) for the error an
    embedded chain gets.
    """
    from codecoop.chain import Deployment, connect

    if chain_url == "embedded":
        raise ConfigError(
            f"{setting} = 'embedded' lives only inside one process; give the JSON-RPC URL of a running chain "
            "(`codecoop sim` runs whole federations on an embedded chain)"
        )
    return Deployment.load(deployment_file, connect(chain_url))


@dataclass
class LiveNode:
    """A started node and what must be closed with it."""

    node: Any
    config: NodeConfig
    stack: ExitStack

    def close(self) -> None:
        """Journal the network counters (what was served since the last save, too) and close everything."""
        try:
            self.node.journal.save()
        finally:
            self.stack.close()


def start_node(
    cfg: NodeConfig,
    *,
    on_event: Callable[[Any], None] | None = None,
    on_train_step: Callable[[Any], None] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> LiveNode:
    """Open everything the configuration names, check the charter, join, and return the node (not yet running)."""
    from codecoop.keys import load_keystore
    from codecoop.node.crashpoint import with_crash_point
    from codecoop.node.journal import Journal
    from codecoop.node.node import Node
    from codecoop.node.transport import FetchCounters, P2PTransport
    from codecoop.storage import IpfsStore, open_store

    on_event, on_train_step = with_crash_point(on_event, on_train_step)  # a test hook; unset in production
    deployment = open_deployment(cfg["chain.url"], cfg.path("chain.deployment"), setting=f"{cfg.source}: chain.url")
    account = load_keystore(cfg.path("keystore.path"), cfg.password())
    folder = cfg.folder
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(cfg["store.api"], root=folder / "store")
    stack = ExitStack()
    try:
        from codecoop.training import CodeCorpus, load_base

        log(f"loading base model {cfg['model.id']!r}")
        base = load_base(cfg["model.id"], cfg["model.device"])
        log("reading private code")
        corpus = CodeCorpus.from_path(cfg.code_paths(), base.tokenizer, seed=cfg["training.seed"])
        host = _start_host(cfg, account, store, deployment)
        stack.callback(host.stop)
        members = deployment.members

        def peers() -> list[tuple[str, str, tuple[str, ...]]]:
            return [(m.address, m.peer_id, tuple(m.multiaddrs)) for m in members.active_members() if m.multiaddrs]

        journal = Journal(folder / "journal.json", deployment=deployment.addresses["RoundManager"])
        counters = FetchCounters.from_json(journal.network)  # they add up over this node's restarts
        # the node's own IPFS daemon is the second path: it may find an object on the IPFS network
        transport = P2PTransport(host, store, peers, counters=counters, ipfs=store if isinstance(store, IpfsStore) else None)
        node = Node(
            name=cfg["p2p.federation"] + ":" + account.address[:10],
            account=account,
            deployment=deployment,
            store=store,
            transport=transport,
            base=base,
            corpus=corpus,
            settings=cfg.settings(),
            journal=journal,
            on_event=on_event,
            on_train_step=on_train_step,
        )
        node.check_charter()
        node.ensure_member(host.peer_id, tuple(host.addrs))
    except BaseException:
        stack.close()
        raise
    return LiveNode(node, cfg, stack)


def _start_host(cfg: NodeConfig, account: Any, store: Any, deployment: Any) -> Any:
    from codecoop.p2p import P2PConfig, P2PHost

    members = deployment.members

    def member_addrs() -> list[str]:
        out: list[str] = []
        for m in members.active_members():
            if m.address != account.address:
                out.extend(f"{a}/p2p/{m.peer_id}" if "/p2p/" not in a else a for a in m.multiaddrs)
        return out

    def authorize(a: Any) -> bool:
        try:
            info = members.member(a.sender)
        except ChainError:
            return False
        return info.peer_id == a.peer and members.is_active(a.sender)

    config = P2PConfig(
        federation=cfg["p2p.federation"],
        identity_path=cfg.folder / "libp2p.key",
        listen=cfg["p2p.listen"],
        bootstrap=tuple(cfg["p2p.bootstrap"]),
    )
    return P2PHost(config, account, store=store, member_peers=member_addrs, authorize=authorize).start()
