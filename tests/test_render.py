"""Writers: MIDI (tempo map + cut markers), MusicXML, WAV, stems and the muxed clip, all read back."""

from __future__ import annotations

from pathlib import Path

import av
import mido
import numpy as np
import pretty_midi
import pytest
import soundfile
from mediagen import Shot, corrupt_copy, make_clip, video_packets

from analysis.arc import EmotionArc
from analysis.errors import MediaError, ParameterError
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
    scored = [p for p in piece.parts if not p.is_drum or p.notes]  # drums with hits: a percussion staff
    assert len(score.parts) == len(scored)
    assert len(score.flatten().notes) > 20


def test_an_mxl_name_gets_compressed_musicxml(piece, tmp_path) -> None:
    """Notation programs open ``.mxl`` as a zip; plain XML under that name they refuse."""
    import zipfile

    from music21 import converter

    path = piece.write_musicxml(tmp_path / "out.mxl")
    with zipfile.ZipFile(path) as z:
        assert z.namelist()[0] == "mimetype" and "score.musicxml" in z.read("META-INF/container.xml").decode()
    plain = converter.parse(str(piece.write_musicxml(tmp_path / "out.musicxml")))
    assert len(converter.parse(str(path)).flatten().notes) == len(plain.flatten().notes) > 20


def test_audio_and_durations_of_the_wrong_kind_are_said_before_rendering(piece, tmp_path, monkeypatch) -> None:
    import composer.output.piece as piece_module

    monkeypatch.setattr(piece_module, "synthesize", lambda *a, **k: pytest.fail("rendered before refusing"))
    for name in ("x.mp3", "x.txt"):
        with pytest.raises(ParameterError, match=r"name the file \.wav"):
            piece.render(tmp_path / name)
    with pytest.raises(ParameterError, match="`duration` must be a number of seconds"):
        compose(EmotionArc.from_va([0.25], [0.0], [0.0]), (), "abc", source="rules")
