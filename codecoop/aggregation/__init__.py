"""Aggregation strategies over LoRA adapter tensors: deterministic bytes in, deterministic bytes out.

Every honest node merges the accepted updates of a round on its own, and the round completes only
when several of them confirm the same CID, so the same inputs give byte-identical safetensors in
any order, in any process, on any CPU (the rule is in ``docs/AGGREGATION.md``).

>>> from codecoop.aggregation import Update, get_strategy
>>> agg = get_strategy("fedmedian").aggregate(updates, base=global_tensors)   # doctest: +SKIP
>>> data = agg.to_bytes()                                                       # doctest: +SKIP
"""

from codecoop.aggregation.base import ACCUM_DTYPE, Aggregate, Strategy, StrategyBase, Tensors, Update
from codecoop.aggregation.fedavg import FedAvg, sample_weights
from codecoop.aggregation.fedmedian import FedMedian
from codecoop.aggregation.fedopt import FedAdagrad, FedAdam, FedOpt, FedYogi
from codecoop.aggregation.fedtrimmedavg import FedTrimmedAvg
from codecoop.aggregation.krum import Krum, MultiKrum
from codecoop.aggregation.pipeline import Pipeline
from codecoop.aggregation.registry import STRATEGIES, available_strategies, get_strategy
from codecoop.aggregation.spec import STATEFUL, StrategySpec, parse_strategy
from codecoop.aggregation.steps import GaussianNoise, NormClip, PostStep, PreStep, update_norm
from codecoop.aggregation.validation import validate_updates
from codecoop.tensors import from_safetensors, to_safetensors

__all__ = [
    "ACCUM_DTYPE",
    "Aggregate",
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedMedian",
    "FedOpt",
    "FedTrimmedAvg",
    "FedYogi",
    "GaussianNoise",
    "Krum",
    "MultiKrum",
    "NormClip",
    "Pipeline",
    "PostStep",
    "PreStep",
    "STATEFUL",
    "STRATEGIES",
    "Strategy",
    "StrategyBase",
    "StrategySpec",
    "Tensors",
    "Update",
    "available_strategies",
    "from_safetensors",
    "get_strategy",
    "parse_strategy",
    "sample_weights",
    "to_safetensors",
    "update_norm",
    "validate_updates",
]
