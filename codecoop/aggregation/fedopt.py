"""Server optimisers: FedAdam, FedYogi and FedAdagrad (Reddi et al., "Adaptive Federated
Optimization", 2021), with the defaults and update rules of Flower's strategies.

They step from the round's global adapter ``base`` (the keyword argument of ``aggregate``), using
the FedAvg mean of the client adapters minus ``base`` as the pseudo-gradient ``d``::

    m <- beta_1 * m + (1 - beta_1) * d
    v <- beta_2 * v + (1 - beta_2) * d^2                 (FedAdam)
    v <- v - (1 - beta_2) * d^2 * sign(v - d^2)          (FedYogi)
    v <- v + d^2                                         (FedAdagrad)
    x <- base + lr_t * m / (sqrt(v) + tau)

with ``lr_t = eta * sqrt(1 - beta_2^t) / (1 - beta_1^t)`` for FedAdam (bias correction, as in
Flower) and ``lr_t = eta`` otherwise. ``m``, ``v`` and the step ``t`` carry between rounds in the
state: canonical safetensors bytes (float64 ``m/<name>`` and ``v/<name>`` tensors, metadata with the
strategy and step), so the state is stored content-addressed beside the model and any round can be
recomputed from (base, updates, state). ``state=None`` starts from zero moments at step 0.
"""

from __future__ import annotations

import abc
import math

import torch

from codecoop.aggregation import _kernels as kernels
from codecoop.aggregation.base import ACCUM_DTYPE, StrategyBase, Tensors, Update
from codecoop.aggregation.fedavg import sample_weights
from codecoop.aggregation.validation import all_finite
from codecoop.errors import AggregationError, ConfigError, TensorFormatError
from codecoop.tensors import from_safetensors, to_safetensors

__all__ = ["FedOpt", "FedAdam", "FedYogi", "FedAdagrad"]


def _power(x: float, t: int) -> float:
    """``x ** t`` by repeated multiplication: exact IEEE steps, unlike a libm ``pow``."""
    result = 1.0
    for _ in range(t):
        result *= x
    return result


