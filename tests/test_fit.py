"""Fitting a track to a clip: section cut, stretch, fades, WAV length, muxed video, MIDI rendering."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from mediagen import Shot, make_clip, video_packets

from analysis.errors import MediaError, ParameterError
from analysis.media.probe import media_duration
from matching.fit import fit_to_clip, fit_track

SR = 22050


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fit") / "clip.mp4"
    make_clip(path, shots=[Shot(50, (200, 60, 50), motion=0.5), Shot(50, (40, 90, 180))], fps=25, audio="drone")
    return path


@pytest.fixture(scope="module")
def chirp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s stereo WAV whose frequency marks the time: f(t) = 200 + 50 t Hz."""
    t = np.arange(10 * SR) / SR
    y = 0.5 * np.sin(2 * np.pi * (200 * t + 25 * t**2))
    path = tmp_path_factory.mktemp("fit") / "chirp.wav"
    sf.write(str(path), np.stack([y, y], axis=1), SR)
    return path


def _freq(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[spec.argmax()])


def test_fit_track_cuts_section_and_fades(chirp: Path, tmp_path: Path) -> None:
    res = fit_track(chirp, tmp_path / "out.wav", start=4.0, duration=3.0, sr=SR, target_lufs=None)  # its own level
    y, sr = sf.read(str(res.wav))
    assert y.shape == (3 * SR, 2) and res.duration == pytest.approx(3.0)
    # The section starts at 4 s: 0.5 s in, the chirp is at 200 + 50 * 4.5 Hz.
    assert _freq(y[int(0.4 * sr) : int(0.6 * sr), 0], sr) == pytest.approx(425, abs=15)
    assert abs(y[0, 0]) < 1e-3 and np.abs(y[-200:, 0]).max() < 0.01  # faded in and out
    assert np.abs(y[sr : 2 * sr, 0]).max() > 0.4


def test_fit_track_stretches_within_limit(chirp: Path, tmp_path: Path) -> None:
    res = fit_track(chirp, tmp_path / "slow.wav", start=2.0, duration=4.0, stretch=2.0, max_stretch=1.25, sr=SR)
    assert res.stretch == pytest.approx(1.25)
    y, sr = sf.read(str(res.wav))
    assert y.shape[0] == 4 * SR
    # Slowed by 1.25: 3.5 s into the output is 2.8 s into the section, at 4.8 s of the chirp.
    assert _freq(y[int(3.4 * sr) : int(3.6 * sr), 0], sr) == pytest.approx(440, abs=20)
    shifted = fit_track(chirp, tmp_path / "up.wav", start=2.0, duration=1.0, pitch_shift=12, sr=SR)
    z, _ = sf.read(str(shifted.wav))
    assert _freq(z[int(0.4 * SR) : int(0.6 * SR), 0], SR) == pytest.approx(2 * 325, abs=30)


def test_fit_to_clip_durations_match(chirp: Path, clip: Path, tmp_path: Path) -> None:
    res = fit_to_clip(chirp, clip, tmp_path / "scored.mp4", start=1.0, stretch=0.9)
    clip_dur = media_duration(clip)
    assert clip_dur == pytest.approx(4.0, abs=0.1)
    assert sf.info(str(res.wav)).duration == pytest.approx(clip_dur, abs=0.05)
    assert media_duration(res.video) == pytest.approx(clip_dur, abs=0.05)
    with av.open(str(clip)) as a, av.open(str(res.video)) as b:
        va, vb = a.streams.video[0], b.streams.video[0]
        assert vb.codec_context.name == va.codec_context.name and vb.frames == va.frames
        assert float(b.streams.audio[0].duration * b.streams.audio[0].time_base) == pytest.approx(clip_dur, abs=0.05)
    assert video_packets(res.video) == video_packets(clip)  # copied, not re-encoded


