"""Shared pytest configuration.

Markers (declared in pyproject.toml): ``slow`` for long runs, ``daemon`` for tests that start a real
hardhat node, IPFS daemon or libp2p peers. CI runs everything; locally ``-m "not slow and not daemon"``
gives the fast unit suite.
"""
