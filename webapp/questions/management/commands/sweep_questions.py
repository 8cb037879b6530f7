from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from webapp.questions import recovery


class Command(BaseCommand):
    help = (
        "Send again the questions the broker lost: pending since their last send for longer than "
        "QUESTION_RESEND_AFTER_S, or failed for a transient reason (what every worker's sweeper does)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than", type=float, default=None, help="seconds since the last send (default: the setting)"
        )
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, older_than: float | None, as_json: bool, **options) -> None:
        result = recovery.sweep(resend_after_s=older_than).as_dict()
        if as_json:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(", ".join(f"{key.replace('_', ' ')} {value}" for key, value in result.items()))
