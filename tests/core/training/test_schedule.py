"""Poly learning rate with linear warmup (docs/method.md §5)."""

import pytest

from panoptic_deeplab.training.schedule import WarmupPolyDecay


def lr(schedule, step):
    return float(schedule(step))


def test_poly_decay_without_warmup():
    s = WarmupPolyDecay(1e-3, total_steps=100, power=0.9)
    assert lr(s, 0) == pytest.approx(1e-3)
    assert lr(s, 50) == pytest.approx(1e-3 * 0.5**0.9)
    assert lr(s, 100) == pytest.approx(0.0)
    assert lr(s, 250) == pytest.approx(0.0)  # clipped, never negative


def test_linear_warmup_then_poly_with_end_rate():
    s = WarmupPolyDecay(2e-3, total_steps=100, end_learning_rate=1e-4, power=0.9, warmup_steps=10)
    assert lr(s, 0) == pytest.approx(0.0)
    assert lr(s, 5) == pytest.approx(1e-3)
    assert lr(s, 10) == pytest.approx((2e-3 - 1e-4) * 0.9**0.9 + 1e-4)
    assert lr(s, 100) == pytest.approx(1e-4)


def test_accumulation_counts_optimizer_updates_not_micro_batches():
    s = WarmupPolyDecay(1e-3, total_steps=100, accumulation=4)
    assert lr(s, 200) == pytest.approx(lr(WarmupPolyDecay(1e-3, total_steps=100), 50))
    assert lr(s, 203) == pytest.approx(lr(s, 200))


def test_serialises_with_keras():
    s = WarmupPolyDecay(1e-3, total_steps=7, warmup_steps=2, accumulation=3)
    again = WarmupPolyDecay.from_config(s.get_config())
    assert [lr(again, i) for i in range(25)] == pytest.approx([lr(s, i) for i in range(25)])
