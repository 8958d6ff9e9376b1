"""Screening refuses free rides, later copies and updates unrelated to the member's own, and leaves
honest, distinct updates alone."""

from __future__ import annotations

import torch

from codecoop.errors import CodecoopError
from codecoop.node.screening import Candidate, CopiedUpdate, FreeRide, UnrelatedUpdate, screen_round, screen_updates

NAMES = ("layer.0.lora_A.weight", "layer.0.lora_B.weight", "layer.1.lora_A.weight")


def tensors(seed: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {n: scale * torch.randn(64, 128, generator=gen) for n in NAMES}  # 24,576 values: noise is near-orthogonal


BASE = tensors(0)


def update(seed: int, size: float = 0.5) -> dict[str, torch.Tensor]:
    """The base plus an independent random change (an honest update of another member)."""
    change = tensors(seed, size)
    return {n: BASE[n] + change[n] for n in NAMES}


def perturbed(t: dict[str, torch.Tensor], relative: float, seed: int = 99) -> dict[str, torch.Tensor]:
    """``t`` plus noise of L2 norm ``relative`` times ``t``'s change from the base."""
    noise = tensors(seed)
    change = sum(float(((t[n] - BASE[n]) ** 2).sum()) for n in NAMES) ** 0.5
    size = sum(float((noise[n] ** 2).sum()) for n in NAMES) ** 0.5
    return {n: t[n] + noise[n] * (relative * change / size) for n in NAMES}


def test_distinct_honest_updates_pass():
    cands = [Candidate(i, f"cid-{i}", update(10 + i)) for i in range(5)]
    assert screen_updates(cands, "base-cid", BASE) == {}


def test_an_exact_copy_by_cid_is_refused_and_the_original_kept():
    cands = [Candidate(0, "cid-a", update(1)), Candidate(1, "cid-b", update(2)), Candidate(2, "cid-a", update(1))]
    refused = screen_updates(cands, None, BASE)
    assert set(refused) == {2}
    assert isinstance(refused[2], CopiedUpdate) and refused[2].original == 0


def test_the_same_tensors_under_another_cid_are_a_copy():
    original = update(1)
    refused = screen_updates([Candidate(0, "cid-a", original), Candidate(1, "cid-b", dict(original))], None, BASE)
    assert isinstance(refused[1], CopiedUpdate) and 0 not in refused


def test_a_slightly_perturbed_copy_is_refused_whatever_order_the_candidates_come_in():
    original = update(1)
    cands = [Candidate(3, "cid-copy", perturbed(original, 0.05)), Candidate(0, "cid-x", update(7)), Candidate(1, "cid-orig", original)]
    refused = screen_updates(cands, None, BASE)
    assert set(refused) == {3} and refused[3].original == 1


def test_the_earlier_registration_is_the_original_even_if_it_is_the_perturbed_one():
    original = update(1)
    refused = screen_updates([Candidate(0, "cid-p", perturbed(original, 0.05)), Candidate(1, "cid-o", original)], None, BASE)
    assert set(refused) == {1}


def test_a_copy_perturbed_beyond_the_distance_is_still_a_copy_by_its_direction():
    original = update(1)
    cands = [Candidate(0, "cid-o", original), Candidate(1, "cid-p", perturbed(original, 0.3))]  # cosine 1/sqrt(1.09) = 0.958
    assert screen_updates(cands, None, BASE, copy_distance=0.1, copy_similarity=1.0) == {}  # the distance alone lets it by
    assert set(screen_updates(cands, None, BASE, copy_distance=0.5, copy_similarity=1.0)) == {1}
    refused = screen_updates(cands, None, BASE, copy_distance=0.1)  # the default copy_similarity (0.9) does not
    assert set(refused) == {1} and "cosine similarity 0.958" in str(refused[1]) and refused[1].original == 0
    # noise past the similarity too (cosine 1/sqrt(1.36) = 0.857) is no copy for screening to see
    assert screen_updates([cands[0], Candidate(1, "cid-p", perturbed(original, 0.6))], None, BASE) == {}


def test_a_scaled_copy_is_a_copy_however_far_it_is_from_the_original():
    original = update(1)
    half = {n: BASE[n] + 0.5 * (original[n] - BASE[n]) for n in NAMES}  # distance 0.5 of the original's change
    refused = screen_updates([Candidate(0, "o", original), Candidate(1, "h", half), Candidate(2, "x", update(2))], None, BASE)
    assert set(refused) == {1} and isinstance(refused[1], CopiedUpdate)


def test_a_change_far_below_the_rounds_median_is_a_free_ride_even_above_the_absolute_floor():
    workers = [Candidate(i, f"w{i}", update(10 + i)) for i in range(3)]  # changes of about 0.5 of the base's norm
    rider = Candidate(3, "rider", update(20, size=1.5e-3))  # 1.5 x the absolute floor (1e-3 of the base's norm)
    refused = screen_updates([*workers, rider], None, BASE)
    assert set(refused) == {3} and isinstance(refused[3], FreeRide) and "median change" in str(refused[3])
    assert screen_updates([*workers, rider], None, BASE, min_relative_change=0) == {}  # off
    assert screen_updates([workers[0], rider], None, BASE) == {}  # two updates: no cohort to measure against


def test_resubmitting_the_base_cid_is_a_free_ride():
    refused = screen_updates([Candidate(0, "base-cid", dict(BASE))], "base-cid", BASE)
    assert isinstance(refused[0], FreeRide)


def test_the_base_tensors_or_a_tiny_perturbation_of_them_are_free_rides():
    tiny = tensors(5, 1e-6)
    cands = [
        Candidate(0, "cid-same", dict(BASE)),
        Candidate(1, "cid-tiny", {n: BASE[n] + tiny[n] for n in NAMES}),
        Candidate(2, "cid-work", update(3)),
    ]
    refused = screen_updates(cands, None, BASE)
    assert set(refused) == {0, 1} and all(isinstance(e, FreeRide) for e in refused.values())


def test_the_free_ride_floor_is_relative_to_the_base_and_can_be_turned_off():
    small = update(3, size=1e-3)  # a change of about 1e-3 of the base's norm
    assert set(screen_updates([Candidate(0, "c", small)], None, BASE, min_change=1e-2)) == {0}
    assert screen_updates([Candidate(0, "c", small)], None, BASE, min_change=1e-5) == {}
    assert set(screen_updates([Candidate(0, "c", dict(BASE))], None, BASE, min_change=0)) == {0}  # identical is never work


def test_two_free_riders_are_free_rides_not_copies_of_each_other():
    refused = screen_updates([Candidate(0, "a", dict(BASE)), Candidate(1, "b", dict(BASE))], None, BASE)
    assert all(isinstance(e, FreeRide) for e in refused.values()) and set(refused) == {0, 1}


def test_updates_with_other_tensor_names_or_shapes_are_left_to_the_other_checks():
    odd = {n: torch.zeros(4, 4) for n in NAMES}
    cands = [Candidate(0, "cid-a", update(1)), Candidate(1, "cid-odd", odd), Candidate(2, "cid-none", None)]
    assert screen_updates(cands, None, BASE) == {}


def test_screen_round_loads_each_update_and_treats_unloadable_ones_by_cid_only():
    class Info:
        def __init__(self, update_id, cid):
            self.update_id, self.cid = update_id, cid

    stored = {"cid-a": update(1), "cid-b": update(1)}

    def load(u):
        if u.cid not in stored:
            raise CodecoopError(f"{u.cid} is not a codecoop adapter")
        return stored[u.cid]

    infos = [Info(0, "cid-a"), Info(1, "cid-bad"), Info(2, "cid-b"), Info(3, "cid-bad")]
    refused = screen_round(infos, load, None, BASE)
    assert set(refused) == {2, 3}
    assert refused[2].original == 0 and refused[3].original == 1


def test_messages_name_the_update_and_the_original():
    refused = screen_updates([Candidate(0, "cid-a", update(1)), Candidate(1, "cid-a", update(1))], None, BASE)
    assert "update #1" in str(refused[1]) and "#0" in str(refused[1])


# ---------------------------------------------------------------------- direction against the own update
COMMON = tensors(50, 0.5)


def trained(seed: int) -> dict[str, torch.Tensor]:
    """Like an honest update: a change shared by everyone training on code, plus its own part."""
    own = tensors(seed, 0.5)
    return {n: BASE[n] + COMMON[n] + own[n] for n in NAMES}


def test_updates_sharing_the_own_updates_direction_pass():
    cands = [Candidate(i, f"cid-{i}", trained(20 + i)) for i in range(4)]
    assert screen_updates(cands, None, BASE, reference=2) == {}


def test_noise_of_an_honest_size_is_unrelated_to_the_own_update():
    honest = trained(20)
    size = sum(float(((honest[n] - BASE[n]) ** 2).sum()) for n in NAMES) ** 0.5
    noise = tensors(77)
    scale = size / sum(float((noise[n] ** 2).sum()) for n in NAMES) ** 0.5
    cands = [Candidate(0, "cid-own", honest), Candidate(1, "cid-noise", {n: BASE[n] + scale * noise[n] for n in NAMES})]
    refused = screen_updates(cands, None, BASE, reference=0)
    assert set(refused) == {1} and isinstance(refused[1], UnrelatedUpdate) and "cosine" in str(refused[1])


def test_a_reversed_update_is_unrelated_and_the_own_update_never_is():
    own, other = trained(20), trained(21)
    reversed_ = {n: BASE[n] - (other[n] - BASE[n]) for n in NAMES}
    refused = screen_updates([Candidate(0, "own", own), Candidate(1, "rev", reversed_)], None, BASE, reference=0)
    assert set(refused) == {1}
    assert screen_updates([Candidate(0, "own", own), Candidate(1, "rev", reversed_)], None, BASE, reference=1).keys() == {0}


def test_without_an_own_update_or_with_the_check_off_direction_is_not_judged():
    cands = [Candidate(0, "a", update(1)), Candidate(1, "b", update(2))]
    assert screen_updates(cands, None, BASE) == {}
    assert screen_updates(cands, None, BASE, reference=0, min_agreement=-1.0) == {}


def test_a_member_that_skipped_its_submission_judges_direction_by_the_adapter_it_trained():
    # the selective-update rule kept its adapter off the chain; it still points the way this member's code does
    honest, skipped = trained(20), trained(21)
    size = sum(float(((honest[n] - BASE[n]) ** 2).sum()) for n in NAMES) ** 0.5
    noise = tensors(77)
    scale = size / sum(float((noise[n] ** 2).sum()) for n in NAMES) ** 0.5
    cands = [Candidate(0, "cid-honest", honest), Candidate(1, "cid-noise", {n: BASE[n] + scale * noise[n] for n in NAMES})]
    assert screen_updates(cands, None, BASE) == {}, "no reference: direction is not judged"
    refused = screen_updates(cands, None, BASE, reference_tensors=skipped)
    assert set(refused) == {1} and isinstance(refused[1], UnrelatedUpdate)
    assert screen_updates(cands, None, BASE, reference_tensors=dict(BASE)) == {}, "a reference that did no work is none"


def test_an_own_update_that_did_no_work_is_no_reference():
    cands = [Candidate(0, "own", dict(BASE)), Candidate(1, "b", update(2))]
    assert set(screen_updates(cands, None, BASE, reference=0)) == {0}


def test_screen_round_takes_the_reference_from_the_members_address():
    class Info:
        def __init__(self, update_id, cid, submitter):
            self.update_id, self.cid, self.submitter = update_id, cid, submitter

    stored = {"own": trained(20), "peer": trained(21), "noise": update(3)}
    infos = [Info(0, "peer", "0xB"), Info(1, "own", "0xA"), Info(2, "noise", "0xC")]
    assert set(screen_round(infos, lambda u: stored[u.cid], None, BASE, reference="0xA")) == {2}
    assert screen_round(infos, lambda u: stored[u.cid], None, BASE, reference="0xD") == {}


def test_reversing_only_lora_b_is_unrelated_although_the_overall_direction_agrees():
    own, other = trained(20), trained(21)
    flipped = {n: BASE[n] - (other[n] - BASE[n]) if ".lora_B." in n else other[n] for n in NAMES}
    change = torch.cat([(flipped[n] - BASE[n]).reshape(-1) for n in NAMES])
    reference = torch.cat([(own[n] - BASE[n]).reshape(-1) for n in NAMES])
    assert float(change.dot(reference) / (change.norm() * reference.norm())) > 0.05  # overall it agrees
    refused = screen_updates([Candidate(0, "own", own), Candidate(1, "flip", flipped)], None, BASE, reference=0)
    assert set(refused) == {1} and "lora_B" in str(refused[1])
