"""One entry point for the training pipeline: ``python -m training <step> [options]``.

Steps, in the order ``make models`` runs them (each is resumable: a step whose output exists is
skipped, seeds are fixed, and every evaluation is appended to the output folder's ``log.jsonl``):

    bases        all-mpnet-base-v2 (the large teacher) from its parts  (training.bases)
    export       fp32 ONNX of a base or a fine-tuned folder           (training.export)
    finetune     Sentence-BERT: STSb, then [silver], then event pairs  (training.finetune)
    augment      cross-encoder teacher; BM25 + neighbour mining; silver (training.augment)
    distil       3-layer student learns the 6-layer teacher's vectors  (training.distil)
    quantize     fuse + int8 (4-bit word embeddings optional) + card    (training.quantize)
    sentiment    logistic head on a frozen encoder (the first model)   (training.sentiment)
    sentiment-distil  fine-tuned teacher, silver labels, student       (training.sentiment_distil)
    sentiment-head    the student's last layer refitted on gold data    (training.sentiment_head)
    room         measured, not shipped: cosine corrected by the event's other questions (training.room)
    verifier     cross-encoder verifying the best duplicate candidate (training.verifier)
    card-metrics STSb, event pairs, COVID-Q, latency into the cards    (training.card_metrics)
    report       docs/models.md from the cards                         (training.report)

``python -m training STEP --help`` shows a step's options.
"""

from __future__ import annotations

import importlib
import sys

STEPS = {
    "bases": "bases",
    "export": "export",
    "finetune": "finetune",
    "augment": "augment",
    "distil": "distil",
    "quantize": "quantize",
    "sentiment": "sentiment",
    "sentiment-distil": "sentiment_distil",
    "sentiment-head": "sentiment_head",
    "room": "room",
    "verifier": "verifier",
    "card-metrics": "card_metrics",
    "report": "report",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STEPS:
        print(__doc__, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: unknown step {argv[0]!r}; one of {', '.join(STEPS)}", file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(f"training.{STEPS[argv[0]]}")
    sys.argv = [f"python -m training {argv[0]}", *argv[1:]]
    module.main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
