"""Write ``checkpoints/musicnn_mtt.npz`` from the musicnn 0.1.0 wheel (no TensorFlow needed).

The wheel ships TensorFlow checkpoints (a "tensor bundle": a LevelDB-format table of
tensor names and byte ranges, ``.index``, and the raw tensors, ``.data-00000-of-00001``).
This script reads the MagnaTagATune model's bundle straight from the wheel, keeps the
inference tensors (not the optimiser's), turns each batch norm into a per-channel scale
and shift, and saves them under the names :mod:`analysis.music.tagger` reads.

    .venv/bin/pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn
    .venv/bin/python scripts/musicnn_weights.py /tmp/musicnn/musicnn-0.1.0-py3-none-any.whl

``--check`` also runs the original TensorFlow graph (needs ``tensorflow`` and ``tf_keras`` in
the running Python; it reads the wheel's ``models.py``) on two fixed inputs, writes its tag
probabilities to ``tests/data/musicnn_tf_reference.txt`` (the reference ``tests/test_tagger.py``
holds this module to) and prints the largest difference from :mod:`analysis.music.tagger`.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.music.tagger import CHECKPOINT, TAGS  # noqa: E402

MODEL = "MTT_musicnn"
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default
DTYPES = {1: np.float32, 3: np.int32, 9: np.int64}
REFERENCE = ROOT / "tests" / "data" / "musicnn_tf_reference.txt"


def _varint(b: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return value, i


def _block(table: bytes, offset: int, size: int):
    """The (key, value) entries of one uncompressed table block (prefix-compressed keys)."""
    if table[offset + size] != 0:
        raise ValueError("compressed table blocks are not supported")
    blk = table[offset:offset + size]
    restarts = struct.unpack("<I", blk[-4:])[0]
    end, i, key = len(blk) - 4 - 4 * restarts, 0, b""
    while i < end:
        shared, i = _varint(blk, i)
        own, i = _varint(blk, i)
        length, i = _varint(blk, i)
        key = key[:shared] + blk[i:i + own]
        i += own
        yield key, blk[i:i + length]
        i += length


def _fields(msg: bytes) -> dict[int, list]:
    """Protocol-buffer fields of ``msg`` by number (varints and length-delimited bytes)."""
    out: dict[int, list] = {}
    i = 0
    while i < len(msg):
        tag, i = _varint(msg, i)
        kind = tag & 7
        if kind == 0:
            value, i = _varint(msg, i)
        elif kind == 2:
            n, i = _varint(msg, i)
            value, i = msg[i:i + n], i + n
        elif kind in (1, 5):
            n = 8 if kind == 1 else 4
            value, i = msg[i:i + n], i + n
        else:
            raise ValueError(f"unexpected protobuf wire type {kind}")
        out.setdefault(tag >> 3, []).append(value)
    return out


def read_bundle(index: bytes, data: bytes) -> dict[str, np.ndarray]:
    """Every tensor of a TensorFlow tensor bundle (BundleEntryProto: dtype 1, shape 2, offset 4, size 5)."""
    footer, i = index[-48:], 0
    for _ in range(2):  # skip the metaindex handle
        _, i = _varint(footer, i)
    offset, i = _varint(footer, i)
    size, _ = _varint(footer, i)
    tensors = {}
    for _, handle in _block(index, offset, size):
        block_offset, j = _varint(handle, 0)
        block_size, _ = _varint(handle, j)
        for key, value in _block(index, block_offset, block_size):
            if not key:  # the bundle header
                continue
            entry = _fields(value)
            dims = _fields(entry[2][0]).get(2, []) if 2 in entry else []
            shape = [_fields(d).get(1, [0])[0] for d in dims]
            start, length = entry.get(4, [0])[0], entry.get(5, [0])[0]
            dtype = DTYPES[entry.get(1, [1])[0]]
            tensors[key.decode()] = np.frombuffer(data[start:start + length], dtype=dtype).reshape(shape)
    return tensors


def convert(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The TensorFlow names and layouts -> :class:`analysis.music.tagger.Tagger`'s."""
    out: dict[str, np.ndarray] = {}
    for i in range(11):
        p = "batch_normalization" + (f"_{i}" if i else "") + "/"
        scale = tf[p + "gamma"] / np.sqrt(tf[p + "moving_variance"] + BN_EPS)
        out[f"bn{i}_scale"] = scale
        out[f"bn{i}_shift"] = tf[p + "beta"] - tf[p + "moving_mean"] * scale
    for i in range(8):
        p = "conv2d" + (f"_{i}" if i else "") + "/"
        k = tf[p + "kernel"][:, :, 0, :]  # (frames, bands or channels, out)
        out[f"conv{i}"] = k[:, 0, :] if 2 <= i <= 4 else k  # temporal filters span one band
        out[f"conv{i}_b"] = tf[p + "bias"]
    for i in range(2):
        p = "dense" + (f"_{i}" if i else "") + "/"
        out[f"dense{i}"], out[f"dense{i}_b"] = tf[p + "kernel"], tf[p + "bias"]
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def reference_inputs() -> np.ndarray:
    """Two fixed 187-frame inputs (seeded noise; a moving, pulsing band) that the TensorFlow
    reference (``--check``) and ``tests/test_tagger.py`` share."""
    noise = np.random.default_rng(0).uniform(0.0, 3.0, (187, 96))
    t, f = np.arange(187)[:, None], np.arange(96)[None, :]
    band = 2.0 * (np.sin(t / 6.0) > 0) * np.exp(-((f - 20 - (t % 40)) ** 2) / 30.0) + 0.3
    return np.stack([noise, band]).astype(np.float32)


