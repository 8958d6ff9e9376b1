"""codecoop: federated LoRA fine-tuning of a shared code model, coordinated on an Ethereum chain.

Importing the package is cheap: torch, transformers, web3 and libp2p load only in the sub-packages
that need them.
"""

__version__ = "0.1.0"