def _scale_midi(path: Path, notes: int, *, late_note_at: float | None = None) -> Path:
    """A piano climbing ``notes`` semitones from middle C, a note every 0.5 s (and one more at ``late_note_at``)."""
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=90, pitch=60 + i, start=i * 0.5, end=i * 0.5 + 0.45) for i in range(notes)]
    if late_note_at is not None:
        piano.notes.append(pretty_midi.Note(velocity=90, pitch=72, start=late_note_at, end=late_note_at + 1.0))
    pm.instruments.append(piano)
    pm.write(str(path))
    return path


def test_midi_track_is_rendered(tmp_path: Path) -> None:
    mid = _scale_midi(tmp_path / "tune.mid", 16)
    res = fit_track(mid, tmp_path / "tune.wav", start=1.0, duration=3.0, sr=SR)
    y, _ = sf.read(str(res.wav))
    assert y.shape[0] == 3 * SR and np.abs(y).max() > 0.1


def test_a_long_midi_track_renders_only_the_span_fitted(tmp_path: Path, monkeypatch) -> None:
    """A library MIDI lasting far past the preview (a note at 2 minutes) was rendered whole to write
    seconds of it: only the section fitted, and the stretcher's spare, is rendered now."""
    import analysis.media.synth

    rendered: list[int] = []
    real = analysis.media.synth.render_mono

    def counting(*args, **kwargs):
        audio = real(*args, **kwargs)
        rendered.append(audio.shape[0])
        return audio

    monkeypatch.setattr(analysis.media.synth, "render_mono", counting)
    mid = _scale_midi(tmp_path / "long.mid", 8, late_note_at=120.0)
    res = fit_track(mid, tmp_path / "long.wav", start=1.0, duration=2.0, sr=SR)
    y, _ = sf.read(str(res.wav))
    assert y.shape[0] == 2 * SR and np.abs(y).max() > 0.1
    assert rendered == [round(3.1 * SR)]  # to 1 s + 2 s + 0.1 s of spare, not to 122 s
    with pytest.raises(ParameterError, match="past the end"):  # the track's true end still counts
        fit_track(mid, tmp_path / "x.wav", start=130.0, duration=1.0, sr=SR)


def test_bad_inputs(tmp_path: Path, chirp: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(MediaError, match=r"bad\.wav"):
        fit_track(bad, tmp_path / "x.wav", start=0, duration=1)
    with pytest.raises(ParameterError, match="duration"):
        fit_track(chirp, tmp_path / "x.wav", start=0, duration=0)
    with pytest.raises(ParameterError, match="past the end"):
        fit_track(chirp, tmp_path / "x.wav", start=60, duration=1, sr=SR)


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"start": float("nan")}, "`start` must be finite seconds"),
    ({"duration": float("nan")}, "`duration` must be positive, finite seconds"),
    ({"duration": float("inf")}, "`duration` must be positive, finite seconds"),
    ({"stretch": float("nan")}, "`stretch` must be positive"),
    ({"start": -1.0}, "`start` must not be negative"),
])
def test_a_section_that_is_no_number_is_named(tmp_path: Path, chirp: Path, clip: Path, kwargs, word) -> None:
    """NaN passed the ``< 0`` checks and reached NumPy's "cannot convert float NaN to integer" (inf:
    "cannot convert float infinity to integer"), from fit_track and from fit_to_clip after the clip was
    probed."""
    args = {"start": 0.0, "duration": 1.0, **kwargs}
    with pytest.raises(ParameterError, match=f"^{re.escape(word)}"):
        fit_track(chirp, tmp_path / "x.wav", **args, sr=SR)
    if "duration" not in kwargs:
        with pytest.raises(ParameterError, match=f"^{re.escape(word)}"):
            fit_to_clip(chirp, clip, tmp_path / "x.mp4", **{k: v for k, v in args.items() if k != "duration"})
    assert not list(tmp_path.iterdir())


