"""The NumPy sentence encoder against ``sentence-transformers`` on the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.text.emotion import TextEmotion, _default_embedding_dir
from analysis.text.minilm import SentenceEncoder

DATA = Path(__file__).parent / "data"


def labelled() -> list[tuple[str, str]]:
    lines = (DATA / "text_emotion_set.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(ln.split("\t", 1)) for ln in lines if ln and not ln.startswith("#")]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(_default_embedding_dir())


def test_embeddings_equal_sentence_transformers(encoder: SentenceEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(_default_embedding_dir(), device="cpu", local_files_only=True)
    long = "the storm kept coming back over the hills and " * 60  # over 256 tokens: truncated alike
    texts = [t for _, t in labelled()] + [long, "", "ok!"]
    ours = encoder.encode(texts, batch_size=7)  # batches pad to different lengths than the reference's
    theirs = reference.encode(texts, normalize_embeddings=True, batch_size=32)
    assert ours.shape == theirs.shape == (len(texts), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_padding_does_not_change_a_sentence(encoder: SentenceEncoder) -> None:
    alone = encoder.encode(["I got the job!"])
    beside_a_long_one = encoder.encode(["I got the job!", "a much longer sentence " * 20])[:1]
    assert np.abs(alone - beside_a_long_one).max() < 1e-5


def test_text_emotion_reads_the_labelled_sentences() -> None:
    rows = [(label, text) for label, text in labelled() if label in ("joy", "sadness", "anger", "fear")]
    readings = TextEmotion("embedding").read([t for _, t in rows])
    signs = [(r.valence > 0) == (label == "joy") for (label, _), r in zip(rows, readings, strict=True)]
    assert np.mean(signs) >= 0.9


def test_the_shipped_prototypes_are_the_embedded_sentences(monkeypatch, tmp_path) -> None:
    """``prototypes.npz`` matches this code's sentences and encoder, and holds what embedding them gives;
    a stale key (edited sentences) is not used."""
    from analysis.text import emotion

    shipped = emotion._shipped_prototypes()
    assert shipped is not None, "prototypes.npz is stale: run `python -m analysis.text.emotion`"
    np.testing.assert_allclose(shipped, TextEmotion("embedding").prototype_matrix(), atol=1e-6)
    stale = tmp_path / "prototypes.npz"
    np.savez(stale, key=np.array("another key"), matrix=np.zeros_like(shipped))
    monkeypatch.setattr(emotion, "PROTOTYPE_FILE", stale)
    assert emotion._shipped_prototypes() is None
    assert np.abs(TextEmotion("embedding")._protos).sum() > 1.0  # embedded anew, not the zeros
