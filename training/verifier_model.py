"""The verifier's torch module (training environment only): BERT over a pair, each side pooled.

``[CLS] a [SEP] b [SEP]`` goes through the encoder once, so every token of one question attends to
the other's. Each side is then mean-pooled over its own tokens (token type 0 / 1) into ``u`` and
``v``, and one linear layer reads ``[cos(u, v), |u - v|, u * v]``.

Why not the usual [CLS] -> pooler -> linear head: the base (paraphrase-MiniLM-L3-v2) was trained
for mean pooling, its [CLS] carries nothing about a pair, and a 3-layer [CLS] head trained on the
event pairs stayed near the prior (train AUC 0.72 after an epoch, dev replay below the cosine).
Pooled per side, the pair starts where the bi-encoder is (the head's cosine weight is set, the
rest zero) and training adds what reading both at once can see: the slot that differs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertModel

from training.export import BASES

# The head starts as sigmoid(SCALE * (cos - CENTRE)): the bi-encoder's cosine, near its own threshold.
SCALE, CENTRE = 20.0, 0.65
CHECKPOINT = "reader.pt"


class PairReader(torch.nn.Module):
    def __init__(self, bert: BertModel, outputs: int) -> None:
        super().__init__()
        self.bert = bert
        hidden = bert.config.hidden_size
        self.head = torch.nn.Linear(1 + 2 * hidden, outputs)
        self.base = "minilm-l3"
        self.reset_head()

    def reset_head(self) -> None:
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        if self.head.out_features == 1:
            with torch.no_grad():
                self.head.weight[0, 0] = SCALE
                self.head.bias[0] = -SCALE * CENTRE

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        second = token_type_ids.unsqueeze(-1).to(hidden.dtype)
        sides = [mask * (1 - second), mask * second]
        u, v = ((hidden * m).sum(1) / m.sum(1).clamp(min=1.0) for m in sides)
        cos = torch.nn.functional.cosine_similarity(u, v, dim=-1).unsqueeze(-1)
        return self.head(torch.cat([cos, (u - v).abs(), u * v], dim=-1))


def new_reader(outputs: int, init: Path | None = None, base: str = "minilm-l3") -> PairReader:
    """From a base encoder (``minilm-l3`` or ``minilm-l6``), or the encoder of a saved reader (a fresh head)."""
    model = PairReader(BASES[base](), outputs)
    model.base = base
    if init is not None:
        state = torch.load(init / CHECKPOINT, map_location="cpu")["state"]
        model.bert.load_state_dict({k[len("bert.") :]: v for k, v in state.items() if k.startswith("bert.")})
    return model


def save_reader(model: PairReader, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    saved = {"state": model.state_dict(), "outputs": model.head.out_features, "base": model.base}
    torch.save(saved, directory / CHECKPOINT)


def load_reader(directory: Path) -> PairReader:
    saved = torch.load(directory / CHECKPOINT, map_location="cpu")
    model = PairReader(BASES[saved.get("base", "minilm-l3")](), saved["outputs"])
    model.base = saved.get("base", "minilm-l3")
    model.load_state_dict(saved["state"])
    return model.eval()