def check(wheel: Path, out: Path) -> None:
    """Runs the wheel's TensorFlow graph on :func:`reference_inputs`, writes its tag probabilities to
    :data:`REFERENCE` and prints their largest difference from :mod:`analysis.music.tagger`'s."""
    import os
    import tempfile

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf

    from analysis.music.tagger import load_tagger

    inputs = reference_inputs()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as whl:
        whl.extractall(tmp)
        sys.path.insert(0, tmp)
        from musicnn import models

        tf.compat.v1.disable_eager_execution()
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        training = tf.compat.v1.placeholder(tf.bool)
        probs = tf.nn.sigmoid(models.define_model(x, training, MODEL, len(TAGS))[0])
        session = tf.compat.v1.Session()
        tf.compat.v1.train.Saver().restore(session, f"{tmp}/musicnn/{MODEL}/")
        ref = session.run(probs, {x: inputs, training: False})
    header = f"musicnn 0.1.0 {MODEL} under TensorFlow {tf.__version__}: tag probabilities of reference_inputs()"
    np.savetxt(REFERENCE, ref, fmt="%.7f", header=header + "\n(scripts/musicnn_weights.py --check)")
    tagger = load_tagger(str(out))
    ours = np.concatenate([tagger.logits(tagger.frames(p), [(0, len(p))]) for p in inputs])
    diff = np.abs(1 / (1 + np.exp(-ours)) - ref).max()
    print(f"wrote {REFERENCE}; largest tag-probability difference from this module: {diff:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path, help="musicnn-0.1.0-py3-none-any.whl")
    ap.add_argument("--out", type=Path, default=CHECKPOINT)
    ap.add_argument("--check", action="store_true", help="write the TensorFlow reference for the tests")
    args = ap.parse_args()
    with zipfile.ZipFile(args.wheel) as whl:
        index = whl.read(f"musicnn/{MODEL}/.index")
        data = whl.read(f"musicnn/{MODEL}/.data-00000-of-00001")
    weights = convert(read_bundle(index, data))
    np.savez_compressed(args.out, tags=np.array(TAGS), **weights)
    n = sum(v.size for v in weights.values())
    print(f"wrote {args.out}: {n:,} parameters, {args.out.stat().st_size / 1e6:.1f} MB")
    if args.check:
        check(args.wheel, args.out)


if __name__ == "__main__":
    main()
