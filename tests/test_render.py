"""Writers: MIDI (tempo map + cut markers), MusicXML, WAV, stems and the muxed clip, all read back."""

from __future__ import annotations

import av
import mido
import numpy as np
import pretty_midi
import pytest
import soundfile
from mediagen import Shot, corrupt_copy, make_clip

from analysis.arc import EmotionArc
from analysis.errors import MediaError
from analysis.media.probe import media_duration
from composer import compose

CUTS = (1.6, 3.0, 4.4)
DURATION = 6.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):
    shots = [Shot(40, (200, 60, 50), 0.5), Shot(35, (40, 90, 180), 0.2), Shot(35, (70, 160, 70)), Shot(40)]
    path = tmp_path_factory.mktemp("render") / "clip.mp4"
    make_clip(path, shots=shots, fps=25, audio="drone")  # 150 frames = 6.0 s, cuts at 1.6, 3.0, 4.4 s
    return path


@pytest.fixture(scope="module")
def piece():
    t = np.arange(0.25, DURATION, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(0.5, -0.5, t.size), np.linspace(-0.2, 0.9, t.size))
    return compose(arc, CUTS, DURATION, instrument="violin", seed=1, source="rules")


def test_midi_has_tempo_map_and_a_marker_per_cut(piece, tmp_path) -> None:
    path = piece.write_midi(tmp_path / "out.mid")
    mf = mido.MidiFile(str(path))
    markers, tempos, t = [], [], 0
    for msg in mf.tracks[0]:
        t += msg.time
        if msg.type == "marker":
            markers.append((t, msg.text))
        elif msg.type == "set_tempo":
            tempos.append(t)
    assert [m[1].split(" (")[0] for m in markers] == ["cut 1", "cut 2", "cut 3"]
    assert len(tempos) == len(piece.tempo_map)
    back = pretty_midi.PrettyMIDI(str(path))
    for (tick, _), cut in zip(markers, CUTS, strict=True):
        assert back.tick_to_time(tick) == pytest.approx(cut, abs=0.002)
    _, bpm = back.get_tempo_changes()
    assert np.allclose(bpm, [b for _, b in piece.tempo_map], rtol=1e-3)
    assert back.instruments[0].program == 40 and back.instruments[0].name == "lead"
    assert len(back.instruments) == len(piece.parts)
    assert sum(len(i.notes) for i in back.instruments) == sum(len(p.notes) for p in piece.parts)
    assert back.get_end_time() <= DURATION + 0.01


def test_musicxml_is_readable(piece, tmp_path) -> None:
    from music21 import converter

    path = piece.write_musicxml(tmp_path / "out.musicxml")
    score = converter.parse(str(path))
    pitched = [p for p in piece.parts if not p.is_drum]
    assert len(score.parts) == len(pitched)
    assert len(score.flatten().notes) > 20


def test_wav_has_the_clip_length_and_sound(piece, tmp_path) -> None:
    path = piece.render(tmp_path / "out.wav")
    audio, sr = soundfile.read(str(path))
    assert sr == 44100 and audio.ndim == 2
    assert abs(len(audio) / sr - DURATION) < 0.05
    rms = np.sqrt(np.mean(audio**2, axis=1))
    assert rms[: sr // 2].max() > 0.01  # sound from the start
    assert 0.5 < np.abs(audio).max() <= 0.91


def test_stems_one_per_part(piece, tmp_path) -> None:
    paths = piece.write_stems(tmp_path / "stems")
    assert len(paths) == len(piece.parts)
    assert "violin" in paths[0].name and "lead" in paths[0].name
    for p in paths:
        info = soundfile.info(str(p))
        assert abs(info.duration - DURATION) < 0.05
    lead, _ = soundfile.read(str(paths[0]))
    assert np.abs(lead).max() > 0.1


def test_mux_copies_video_and_matches_duration(piece, clip, tmp_path) -> None:
    out = piece.mux(clip, tmp_path / "scored.mp4")
    assert abs(media_duration(out) - media_duration(clip)) < 0.05
    with av.open(str(out)) as c, av.open(str(clip)) as src:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == src.streams.video[0].codec_context.name
        assert v.frames in (0, src.streams.video[0].frames) or v.frames == 150
        assert abs(float(a.duration * a.time_base) - DURATION) < 0.05
        assert a.codec_context.name == "aac"
    assert out.with_suffix(".wav").is_file()


def test_mux_bad_video_is_a_media_error(piece, clip, tmp_path) -> None:
    with pytest.raises(MediaError, match="missing"):
        piece.mux(tmp_path / "missing.mp4", tmp_path / "x.mp4")
    broken = corrupt_copy(clip, tmp_path / "broken.mp4", mode="garble")
    with pytest.raises(MediaError, match="broken"):
        piece.mux(broken, tmp_path / "y.mp4")