def test_wav_has_the_clip_length_and_sound(piece, tmp_path) -> None:
    path = piece.render(tmp_path / "out.wav")
    audio, sr = soundfile.read(str(path))
    assert sr == 44100 and audio.ndim == 2
    assert abs(len(audio) / sr - DURATION) < 0.05
    rms = np.sqrt(np.mean(audio**2, axis=1))
    assert rms[: sr // 2].max() > 0.01  # sound from the start
    assert 0.5 < np.abs(audio).max() <= 0.91
    # it dies away over its last 0.6 s (a tenth of 6 s) instead of stopping on the last frame
    fade = int(0.1 * DURATION * sr)
    before, last = (np.sqrt(np.mean(audio[i : i + sr // 20] ** 2)) for i in (len(audio) - fade - sr // 20,
                                                                               len(audio) - sr // 20))
    assert last < 0.05 * before, (before, last)


def test_stems_one_per_part(piece, tmp_path) -> None:
    paths = piece.write_stems(tmp_path / "stems")
    assert len(paths) == len(piece.parts)
    assert "violin" in paths[0].name and "lead" in paths[0].name
    for p in paths:
        info = soundfile.info(str(p))
        assert abs(info.duration - DURATION) < 0.05
    lead, _ = soundfile.read(str(paths[0]))
    assert np.abs(lead).max() > 0.1


def test_stems_sum_to_the_mix(piece, tmp_path) -> None:
    """Stems are for a DAW: laid side by side at unity gain they must give the piece's mix, not
    each its own peak level."""
    stems = [soundfile.read(str(p))[0] for p in piece.write_stems(tmp_path / "stems")]
    mix, _ = soundfile.read(str(piece.render(tmp_path / "mix.wav")))
    total = np.sum(stems, axis=0)
    assert len(stems) >= 4
    assert np.abs(total).max() <= 0.95
    assert np.sqrt(np.mean((total - mix) ** 2) / np.mean(mix**2)) < 0.05
    loudest, quietest = (f(np.sqrt(np.mean(s**2)) for s in stems) for f in (max, min))
    assert loudest > 2 * quietest  # the parts keep their own levels


def test_stems_after_their_mix_reuse_its_gain(piece, tmp_path, monkeypatch) -> None:
    from composer.output import render as rendering

    rendering._GAINS.clear()
    calls = []
    real = rendering.render
    monkeypatch.setattr(rendering, "render", lambda parts, *a, **k: calls.append(len(parts)) or real(parts, *a, **k))
    mix = [1, len(piece.parts) - 1]  # the lead and the rest, for the lead's level (lead_boost)
    piece.write_stems(tmp_path / "alone")  # no mix yet: rendered once for its gains
    assert calls == mix + [1] * len(piece.parts)
    calls.clear()
    piece.render(tmp_path / "mix.wav")
    piece.write_stems(tmp_path / "after")
    assert calls == mix + [1] * len(piece.parts)


def test_mux_copies_video_and_matches_duration(piece, clip, tmp_path) -> None:
    out = piece.mux(clip, tmp_path / "scored.mp4")
    assert abs(media_duration(out) - media_duration(clip)) < 0.05
    with av.open(str(out)) as c, av.open(str(clip)) as src:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == src.streams.video[0].codec_context.name
        assert abs(float(a.duration * a.time_base) - DURATION) < 0.05
        assert a.codec_context.name == "aac"
    assert video_packets(out) == video_packets(clip)  # the picture bit for bit, not re-encoded


def test_the_apis_mux_plays_at_the_clis_loudness_and_writes_no_wav_unasked(piece, clip, tmp_path) -> None:
    """``piece.mux`` gave -12.2 LUFS where the CLI's clip plays at -16, and wrote ``<out>.wav`` over a
    user's own file of that name."""
    import subprocess

    from analysis.media.loudness import TARGET_LUFS, integrated_loudness

    (tmp_path / "scored.wav").write_bytes(b"the user's own")
    out = piece.mux(clip, tmp_path / "scored.mp4")  # the clip's drone has no speech: the music replaces it
    assert (tmp_path / "scored.wav").read_bytes() == b"the user's own"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.mp4", "scored.wav"]
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(out), "-map", "0:a:0", "-ac", "2", "-ar", "44100",
           "-f", "f32le", "-"]
    heard = np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, "<f4").reshape(-1, 2)
    assert integrated_loudness(heard, 44100) == pytest.approx(TARGET_LUFS, abs=0.5)
    saved = piece.mux(clip, tmp_path / "again.mp4", save_wav=tmp_path / "kept.wav")
    assert saved.is_file()
    mix, sr = soundfile.read(str(tmp_path / "kept.wav"))
    assert integrated_loudness(mix, sr) == pytest.approx(TARGET_LUFS, abs=0.3)


def test_mux_bad_video_is_a_media_error(piece, clip, tmp_path) -> None:
    with pytest.raises(MediaError, match="missing"):
        piece.mux(tmp_path / "missing.mp4", tmp_path / "x.mp4")
    broken = corrupt_copy(clip, tmp_path / "broken.mp4", mode="garble")
    with pytest.raises(MediaError, match="broken"):
        piece.mux(broken, tmp_path / "y.mp4")
    with pytest.raises(ParameterError, match=r"\.mp4, \.m4v, \.mov, \.mkv"):  # AAC cannot go into WebM
        piece.mux(clip, tmp_path / "z.webm")
    # Nothing is left of a mux that failed: no render beside it, no broken video.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_a_failed_mux_leaves_no_partial_video(clip, tmp_path, monkeypatch) -> None:
    from analysis.media import mux as muxmod

    (tmp_path / "scored.mp4").write_bytes(b"an earlier good file")
    monkeypatch.setattr(muxmod, "AUDIO_BITRATE", "-1k")  # ffmpeg starts writing, then refuses
    sound = tmp_path / "sound.wav"
    soundfile.write(sound, np.zeros(22050, np.float32), 22050)
    with pytest.raises(MediaError, match="ffmpeg could not mux"):
        muxmod.mux(clip, sound, tmp_path / "scored.mp4")
    assert (tmp_path / "scored.mp4").read_bytes() == b"an earlier good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.mp4", "sound.wav"]


# ---------------------------------------------------------------------- the one MIDI renderer


def _tone_part(program: int = 0, pitch: int = 69, seconds: float = 1.0) -> pretty_midi.Instrument:
    inst = pretty_midi.Instrument(program=program)
    inst.notes = [pretty_midi.Note(velocity=100, pitch=pitch, start=0.0, end=seconds)]
    return inst


def _peak_hz(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[spec.argmax()])


def test_synth_renders_the_same_notes_to_the_same_samples(piece) -> None:
    from analysis.media.synth import render

    first = render(piece.parts, DURATION, fs=22050)
    render((_tone_part(40, 50, 2.0),), fs=22050)  # something else in between
    again = render(piece.parts, DURATION, fs=22050)
    assert first.shape == (round(DURATION * 22050), 2) and first.dtype == np.float32
    assert np.array_equal(first, again)
    assert 0.01 < np.abs(first).max() < 1.0  # FluidSynth's own level, not normalised


def test_synth_length_tail_and_empty_parts() -> None:
    from analysis.media.synth import render, render_mono

    y = render_mono((_tone_part(seconds=1.0),), fs=22050)  # default: last note end + 1 s of release
    assert y.shape == (2 * 22050,)
    assert np.abs(y[: 22050 // 2]).max() > 0.01 and np.abs(y[-100:]).max() < np.abs(y[:22050]).max() / 10
    assert render((pretty_midi.Instrument(program=0),), fs=22050).shape == (0, 2)  # no note, no samples
    assert render((), 0.5, fs=22050).shape == (11025, 2)


def test_synth_plays_pitch_bends_and_drums() -> None:
    from analysis.media.synth import render_mono

    sr = 22050
    flat = _tone_part(pitch=69, seconds=1.0)  # A4, 440 Hz
    bent = _tone_part(pitch=69, seconds=1.0)
    bent.pitch_bends = [pretty_midi.PitchBend(pitch=4096, time=0.0)]  # +1 semitone (full range 8192 = 2)
    a, b = render_mono((flat,), 1.0, fs=sr), render_mono((bent,), 1.0, fs=sr)
    window = slice(sr // 4, 3 * sr // 4)
    assert _peak_hz(a[window], sr) == pytest.approx(440, rel=0.02)
    assert _peak_hz(b[window], sr) == pytest.approx(440 * 2 ** (1 / 12), rel=0.01)
    kit = pretty_midi.Instrument(program=0, is_drum=True)
    kit.notes = [pretty_midi.Note(velocity=110, pitch=38, start=0.1 * i, end=0.1 * i + 0.05) for i in range(8)]
    drums = render_mono((kit,), 1.0, fs=sr)
    assert np.abs(drums).max() > 0.01  # a snare, not silence


def test_synth_gives_every_part_its_own_channel() -> None:
    from analysis.media.synth import CHANNELS, _channels

    parts = [_tone_part(program=i % 128) for i in range(250)] + [pretty_midi.Instrument(0, is_drum=True)] * 2
    groups = _channels(parts)
    melodic = CHANNELS - CHANNELS // 16
    assert [len(g) for g in groups] == [melodic, 250 - melodic + 2]  # a second pass once channels run out
    for group in groups:
        channels = [c for c, _ in group]
        assert len(set(channels)) == len(channels)
        assert all((c % 16 == 9) == part.is_drum for c, part in group)


def test_missing_soundfont_is_a_media_error(tmp_path) -> None:
    from analysis.media.synth import render

    with pytest.raises(MediaError, match=r"SoundFont not found.*\$SOUNDTRACK_SOUNDFONT"):
        render((_tone_part(),), fs=22050, soundfont=tmp_path / "none.sf2")


def test_the_soundfont_can_be_named_in_the_environment(tmp_path, monkeypatch) -> None:
    """The CLI and the page have no SoundFont option: off Debian, $SOUNDTRACK_SOUNDFONT names one."""
    from analysis.media.synth import SOUNDFONT, render

    monkeypatch.setenv("SOUNDTRACK_SOUNDFONT", str(tmp_path / "none.sf2"))
    with pytest.raises(MediaError, match=r"none\.sf2: SoundFont not found"):
        render((_tone_part(),), fs=22050)
    (tmp_path / "mine.sf2").symlink_to(SOUNDFONT)
    monkeypatch.setenv("SOUNDTRACK_SOUNDFONT", str(tmp_path / "mine.sf2"))
    assert np.abs(render((_tone_part(),), fs=22050)).max() > 0.01


# ---------------------------------------------------------------------- write_outputs


def test_write_outputs_writes_each_format_once(piece, clip, tmp_path) -> None:
    from composer.output.write import write_outputs

    timings: dict[str, float] = {}
    said: list[tuple[float, str]] = []
    files = write_outputs(piece, tmp_path / "out", "clip-score", clip, ("mid", "wav", "mp4", "stems"),
                          timings=timings, progress=lambda f, m: said.append((f, m)))
    # Each stage is said as it starts (a command's bar shows what a long render is doing), in order, to the end.
    assert [m for _, m in said] == ["writing the MIDI", "rendering the audio", "putting the score on the clip",
                                    "rendering the stems", "written"]
    fractions = [f for f, _ in said]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    stems = [k for k in files if k.startswith("stem")]
    assert set(files) == {"mid", "wav", "mp4", *stems} and len(stems) == len(piece.parts)
    assert files["mid"] == tmp_path / "out" / "clip-score.mid" and files["mp4"].name == "clip-score.mp4"
    assert files["stem1"].parent.name == "clip-score-stems"
    assert set(timings) == {"mid", "wav", "mp4", "stems"}
    assert abs(media_duration(files["mp4"]) - media_duration(clip)) < 0.05
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "clip-score-stems", "clip-score.mid", "clip-score.mp4", "clip-score.wav"]
    no_clip = write_outputs(piece, tmp_path / "arc-only", "arc-score")  # mp4 needs a clip: left out
    assert set(no_clip) == {"mid", "musicxml", "wav"}



def test_formats_that_cannot_be_written_as_asked_are_named(piece, tmp_path) -> None:
    """``formats=("mp4",)`` without a clip wrote nothing and returned ``{}`` without a word, and
    ``formats="mid"`` was read letter by letter ("received d, i, m")."""
    from composer.output.write import write_outputs

    with pytest.raises(ParameterError, match=r"^`formats` names mp4, the clip with its new soundtrack, but no `clip`"):
        write_outputs(piece, tmp_path / "a", "cue", formats=("mp4",))
    with pytest.raises(ParameterError, match=r"^`formats` must be a collection of format names, not one string"):
        write_outputs(piece, tmp_path / "b", "cue", formats="mid")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert set(write_outputs(piece, tmp_path / "c", "cue", formats=["mid"])) == {"mid"}


def test_a_missing_tool_is_named_before_any_file_is_written(piece, clip, tmp_path, monkeypatch) -> None:
    """Without FFmpeg the MIDI, MusicXML and WAV were written before the mux failed, a partial set left
    behind; a missing SoundFont left the MIDI."""
    from analysis.media import ffmpeg
    from composer.output.write import write_outputs

    monkeypatch.setattr(ffmpeg.shutil, "which", lambda name: None)
    with pytest.raises(MediaError, match="ffmpeg is not installed"):
        write_outputs(piece, tmp_path / "a", "cue", clip)
    monkeypatch.undo()
    with pytest.raises(MediaError, match="SoundFont not found"):
        write_outputs(piece, tmp_path / "b", "cue", clip, soundfont=tmp_path / "none.sf2")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    midi_only = write_outputs(piece, tmp_path / "c", "cue", formats=("mid",), soundfont=tmp_path / "none.sf2")
    assert set(midi_only) == {"mid"}  # MIDI alone needs neither


def test_a_run_that_fails_midway_leaves_none_of_its_files(piece, clip, tmp_path, monkeypatch) -> None:
    """A run that failed after the MIDI (a folder where the WAV goes) or was stopped while muxing (Ctrl-C)
    left the MIDI and WAV it had written, a partial set passing for a piece. They go, and a folder the run
    made; an earlier run's file that the failed run never reached stays."""
    import os
    import time

    from composer.output import write
    from composer.output.write import write_outputs

    out = tmp_path / "out"
    (out / "cue.wav").mkdir(parents=True)
    earlier = out / "cue.musicxml"
    earlier.write_text("an earlier run's score")
    os.utime(earlier, (time.time() - 60, time.time() - 60))
    with pytest.raises(MediaError, match="is a directory"):
        write_outputs(piece, out, "cue", clip)
    assert sorted(p.name for p in out.iterdir()) == ["cue.musicxml", "cue.wav"]  # no cue.mid
    assert earlier.read_text() == "an earlier run's score"

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(write, "mux_soundtrack", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(piece, tmp_path / "new", "cue", clip, ("mid", "wav", "mp4", "stems"))
    assert not (tmp_path / "new").exists()


def test_write_outputs_optional_formats_and_bad_arguments(piece, tmp_path, monkeypatch) -> None:
    from composer.output.write import write_outputs

    def broken(self, path, *, title=None, composer=None):  # as Composition.write_musicxml
        raise MediaError(path, "MusicXML export failed (test)")

    monkeypatch.setattr(type(piece), "write_musicxml", broken)
    files = write_outputs(piece, tmp_path, "p", formats=("mid", "musicxml"), optional=("musicxml",))
    assert set(files) == {"mid"}
    with pytest.raises(MediaError, match="MusicXML export failed"):
        write_outputs(piece, tmp_path, "p", formats=("mid", "musicxml"))
    with pytest.raises(ParameterError, match="formats"):
        write_outputs(piece, tmp_path, "p", formats=("mid", "flac"))
    with pytest.raises(ParameterError, match="stem"):
        write_outputs(piece, tmp_path, "../p", formats=("mid",))


def test_write_outputs_mix_is_at_the_target_loudness_and_a_folder_in_the_way_is_named(piece, tmp_path) -> None:
    from analysis.media.loudness import TARGET_LUFS, integrated_loudness
    from composer.output.write import write_outputs

    wav = write_outputs(piece, tmp_path, "p", formats=("wav",))["wav"]
    audio, sr = soundfile.read(wav, dtype="float32")
    assert integrated_loudness(audio, sr) == pytest.approx(TARGET_LUFS, abs=0.3)
    (tmp_path / "q.wav").mkdir()
    with pytest.raises(MediaError, match="is a directory"):
        write_outputs(piece, tmp_path, "q", formats=("wav",))


def test_renders_carry_no_dc_offset(tmp_path) -> None:
    """FluidSynth's ambient pads sit off zero (a mean of 0.056 at -16 LUFS, a third of the energy under
    5 Hz): every render, the mix at its loudness and each stem, passes a DC-blocking high-pass."""
    from composer.output.write import write_outputs

    t = np.arange(0.25, DURATION, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(0.5, -0.5, t.size), np.linspace(-0.2, 0.9, t.size))
    ambient = compose(arc, CUTS, DURATION, style="ambient", seed=1, source="rules")
    files = write_outputs(ambient, tmp_path, "a", formats=("wav", "stems"))
    mix, sr = soundfile.read(str(files["wav"]), always_2d=True)
    assert np.abs(mix.mean(axis=0)).max() < 1e-3, mix.mean(axis=0)
    assert max(np.abs(mix[i : i + sr].mean(axis=0)).max() for i in range(0, len(mix) - sr, sr)) < 3e-3
    power = np.abs(np.fft.rfft(mix, axis=0)) ** 2
    assert power[np.fft.rfftfreq(len(mix), 1 / sr) < 5].sum() < 1e-4 * power.sum()
    for key in (k for k in files if k.startswith("stem")):
        stem, _ = soundfile.read(str(files[key]), always_2d=True)
        assert np.abs(stem.mean(axis=0)).max() < 1e-3, (key, stem.mean(axis=0))
    raw, _ = soundfile.read(str(ambient.render(tmp_path / "raw.wav")))  # the API's render, at its peak level
    assert np.abs(raw).max() > 0.5 and np.abs(raw.mean(axis=0)).max() < 1e-3


def test_a_rerun_replaces_its_own_set_of_files(piece, tmp_path, caplog) -> None:
    """A second run into the same folder: its stems alone in the stems folder (a piano piece's three
    beside a cinematic piece's five were eight), the user's own files left, and the WAV of an earlier
    run beside a MIDI-only run named in a warning."""
    import logging

    from composer.output.write import write_outputs

    first = write_outputs(piece, tmp_path, "clip-score", formats=("mid", "wav", "stems"))
    folder = first["stem1"].parent
    (folder / "my-take.wav").write_bytes(b"the user's own")
    (folder / "notes.txt").write_text("mine")
    t = np.arange(0.25, DURATION, 0.5)
    solo = compose(EmotionArc.from_va(t, np.zeros(t.size), np.zeros(t.size)), CUTS, DURATION, style="piano_solo",
                   seed=1, source="rules")
    assert len(solo.parts) < len(piece.parts)
    second = write_outputs(solo, tmp_path, "clip-score", formats=("mid", "wav", "stems"))
    stems = sorted(p.name for p in folder.glob("[0-9][0-9]-*.wav"))
    assert stems == sorted(p.name for k, p in second.items() if k.startswith("stem"))
    assert (folder / "my-take.wav").read_bytes() == b"the user's own" and (folder / "notes.txt").is_file()
    with caplog.at_level(logging.WARNING, logger="composer.output.write"):
        third = write_outputs(solo, tmp_path, "clip-score", formats=("mid", "musicxml"))
    assert set(third) == {"mid", "musicxml"}
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "clip-score.wav, clip-score-stems/ in" in said and "from an earlier run" in said
    assert (tmp_path / "clip-score.wav").is_file()  # told, not deleted: it may be the render a user wanted


@pytest.fixture
def unwritable(tmp_path):
    """A folder no file can be created in: a read-only one, or (as root, whom permissions do not stop)
    /sys, which refuses new files to everyone."""
    import os

    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        yield folder
        folder.chmod(0o755)
        return
    try:
        open("/sys/soundtrack-probe.wav", "wb").close()
    except OSError:
        yield Path("/sys")
    else:
        pytest.skip("no folder here refuses new files")


def test_an_unwritable_folder_is_a_media_error_naming_the_file(piece, clip, unwritable) -> None:
    """``write_midi`` raised a bare OSError and ``render``/``mux`` soundfile's LibsndfileError."""
    cases = [(lambda: piece.write_midi(unwritable / "x.mid"), "x.mid"),
             (lambda: piece.render(unwritable / "x.wav"), "x.wav"),
             (lambda: piece.write_stems(unwritable / "stems"), "stems"),
             (lambda: piece.mux(clip, unwritable / "x.mp4"), "x"),
             (lambda: piece.mux(clip, unwritable / "y.mp4", save_wav=unwritable / "y.wav"), "y.wav")]
    why = r"\((Permission denied|Operation not permitted|Read-only file system)\)"
    for write, name in cases:
        with pytest.raises(MediaError, match=rf"{name}.*: cannot (be written|create the folder) {why}"):
            write()


def test_the_lead_is_not_buried_under_the_accompaniment() -> None:
    """GM patches differ in loudness by 15 dB and more: a violin lead sat 7.5 dB under the brass of a tense
    cinematic cue, a guitar lead 14 dB under its accompaniment. The lead is lifted to the level of the other
    parts together (median of 100 ms frames while it sounds), and the stems still add up to the mix."""
    from composer import compose
    from composer.output.render import lead_boost, stems, synthesize

    fs = 22050
    arc = EmotionArc.constant(12.0, valence=-0.7, arousal=0.8)
    piece = compose(arc, cuts=[4.0, 8.0], duration=12.0, style="cinematic", instrument="violin", seed=1)
    mix = synthesize(piece.parts, 12.0, fs=fs)
    parts = list(stems(piece.parts, 12.0, fs=fs))
    assert np.sqrt(np.mean((sum(parts) - mix) ** 2) / np.mean(mix**2)) < 0.01
    lead, bed = parts[0], sum(parts[1:])
    assert lead_boost(lead, bed, fs) == pytest.approx(1.0, abs=0.02)  # level with the rest now
    hop = fs // 10

    def level(x: np.ndarray) -> np.ndarray:
        frames = x[: len(x) // hop * hop].reshape(-1, hop, 2)
        return 20 * np.log10(np.sqrt((frames**2).mean(axis=(1, 2))) + 1e-12)

    on = level(lead) > level(lead).max() - 30
    assert all(np.median(level(lead)[on]) > np.median(level(p)[on]) for p in parts[1:] if np.abs(p).max() > 0)
    quiet, loud = 0.01 * np.ones((fs, 2), np.float32), 0.1 * np.ones((fs, 2), np.float32)
    assert lead_boost(quiet, loud, fs) == pytest.approx(10 ** (12 / 20))  # 20 dB under: lifted 12 dB at most
    assert lead_boost(loud, quiet, fs) == 1.0  # on top already: left alone


def _sound_of(path: Path) -> tuple[np.ndarray, int]:
    """``path``'s first audio stream as FFmpeg decodes it at its own rate: ``(samples (n, 2), rate)``."""
    import json
    import subprocess

    probe = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_streams", "-of", "json", str(path)]
    rate = int(json.loads(subprocess.run(probe, capture_output=True, check=True, text=True).stdout)
               ["streams"][0]["sample_rate"])
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "2", "-f", "f32le", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, "<f4").reshape(-1, 2), rate


@pytest.mark.parametrize(("clip_rate", "delivered"), [(48000, 48000), (96000, 96000), (32000, 48000), (None, 48000)])
def test_the_scored_clip_sounds_at_the_clips_own_rate(piece, tmp_path, clip_rate, delivered) -> None:
    """The mix was rendered, and the clip's sound decoded, at 44.1 kHz, so a 48 kHz clip came back at 44.1
    kHz. Now the WAV and the muxed sound are at the clip's rate (48 kHz without sound, or under 44.1 kHz),
    the music whole: its level, its length, its samples."""
    from analysis.media.loudness import TARGET_LUFS, integrated_loudness
    from composer.output.write import write_outputs

    audio = "none" if clip_rate is None else "drone"
    clip = make_clip(tmp_path / "clip.mp4", shots=[Shot(150)], audio=audio, sample_rate=clip_rate or 44100)
    files = write_outputs(piece, tmp_path / "out", "cue", clip=clip, formats=("wav", "mp4"), clip_sound="replace")
    wav, wav_rate = soundfile.read(str(files["wav"]), dtype="float32")
    heard, rate = _sound_of(files["mp4"])
    assert wav_rate == rate == delivered
    assert abs(len(heard) / rate - DURATION) < 0.05 and abs(len(wav) / wav_rate - DURATION) < 0.01
    assert integrated_loudness(heard, rate) == pytest.approx(TARGET_LUFS, abs=0.5)
    n = min(len(wav), len(heard))
    assert np.corrcoef(wav[:n].ravel(), heard[:n].ravel())[0, 1] > 0.95  # the same music, in time


def test_a_wav_at_another_rate_is_resampled_to_the_clips(piece, tmp_path) -> None:
    """``piece.mux(wav=...)`` with a 44.1 kHz WAV, and the page's mux of its WAV, kept 44.1 kHz; the clip's
    own sound, kept under it, was decoded at 44.1 kHz too. Both sounds now come at the clip's 48 kHz."""
    from scipy.signal import welch

    clip = make_clip(tmp_path / "clip.mp4", shots=[Shot(150)], audio="drone", sample_rate=48000)
    t = np.arange(round(DURATION * 44100)) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    soundfile.write(tmp_path / "tone.wav", np.stack([tone, tone], 1), 44100)
    for sound in ("replace", "keep"):
        out = piece.mux(clip, tmp_path / f"{sound}.mp4", wav=tmp_path / "tone.wav", clip_sound=sound)
        heard, rate = _sound_of(out)
        assert rate == 48000 and abs(len(heard) / rate - DURATION) < 0.05
        f, power = welch(heard[:, 0], fs=rate, nperseg=8192)
        assert abs(f[np.argmax(power)] - 1000.0) < 10  # the tone at its pitch: resampled, not relabelled


def test_the_delivered_mix_holds_few_copies_of_the_piece_at_once() -> None:
    """A score's WAV is rendered, peak-normalised and brought to -16 LUFS whole. That work held eleven
    float32 copies of the piece at its peak (float64 loudness meters and gains, a zeroed buffer beside each
    render, filtered and scaled copies): 2.5 GB for 10 minutes, 14 GB projected for the hour `compose` allows.
    It now holds three (the two renders the lead's balance needs, or the mix, its gained copy and the
    limited one), and the samples are the same to one 16-bit step."""
    import tracemalloc

    from composer.output.render import delivered_mix

    fs = 22050
    arc = EmotionArc.constant(40.0, valence=-0.3, arousal=0.7)
    piece = compose(arc, cuts=[10.0, 20.0, 30.0], duration=40.0, seed=0, source="rules")
    tracemalloc.start()
    try:
        audio = delivered_mix(piece.parts, 40.0, fs=fs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert audio.shape == (40 * fs, 2) and audio.dtype == np.float32
    assert peak < 3.5 * audio.nbytes  # was 11 x
    from analysis.media.loudness import integrated_loudness, true_peak

    assert integrated_loudness(audio, fs) == pytest.approx(-16.0, abs=0.3)
    assert 20 * np.log10(true_peak(audio)) <= -1.0 + 1e-3
