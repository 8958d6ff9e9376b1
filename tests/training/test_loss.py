"""The fused output-projection cross-entropy equals the model's own loss, value and gradient."""

from __future__ import annotations

import torch

from codecoop.training import BaseModel, LoraSpec, attached
from codecoop.training.loss import fused_causal_lm_loss, supports_fused_loss


def test_fused_loss_matches_the_models_loss_and_gradients(tiny: BaseModel) -> None:
    ids = torch.randint(0, len(tiny.tokenizer), (3, 40), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    with attached(tiny, None, LoraSpec(4, 8, 0.0, ("q_proj", "v_proj"))) as model:
        for name, p in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.02)
        params = [p for p in model.parameters() if p.requires_grad]
        reference = model(input_ids=ids, labels=ids, use_cache=False).loss
        reference.backward()
        expected = [p.grad.clone() for p in params]
        for p in params:
            p.grad = None
        causal_lm = model.get_base_model()
        assert supports_fused_loss(causal_lm)
        fused = fused_causal_lm_loss(causal_lm, ids)
        fused.backward()
        torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-6)
        for got, want in zip((p.grad for p in params), expected):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


def test_fused_loss_without_gradients_is_just_the_loss(tiny: BaseModel) -> None:
    ids = torch.randint(0, len(tiny.tokenizer), (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = tiny.model(input_ids=ids, labels=ids).loss
        got = fused_causal_lm_loss(tiny.model, ids)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
