"""One module per chain backend, each a :class:`codecoop.chain.backend.Chain`: ``embedded`` and ``rpc``."""
