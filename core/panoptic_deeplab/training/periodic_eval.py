"""PQ / SQ / RQ / mIoU of the network being trained, on a validation split: ``pdl evaluate``'s own
function (``evaluation.evaluate_split``) with the network wrapped in the Predictor ``pdl evaluate``
builds for a bundle (``network_predictor``), so any image size works and the numbers are those of a
later ``pdl evaluate`` of that model by construction."""

from __future__ import annotations

from collections.abc import Callable


def make_periodic_evaluator(reader, split: str, config, spec, limit: int | None = None) -> Callable:
    """``evaluate(network, step) -> {pq, sq, rq, miou, pq_things, pq_stuff, images}`` on the first
    ``limit`` images of ``split`` (all when None). ``evaluate.last_result``: the whole result of the
    latest call (``evaluate_split``'s ``EvaluationResult``: ``pdl evaluate --out`` less the
    settings)."""
    from ..evaluation.evaluate_split import evaluate_split, network_predictor

    predictors: dict[
        int, object
    ] = {}  # one per network: its traced graphs read the current weights

    def evaluate(network, step: int) -> dict:
        predictor = predictors.get(id(network))
        if predictor is None:
            predictor = predictors[id(network)] = network_predictor(network, config, spec)
        result = evaluate_split(
            predictor,
            reader,
            limit=int(limit) if limit else None,
            ap="none",
            where=f"--eval-split {split}",
        )
        evaluate.last_result = result
        return result.summary()

    evaluate.last_result = None
    return evaluate
