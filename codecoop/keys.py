"""Ethereum keys in encrypted JSON keystores (eth-account), never plain hex in a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from codecoop.errors import ConfigError

__all__ = ["create_keystore", "load_keystore", "read_password"]


def read_password(*, env: str | None = None, file: str | Path | None = None) -> str:
    """A keystore password from an environment variable or a file (first line)."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"the password variable {env} is not set; export it or use a password file")
        return value
    if file:
        try:
            return Path(file).read_text().splitlines()[0] if Path(file).read_text() else ""
        except FileNotFoundError:
            raise ConfigError(f"password file {file} does not exist") from None
    raise ConfigError("no password source: give a password environment variable or a password file")


def create_keystore(path: str | Path, password: str, *, account: LocalAccount | None = None) -> LocalAccount:
    """Write a new (or the given) key to ``path`` as an encrypted keystore; refuses to overwrite one."""
    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path} exists already; codecoop never overwrites a keystore")
    if len(password) < 8:
        raise ConfigError("the keystore password must have at least 8 characters")
    account = account or Account.create()
    data = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(data, f)
    os.chmod(f.name, 0o600)
    os.replace(f.name, path)
    return account


def load_keystore(path: str | Path, password: str) -> LocalAccount:
    """Decrypt a keystore; a wrong password or a damaged file gives a ConfigError naming the file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"keystore {path} does not exist; create one with `codecoop init`") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"keystore {path} is not valid JSON: {exc}") from None
    try:
        return Account.from_key(Account.decrypt(data, password))
    except ValueError as exc:
        raise ConfigError(f"cannot decrypt keystore {path}: {exc} (wrong password?)") from None