def test_where_the_fitted_audio_cannot_go_is_said_before_the_work(tmp_path: Path, chirp: Path) -> None:
    """A folder as ``out_wav`` reached soundfile after the section was read and stretched (LibsndfileError
    "System error"; a folder without a suffix, "No format specified and unable to get format from file
    extension"), as did a suffix soundfile cannot write; a missing folder is made."""
    (tmp_path / "taken.wav").mkdir()
    with pytest.raises(MediaError, match=r"taken\.wav: is a directory, expected a file path to write"):
        fit_track(chirp, tmp_path / "taken.wav", start=0.0, duration=1.0, sr=SR)
    with pytest.raises(ParameterError, match=r"^`out_wav` must name an audio file soundfile writes"):
        fit_track(chirp, str(tmp_path / "fit.xyz"), start=0.0, duration=1.0, sr=SR)
    res = fit_track(chirp, tmp_path / "new" / "fit.flac", start=0.0, duration=1.0, sr=SR)
    assert sf.info(str(res.wav)).duration == pytest.approx(1.0, abs=0.01)


def test_midi_track_renders_its_pitches_the_same_each_time(tmp_path: Path) -> None:
    """MIDI goes through the one renderer (analysis.media.synth): right pitch, mono, peak 0.8, repeatable."""
    pm = pretty_midi.PrettyMIDI()
    flute = pretty_midi.Instrument(program=73)
    flute.notes = [pretty_midi.Note(velocity=90, pitch=69, start=0.0, end=4.0)]  # A4 held for 4 s
    pm.instruments.append(flute)
    mid = tmp_path / "a4.mid"
    pm.write(str(mid))
    first = fit_track(mid, tmp_path / "a.wav", start=1.0, duration=2.0, sr=SR, fade_out=0.0)
    second = fit_track(mid, tmp_path / "b.wav", start=1.0, duration=2.0, sr=SR, fade_out=0.0)
    y, _ = sf.read(str(first.wav), dtype="float32")
    z, _ = sf.read(str(second.wav), dtype="float32")
    assert y.ndim == 1 and y.shape[0] == 2 * SR
    assert np.array_equal(y, z)
    assert _freq(y[SR // 2 : SR], SR) == pytest.approx(440, abs=5)
    assert 0.3 < np.abs(y).max() <= 0.81  # the whole render was normalised to 0.8; this section is part of it


def test_a_damaged_m4a_fits_in_time_and_keeps_its_channels(tmp_path: Path) -> None:
    """The fitting reads a track as the analysis did: a damaged packet skipped with its time kept as
    silence (so the section the arc chose is the one cut), stereo kept, left and right in order."""
    from analysis.music.track import load_audio
    from matching.fit import load_track_audio

    t = np.arange(12 * SR) / SR
    left, right = 0.4 * np.sin(2 * np.pi * 440 * t), 0.4 * np.sin(2 * np.pi * 660 * t)
    wav = tmp_path / "two.wav"
    sf.write(str(wav), np.stack([left, right], axis=1), SR)
    clean = tmp_path / "clean.m4a"
    with av.open(str(wav)) as src, av.open(str(clean), "w") as dst:
        out = dst.add_stream("aac", rate=SR, layout="stereo")
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in out.encode(frame):
                dst.mux(packet)
        for packet in out.encode(None):
            dst.mux(packet)
    data = bytearray(clean.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = np.random.default_rng(0).bytes(3000)
    damaged = tmp_path / "damaged.m4a"
    damaged.write_bytes(bytes(data))

    a, b = load_track_audio(clean, sr=SR), load_track_audio(damaged, sr=SR)
    assert a.shape[0] == b.shape[0] == 2
    assert abs(b.shape[1] - a.shape[1]) < 0.01 * SR  # the damaged stretch is silence, not gone
    assert abs(b.shape[1] - load_audio(damaged, sr=SR).size) < 0.01 * SR  # as long as the analysis read it
    tail = slice(b.shape[1] - 2 * SR, b.shape[1] - SR)  # after the damage: still in place, channels in order
    assert _freq(b[0, tail], SR) == pytest.approx(440, abs=5) and _freq(b[1, tail], SR) == pytest.approx(660, abs=5)
    assert np.corrcoef(a[0, tail], b[0, tail])[0, 1] > 0.99