class FedOpt(StrategyBase):
    """Shared machinery of the server optimisers; subclasses define the second-moment rule.

    Parameters
    ----------
    eta:
        Server learning rate.
    beta_1, beta_2:
        Moment decay rates in ``[0, 1)``.
    tau:
        Adaptivity (added to ``sqrt(v)``), positive.
    max_weight:
        Cap on any one client's weight in the pseudo-gradient, as in FedAvg.
    """

    def __init__(
        self,
        eta: float = 1e-1,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        tau: float = 1e-9,
        max_weight: float | None = None,
    ) -> None:
        if not eta > 0.0:
            raise ConfigError(f"{self.name}: eta must be positive, got {eta!r}")
        for key, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{self.name}: {key} must be in [0, 1), got {value!r}")
        if not tau > 0.0:
            raise ConfigError(f"{self.name}: tau must be positive, got {tau!r}")
        if max_weight is not None and not 0.0 < max_weight <= 1.0:
            raise ConfigError(f"{self.name}: max_weight must be in (0, 1], got {max_weight!r}")
        self.eta, self.beta_1, self.beta_2, self.tau = float(eta), float(beta_1), float(beta_2), float(tau)
        self.max_weight = None if max_weight is None else float(max_weight)

    def describe(self) -> dict[str, object]:
        return {"eta": self.eta, "beta_1": self.beta_1, "beta_2": self.beta_2, "tau": self.tau, "max_weight": self.max_weight}

    def learning_rate(self, step: int) -> float:
        """Step size at step ``step`` (1-based)."""
        return self.eta

    @abc.abstractmethod
    def update_second_moment(self, v: torch.Tensor, d2: torch.Tensor, scratch: torch.Tensor) -> None:
        """Update ``v`` in place from the squared pseudo-gradient ``d2`` (which may be overwritten)."""

    def load_state(self, state: bytes | None, base: Tensors) -> tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(step, m, v)`` from ``state``, or zeros at step 0 when ``state`` is ``None``.

        Raises
        ------
        AggregationError
            If the state is not this strategy's, or does not fit ``base``.
        """
        if state is None:
            m = {name: torch.zeros(t.shape, dtype=ACCUM_DTYPE) for name, t in base.items()}
            v = {name: torch.zeros(t.shape, dtype=ACCUM_DTYPE) for name, t in base.items()}
            return 0, m, v
        try:
            tensors, meta = from_safetensors(state)
        except TensorFormatError as exc:
            raise AggregationError(f"{self.name}: the server-optimiser state is unreadable: {exc}") from exc
        if meta.get("codecoop.strategy") != self.name:
            raise AggregationError(
                f"{self.name}: the state was written by {meta.get('codecoop.strategy')!r}; start from state=None when switching strategy"
            )
        step_text = meta.get("codecoop.step", "")
        if not step_text.isdigit():
            raise AggregationError(f"{self.name}: the state has no valid step, got {step_text!r}")
        expected = {f"{kind}/{name}" for name in base for kind in ("m", "v")}
        if set(tensors) != expected:
            raise AggregationError(
                f"{self.name}: the state's tensors do not match the base adapter's names; it belongs to another adapter layout"
            )
        for key, t in tensors.items():
            name = key.split("/", 1)[1]
            if t.dtype != ACCUM_DTYPE or t.shape != base[name].shape or not all_finite(t):
                raise AggregationError(f"{self.name}: state tensor {key!r} must be finite float64 of shape {tuple(base[name].shape)}")
        m = {name: tensors[f"m/{name}"] for name in base}
        v = {name: tensors[f"v/{name}"] for name in base}
        return int(step_text), m, v

    def combine(self, updates: list[Update], state: bytes | None, base: Tensors | None) -> tuple[dict[str, torch.Tensor], bytes | None]:
        if base is None:
            raise AggregationError(f"{self.name} steps from the current global adapter: pass it as aggregate(..., base=tensors)")
        step, m, v = self.load_state(state, base)
        step += 1
        lr = self.learning_rate(step)
        weights = sample_weights([u.num_samples for u in updates], self.max_weight)
        delta, tmp, d2, scratch = (kernels.accum_buffer() for _ in range(4))
        out: dict[str, torch.Tensor] = {}
        for name in sorted(base):
            ref = base[name]
            mean = torch.empty(kernels.CHUNK, dtype=kernels.sum_dtype(ref.dtype))
            mean_tmp = torch.empty(kernels.CHUNK, dtype=kernels.sum_dtype(ref.dtype))
            origin = kernels.flat(ref)
            inputs = [kernels.flat(u.tensors[name]) for u in updates]
            m_flat, v_flat = m[name].reshape(-1), v[name].reshape(-1)
            result = torch.empty(ref.numel(), dtype=ref.dtype)
            for start, stop in kernels.chunk_ranges(ref.numel()):
                size = stop - start
                d = delta[:size]
                d.copy_(kernels.weighted_sum(mean[:size], mean_tmp, inputs, weights, start, stop))
                d.sub_(origin[start:stop])
                mc, vc, t, sq = m_flat[start:stop], v_flat[start:stop], tmp[:size], d2[:size]
                mc.mul_(self.beta_1)
                t.copy_(d)
                t.mul_(1.0 - self.beta_1)
                mc.add_(t)
                sq.copy_(d)
                sq.mul_(d)
                self.update_second_moment(vc, sq, scratch[:size])
                t.copy_(vc)
                t.sqrt_()
                t.add_(self.tau)
                d.copy_(mc)
                d.mul_(lr)
                d.div_(t)
                d.add_(origin[start:stop])
                result[start:stop].copy_(d)
            out[name] = result.reshape(ref.shape)
        moments = {f"m/{name}": m[name] for name in base} | {f"v/{name}": v[name] for name in base}
        new_state = to_safetensors(moments, {"codecoop.strategy": self.name, "codecoop.step": str(step)})
        return out, new_state


class FedAdam(FedOpt):
    """Adam on the server (``fedadam``), with Adam's bias correction as in Flower."""

    name = "fedadam"

    def learning_rate(self, step: int) -> float:
        return self.eta * math.sqrt(1.0 - _power(self.beta_2, step)) / (1.0 - _power(self.beta_1, step))

    def update_second_moment(self, v: torch.Tensor, d2: torch.Tensor, scratch: torch.Tensor) -> None:
        v.mul_(self.beta_2)
        d2.mul_(1.0 - self.beta_2)
        v.add_(d2)


class FedYogi(FedOpt):
    """Yogi on the server (``fedyogi``): ``v`` moves towards ``d^2`` by an additive step."""

    name = "fedyogi"

    def __init__(
        self,
        eta: float = 1e-2,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        tau: float = 1e-3,
        max_weight: float | None = None,
    ) -> None:
        super().__init__(eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau, max_weight=max_weight)

    def update_second_moment(self, v: torch.Tensor, d2: torch.Tensor, scratch: torch.Tensor) -> None:
        torch.sub(v, d2, out=scratch)
        scratch.sign_()
        d2.mul_(1.0 - self.beta_2)
        d2.mul_(scratch)
        v.sub_(d2)


class FedAdagrad(FedOpt):
    """Adagrad on the server (``fedadagrad``): ``v`` sums the squared pseudo-gradients."""

    name = "fedadagrad"

    def __init__(
        self,
        eta: float = 1e-1,
        beta_1: float = 0.0,
        tau: float = 1e-9,
        max_weight: float | None = None,
    ) -> None:
        # Adagrad has no second-moment decay; beta_2 is unused by its rule.
        super().__init__(eta=eta, beta_1=beta_1, beta_2=0.0, tau=tau, max_weight=max_weight)

    def describe(self) -> dict[str, object]:
        return {"eta": self.eta, "beta_1": self.beta_1, "tau": self.tau, "max_weight": self.max_weight}

    def update_second_moment(self, v: torch.Tensor, d2: torch.Tensor, scratch: torch.Tensor) -> None:
        v.add_(d2)
