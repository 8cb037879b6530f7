from __future__ import annotations

import csv
import json
import time
import uuid
from pathlib import Path

import numpy as np
from django.core.cache import cache
from django.core.management.base import BaseCommand
from django.test import Client
from django.test.utils import override_settings

from webapp.events.models import Event
from webapp.questions.models import Question

PAIRS_DIR = Path(__file__).resolve().parents[4] / "training" / "data" / "event_pairs"


def event_questions() -> list[str]:
    texts: dict[str, None] = {}
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        with open(PAIRS_DIR / name, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                texts.setdefault(row["question_a"], None)
                texts.setdefault(row["question_b"], None)
    return list(texts)


def quantiles(ms: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)}


class Command(BaseCommand):
    help = (
        "Benchmark the question flow in this process (embedded defaults unless the environment says otherwise): "
        "an event is filled with N questions, then new questions are posted through the API and timed until "
        "GET /api/questions/<id> shows them processed and flagged, and the similar-questions endpoint is timed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--questions", type=int, default=1000, help="questions already in the event")
        parser.add_argument("--posts", type=int, default=200, help="timed posts")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark event")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, questions: int, posts: int, keep: bool, as_json: bool, **options) -> None:
        texts = event_questions()
        event = Event.create(f"bench {uuid.uuid4().hex[:6]}")
        client = Client(HTTP_HOST="localhost")
        limits = {"POSTS_PER_MINUTE": 10**9, "POSTS_PER_MINUTE_PER_ADDRESS": 10**9, "SIMILAR_PER_MINUTE": 10**9}
        # Post to flagged is timed as an attendee sees it: the POST waits for its processing.
        limits["QUESTION_INLINE_WAIT_S"] = 600
        try:
            with override_settings(**limits):
                client.get(f"/e/{event.code}/")  # the attendee identity the event page gives
                fill_start = time.perf_counter()
                for i in range(questions):
                    self._post(client, event, texts[i % len(texts)])
                fill_s = time.perf_counter() - fill_start
                flagged_ms, flags = [], 0
                probe = texts[questions % len(texts) :] + texts[: questions % len(texts)]
                for i in range(posts):
                    start = time.perf_counter()
                    qid = self._post(client, event, probe[i % len(probe)])
                    detail = client.get(f"/api/questions/{qid}").json()
                    while detail["state"] == Question.State.PENDING:  # a real worker: poll as a page would
                        time.sleep(0.002)
                        detail = client.get(f"/api/questions/{qid}").json()
                    flagged_ms.append((time.perf_counter() - start) * 1000)
                    flags += bool(detail["flags"])
                similar_ms = []
                for i in range(posts):
                    start = time.perf_counter()
                    response = client.get(f"/api/events/{event.code}/similar", {"q": probe[(i * 7) % len(probe)]})
                    assert response.status_code == 200, response.content
                    similar_ms.append((time.perf_counter() - start) * 1000)
            result = {
                "database": Question.objects.db,
                "event_questions": questions,
                "fill_s": round(fill_s, 1),
                "posts": posts,
                "post_to_flagged": quantiles(flagged_ms),
                "posts_with_flags": flags,
                "similar": quantiles(similar_ms),
            }
        finally:
            cache.clear()
            if not keep:
                event.delete()
        if as_json:
            self.stdout.write(json.dumps(result))
        else:
            f, s = result["post_to_flagged"], result["similar"]
            self.stdout.write(
                f"event of {questions} questions: post -> flagged p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms "
                f"({flags}/{posts} posts flagged); similar p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms"
            )

    def _post(self, client: Client, event: Event, text: str) -> int:
        response = client.post(
            f"/api/events/{event.code}/questions", json.dumps({"text": text}), content_type="application/json"
        )
        assert response.status_code == 201, response.content
        return response.json()["id"]
