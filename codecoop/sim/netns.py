"""Linux network namespaces for the devnet: every organisation on its own network, nothing shared but the chain.

:class:`Namespaces` creates one namespace per organisation and a hub namespace holding a bridge;
each organisation's namespace is joined to the bridge by a veth pair and gets its own address in
a /24 that exists only inside these namespaces. Its node reaches the others' libp2p hosts over the
bridge and nothing else: the chain (a hardhat node on the host's 127.0.0.1) is reached through a
forwarder that listens on 127.0.0.1 inside the namespace and passes the bytes over a Unix socket
(a file, which namespaces do not separate) to a forwarder beside the chain. Taking an
organisation's veth down in the hub (:meth:`Namespaces.set_link`) cuts it off from its peers, as a
broken uplink would, while its chain connection stays up.

Needs root (or CAP_NET_ADMIN) and the ``ip`` command; :func:`unavailable` says why not when it
cannot be used, and the devnet then falls back to loopback ports. Every namespace and link this
module makes is removed by :meth:`Namespaces.close` (deleting a namespace deletes its veth end).

``python -m codecoop.sim.netns forward --listen tcp:HOST:PORT --to unix:PATH`` (or the reverse) is
the forwarder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from codecoop.errors import CodecoopError

__all__ = ["Namespaces", "unavailable"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise CodecoopError(f"`ip {' '.join(args)}` failed: {out.stderr.strip() or out.returncode}")
    return out


def unavailable() -> str | None:
    """Why namespaces cannot be made here (``None`` when they can): not root, no ``ip``, or the kernel refuses."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    probe = f"cc-probe-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"the kernel refused a network namespace: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class Namespaces:
    """``count`` organisation namespaces on one bridge; :meth:`address` ``i`` is organisation ``i``'s address."""

    def __init__(self, count: int, work: Path, chain_port: int):
        self.count = count
        self.work = work
        self.chain_port = chain_port
        self.tag = secrets.token_hex(2)  # names of at most 15 characters, unique per devnet
        self.subnet = f"10.231.{secrets.randbelow(250) + 1}"
        self.hub = f"cc{self.tag}-hub"
        self.names = [f"cc{self.tag}-o{i}" for i in range(count)]
        self.socket = work / "chain.sock"
        self._made: list[str] = []
        self._forwarders: list[subprocess.Popen] = []

    def address(self, i: int) -> str:
        return f"{self.subnet}.{10 + i}"

    def exec_prefix(self, i: int) -> list[str]:
        """The command prefix that runs a program in organisation ``i``'s namespace."""
        return ["ip", "netns", "exec", self.names[i]]

    def create(self) -> Namespaces:
        """Make the hub with its bridge, every organisation's namespace, veth pair and address, and the chain forwarders."""
        try:
            _ip("netns", "add", self.hub)
            self._made.append(self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for i, ns in enumerate(self.names):
                _ip("netns", "add", ns)
                self._made.append(ns)
                inner, outer = f"cc{self.tag}i{i}", f"cc{self.tag}h{i}"
                _ip("link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", self.hub)
                _ip("-n", self.hub, "link", "set", outer, "master", "br0")
                _ip("-n", self.hub, "link", "set", outer, "up")
                _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inner)
                _ip("-n", ns, "link", "set", inner, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
            self._start_forwarders()
        except BaseException:
            self.close()
            raise
        return self

    def _start_forwarders(self) -> None:
        module = [sys.executable, "-m", "codecoop.sim.netns", "forward"]
        log = open(self.work / "netns-forwarders.log", "a")
        self._forwarders.append(
            subprocess.Popen(
                [*module, "--listen", f"unix:{self.socket}", "--to", f"tcp:127.0.0.1:{self.chain_port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        for i in range(self.count):
            self._forwarders.append(
                subprocess.Popen(
                    [*self.exec_prefix(i), *module, "--listen", f"tcp:127.0.0.1:{self.chain_port}", "--to", f"unix:{self.socket}"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        log.close()

    def set_link(self, i: int, up: bool) -> None:
        """Bring organisation ``i``'s link to the bridge down or up again (its chain connection is not touched)."""
        _ip("-n", self.hub, "link", "set", f"cc{self.tag}h{i}", "up" if up else "down")

    def close(self) -> None:
        """Stop the forwarders and delete every namespace made (their veth pairs go with them)."""
        for proc in self._forwarders:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
        self._forwarders.clear()
        for ns in reversed(self._made):
            _ip("netns", "del", ns, check=False)
        self._made.clear()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()


# ---------------------------------------------------------------------- the forwarder
async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _open(target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    kind, _, rest = target.partition(":")
    if kind == "unix":
        return await asyncio.open_unix_connection(rest)
    host, _, port = rest.rpartition(":")
    return await asyncio.open_connection(host, int(port))


async def _forward(listen: str, to: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(_open(to), 10)
        except (TimeoutError, OSError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    kind, _, rest = listen.partition(":")
    if kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(rest)
        server = await asyncio.start_unix_server(handle, rest)
    else:
        host, _, port = rest.rpartition(":")
        server = await asyncio.start_server(handle, host, int(port))
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m codecoop.sim.netns", description="Byte forwarder between a TCP port and a Unix socket."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fwd = sub.add_parser("forward", help="accept on --listen and pass every connection's bytes to --to")
    fwd.add_argument("--listen", required=True, help="tcp:HOST:PORT or unix:PATH")
    fwd.add_argument("--to", required=True, help="tcp:HOST:PORT or unix:PATH")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_forward(args.listen, args.to))


if __name__ == "__main__":
    main()
