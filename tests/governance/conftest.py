"""A federation on the embedded chain whose deployment the CLI reaches through an injected connection."""

from __future__ import annotations

import pytest

from codecoop.chain import backend
from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams

from .flows import PASSWORD, PASSWORD_ENV, Cli

PARAMS = FederationParams(
    submit_window=12, commit_window=10, reveal_window=10, confirm_window=12, epoch_length=200,
    voting_period=15, vote_extension=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def _fed() -> DevFederation:
    return DevFederation.create(4, PARAMS)


@pytest.fixture
def cli(_fed, tmp_path_factory, monkeypatch) -> Cli:
    """The CLI on the module's federation; chain state is rolled back after each test.

    The embedded chain lives in this process, so the CLI's ``connect`` is pointed at it.
    """
    monkeypatch.setattr(backend, "connect", lambda url, **kw: _fed.chain)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    snapshot = _fed.chain.snapshot()
    # keystores per test: each test module has its own federation, hence its own member keys
    yield Cli.setup(_fed, tmp_path_factory.mktemp("cli"), "http://embedded.test")
    _fed.chain.revert_to(snapshot)
