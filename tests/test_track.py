"""Track analysis: every audio format reads, MIDI and its FluidSynth render agree, bad files raise MediaError."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from analysis.errors import MediaError
from analysis.music.audio import SR, render_midi
from analysis.music.symbolic import score_to_midi
from analysis.music.track import EMBEDDING_DIMS, TrackAnalysis, analyze_track

FORMATS = ("wav", "flac", "ogg", "mp3", "m4a", "aiff", "webm")


def _variant(pm: pretty_midi.PrettyMIDI, *, tempo: float, velocity: float) -> pretty_midi.PrettyMIDI:
    out = pretty_midi.PrettyMIDI(initial_tempo=96.0 * tempo)
    for inst in pm.instruments:
        new = pretty_midi.Instrument(program=inst.program)
        new.notes = [
            pretty_midi.Note(velocity=int(min(127, n.velocity * velocity)), pitch=n.pitch,
                             start=n.start / tempo, end=n.end / tempo)
            for n in inst.notes
        ]
        out.instruments.append(new)
    return out


@pytest.fixture(scope="module")
def chorale(tmp_path_factory) -> Path:
    """bwv66.6 (F# minor, 22.5 s) as .mid and rendered to every audio format."""
    music21 = pytest.importorskip("music21")
    folder = tmp_path_factory.mktemp("chorale")
    pm = score_to_midi(music21.corpus.parse("bach/bwv66.6"))
    pm.write(str(folder / "c.mid"))
    y = render_midi(pm)
    for ext in ("wav", "flac", "ogg", "aiff"):  # libsndfile's own formats
        sf.write(folder / f"c.{ext}", y, SR)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        for ext in ("mp3", "m4a", "webm"):  # webm: Opus audio, as downloaders save music
            subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(folder / "c.wav"), str(folder / f"c.{ext}")],
                           check=True)
    fast = _variant(pm, tempo=1.6, velocity=1.3)
    fast.write(str(folder / "fast.mid"))
    sf.write(folder / "fast.wav", render_midi(fast), SR)
    return folder


@pytest.mark.parametrize("ext", FORMATS)
def test_each_audio_format_reads(chorale, ext):
    path = chorale / f"c.{ext}"
    if not path.exists():
        pytest.skip("ffmpeg is not installed to encode the fixture")
    tr = analyze_track(path)
    ref = analyze_track(chorale / "c.wav")
    assert tr.kind == "audio"
    assert tr.duration == pytest.approx(23.5, abs=0.1)  # 22.5 s of music + FluidSynth's 1 s release tail
    assert tr.key == "F# minor" and tr.mode == "minor"
    assert tr.tempo == pytest.approx(96.0, rel=0.05)
    n = min(len(tr.arc), len(ref.arc))
    assert np.abs(tr.arc.va()[:n] - ref.arc.va()[:n]).mean() < 0.05  # lossy codecs barely move the arc
    assert tr.embedding.dtype == np.float32 and tr.embedding.shape == (len(EMBEDDING_DIMS),)
    assert tr.checksum == hashlib.sha256(path.read_bytes()).hexdigest()


def test_midi_and_its_render_agree(chorale):
    """Thresholds sit below what the calibration bench measures on this piece with a piano
    (valence r 0.92, mean |diff| 0.18; arousal |diff| 0.03) and above chance, so a broken
    calibration or feature fails while codec/onset noise does not."""
    midi, audio = analyze_track(chorale / "c.mid"), analyze_track(chorale / "c.wav")
    assert midi.kind == "midi" and midi.key == audio.key == "F# minor"
    assert midi.tempo == pytest.approx(96.0)
    n = min(len(midi.arc), len(audio.arc))
    mv, av = midi.arc.valence[:n], audio.arc.valence[:n]
    assert np.corrcoef(mv, av)[0, 1] > 0.7
    assert np.abs(mv - av).mean() < 0.3
    assert np.abs(midi.arc.arousal[:n] - audio.arc.arousal[:n]).mean() < 0.2
    assert abs(midi.loudness - audio.loudness) < 4.0  # dB
    # the same piece faster and louder: both estimators rise, and by similar amounts
    fast_m, fast_a = analyze_track(chorale / "fast.mid"), analyze_track(chorale / "fast.wav")
    rise_m = fast_m.arc.arousal.mean() - midi.arc.arousal.mean()
    rise_a = fast_a.arc.arousal.mean() - audio.arc.arousal.mean()
    assert rise_m > 0.3 and rise_a > 0.3
    assert abs(rise_m - rise_a) < 0.25
    # embeddings: a track is nearer its own render than the fast variant is
    d_same = np.linalg.norm(midi.embedding - audio.embedding)
    d_other = np.linalg.norm(midi.embedding - fast_a.embedding)
    assert d_same < d_other


def test_to_dict_round_trip(chorale):
    tr = analyze_track(chorale / "c.mid", hop=1.0)
    data = json.loads(json.dumps(tr.to_dict()))
    back = TrackAnalysis.from_dict(data)
    assert (back.key, back.kind, back.checksum, back.path) == (tr.key, tr.kind, tr.checksum, tr.path)
    np.testing.assert_allclose(back.embedding, tr.embedding, atol=1e-5)
    np.testing.assert_allclose(back.arc.va(), tr.arc.va(), atol=1e-4)
    assert back.arc.hop == 1.0


def _zero_length_wav(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)


@pytest.mark.parametrize(
    "name, make, problem",
    [
        ("missing.wav", None, "does not exist"),
        ("empty.ogg", lambda p: p.write_bytes(b""), "is empty"),
        ("text.wav", lambda p: p.write_text("this is not audio at all\n" * 50), "not readable audio"),
        ("garbage.mp3", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4000)), "not readable audio"),
        ("zero.wav", _zero_length_wav, "zero length"),
        ("silent.flac", lambda p: sf.write(p, np.zeros(SR, np.float32), SR), "silent"),
        # a cut-off download: 0.03 s was catalogued, ranked, and fitted as silence after 0.25 s
        ("click.wav", lambda p: sf.write(p, 0.5 * np.sin(np.arange(660) / 10.0), SR), r"too short to be a track"),
        ("garbage.mid", lambda p: p.write_bytes(b"MThd" + bytes(100)), "not a readable MIDI"),
        ("notes.txt", lambda p: p.write_text("hello"), "not a supported"),
        ("nonotes.mid", lambda p: pretty_midi.PrettyMIDI().write(str(p)), "has no notes"),
    ],
)
def test_bad_files_raise_media_error(tmp_path, name, make, problem):
    path = tmp_path / name
    if make is not None:
        make(path)
    with pytest.raises(MediaError, match=problem) as info:
        analyze_track(path)
    assert info.value.path == path and name in str(info.value)


def test_truncated_ogg_raises_media_error(chorale, tmp_path):
    path = tmp_path / "cut.ogg"
    path.write_bytes((chorale / "c.ogg").read_bytes()[:300])
    with pytest.raises(MediaError, match=r"cut\.ogg"):
        analyze_track(path)


def test_a_damaged_packet_is_skipped_in_time(tmp_path, caplog):
    """A library track with one damaged stretch (a bad rip, a broken download) is read, not refused: the bad
    packets are skipped with a warning and their time kept as silence, so the music after them stays put."""
    from mediagen import make_audio_file

    from analysis.music.track import load_audio

    clean = make_audio_file(tmp_path / "clean.m4a", audio="percussion", seconds=12.0)
    data = bytearray(clean.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = np.random.default_rng(0).bytes(3000)
    damaged = tmp_path / "damaged.m4a"
    damaged.write_bytes(bytes(data))
    a, b = load_audio(clean), load_audio(damaged)
    assert abs(b.size - a.size) < 0.01 * SR
    n = min(a.size, b.size)
    tail = slice(n - 3 * SR, n)  # the last 3 s, after the damage
    assert np.corrcoef(a[tail], b[tail])[0, 1] > 0.99
    assert "skipped" in caplog.text and "damaged.m4a" in caplog.text
    assert analyze_track(damaged).duration == pytest.approx(analyze_track(clean).duration, abs=0.05)


@pytest.mark.parametrize("suffix", [".wav", ".aiff"])
def test_a_cut_off_wav_or_aiff_is_read_with_a_warning(tmp_path, caplog, suffix):
    """A WAV cut to 300 KB of its 7 MB was catalogued as a 1.7 s track without a word: libsndfile reads the
    bytes present and says nothing, where the video decoder warns of a truncated clip."""
    from analysis.music.track import load_audio

    sr = 8000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * sr) / sr)
    whole = tmp_path / f"whole{suffix}"
    sf.write(str(whole), np.stack([tone, tone], axis=1), sr, subtype="PCM_16")
    load_audio(whole)
    assert "truncated" not in caplog.text  # a whole file says nothing
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) * 3 // 10])
    y = load_audio(cut, sr=sr)
    assert y.size == pytest.approx(3 * sr, abs=0.05 * sr)  # what is there is still read
    assert f"cut{suffix}: decoded 3.0 s of the 10.0 s its header announces (truncated?)" in caplog.text


def test_a_streamed_wav_announces_no_length(tmp_path):
    """A WAV written while streaming leaves its data size open (0 or 0xFFFFFFFF): nothing to compare."""
    from analysis.music.formats import header_frames

    path = tmp_path / "live.wav"
    sf.write(str(path), np.zeros(800), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert header_frames(path) is None
    sf.write(str(path), np.zeros(800), 8000, subtype="PCM_16")
    assert header_frames(path) == 800


def test_the_hand_built_features_read_a_long_track_in_stretches_to_the_same_values() -> None:
    """The semitone power and the frame power were taken from the spectrogram and the framed signal of the
    whole track at once (0.8 GB for 10 minutes); in stretches they come out the same."""
    import numpy as np

    from analysis.jit import load_librosa
    from analysis.music import audio

    librosa = load_librosa()
    y = np.random.default_rng(0).standard_normal(audio.HOP * (3 * audio.STFT_FRAMES + 77)).astype(np.float32) * 0.1
    full = (audio._FB @ (np.abs(librosa.stft(y, n_fft=audio.N_FFT, hop_length=audio.HOP)) ** 2)).T
    np.testing.assert_allclose(audio.band_power(y, audio._FB), full, rtol=1e-5, atol=1e-9)
    rms = librosa.feature.rms(y=y, frame_length=2048, hop_length=audio.HOP)[0] ** 2
    np.testing.assert_allclose(audio.frame_power(y, 2048), rms, rtol=1e-4, atol=1e-12)


def test_a_long_file_is_decoded_mixed_and_resampled_a_block_at_a_time(tmp_path) -> None:
    """A whole 44.1 kHz stereo file was read at once, mixed to mono, then resampled: seven times the
    result's size at the peak (0.37 GB for 10 minutes). A block at a time it is the same samples."""
    import tracemalloc

    from analysis.jit import load_librosa
    from analysis.music.track import load_audio

    rng = np.random.default_rng(0)
    path = tmp_path / "long.wav"
    stereo = (0.1 * rng.standard_normal((44100 * 150 + 17, 2))).astype(np.float32)
    sf.write(path, stereo, 44100, subtype="PCM_16")
    del stereo
    sf.write(tmp_path / "short.wav", np.zeros((4410, 2), np.float32), 44100)
    load_audio(tmp_path / "short.wav", sr=SR)  # the decoders' modules load outside the count
    tracemalloc.start()
    try:
        y = load_audio(path, sr=SR)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * y.nbytes  # the samples, a block and a finite-check mask
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    whole = load_librosa().resample(data.mean(axis=1), orig_sr=44100, target_sr=SR)
    np.testing.assert_array_equal(y, whole)


def test_the_global_tempo_sums_its_tempogram_in_stretches_to_librosas_estimate(chorale) -> None:
    """librosa's tempo averaged a whole-track tempogram (344 lags a frame, 0.45 GB traced for 10 minutes);
    summed a stretch of columns at a time it names the same tempo, in a few MB."""
    import tracemalloc

    from analysis.jit import load_librosa
    from analysis.music.spectra import global_tempo

    librosa = load_librosa()
    y, _ = sf.read(chorale / "fast.wav", dtype="float32")
    rng = np.random.default_rng(1)
    envs = [librosa.onset.onset_strength(y=y, sr=SR), *(rng.random(n) for n in (90, 700, 3000))]
    for env in envs:
        whole = float(librosa.feature.tempo(onset_envelope=env, sr=SR, hop_length=512)[0])
        assert global_tempo(env, SR, 512, frames=37) == whole == global_tempo(env, SR, 512)
        assert global_tempo(env, SR, 512, frames=37, detrend=True) == global_tempo(env, SR, 512, detrend=True)
    long_env = rng.random(26000)  # 10 minutes of frames
    tracemalloc.start()
    try:
        global_tempo(long_env, SR, 512)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6  # librosa's: 0.45 GB


@pytest.mark.slow
def test_a_long_recording_is_analysed_in_memory_that_stays_near_its_own_size() -> None:
    """The hand-built cues and the model's window features each took nine times the audio's size above it
    for 10 minutes (their tempograms and padded copies); in stretches a few times its size at most."""
    import tracemalloc

    from analysis.music.audio import analyze_audio
    from analysis.music.emotion import window_features

    rng = np.random.default_rng(2)
    t = np.arange(SR * 360) / SR
    y = (0.2 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    y += (0.05 * rng.standard_normal(y.size)).astype(np.float32)
    for run in (lambda a: analyze_audio(a, SR, reader="features"), lambda a: window_features(a, SR)):
        run(y[: 5 * SR])  # librosa's modules and kernels load on first use: not the analysis's memory
        tracemalloc.start()
        try:
            run(y)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 3 * y.nbytes


@pytest.mark.slow
def test_a_long_recording_reports_its_progress_as_it_goes(chorale, tmp_path) -> None:
    """Indexing a folder with one long track showed a bar that stood still for minutes: the analysis said
    nothing until it was done. Each stage now reports as it goes, a stretch at a time, to the same result."""
    y, _ = sf.read(chorale / "c.wav", dtype="float32")
    sf.write(tmp_path / "long.wav", np.tile(y, 3), SR)
    heard: list[tuple[float, str]] = []
    track = analyze_track(tmp_path / "long.wav", progress=lambda f, m: heard.append((f, m)))
    fractions = [f for f, _ in heard]
    assert len(set(fractions)) >= 6 and fractions == sorted(fractions) and 0 <= min(fractions) <= max(fractions) <= 1
    assert {m for _, m in heard} == {"decoding", "reading pitch and loudness", "reading timbre", "tagging"}
    quiet = analyze_track(tmp_path / "long.wav")
    assert track.tempo == quiet.tempo and np.array_equal(track.arc.arousal, quiet.arc.arousal)


@pytest.mark.parametrize("ext", ["mp3", "m4a"])
def test_an_mp3_or_m4a_is_decoded_into_one_array_not_a_list_joined_after(tmp_path, ext, monkeypatch) -> None:
    """PyAV's frames were kept in a list and joined at the end: twice the track at the peak (0.11 GB for
    10 minutes). Written into one array sized from the header, the peak is the track and a frame or two;
    a header that announces too little grows the array to the same samples."""
    import tracemalloc

    from analysis.music import track

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    rng = np.random.default_rng(3)
    t = np.arange(44100 * 90) / 44100
    y = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    sf.write(tmp_path / "src.wav", np.column_stack([y, y[::-1]]), 44100, subtype="PCM_16")
    path = tmp_path / f"long.{ext}"
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(tmp_path / "src.wav"), str(path)], check=True)
    track.load_audio(path, sr=SR)  # the decoders' modules load outside the count
    tracemalloc.start()
    try:
        got = track.load_audio(path, sr=SR)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert abs(got.size - 90 * SR) < 0.1 * SR
    assert peak < 1.3 * got.nbytes  # was 2.06 times
    monkeypatch.setattr(track, "MAX_RESERVE_S", 1.0)  # as if the header announced a second
    np.testing.assert_array_equal(track.load_audio(path, sr=SR), got)
    stereo = track.load_audio(path, sr=SR, mono=False)
    assert stereo.shape == (2, got.size) and stereo.flags.c_contiguous


def test_a_signal_held_whole_or_arriving_in_blocks_gives_the_same_stretches_and_progress() -> None:
    """The centred frames were cut two ways, from the whole signal and from arriving blocks; both are now the
    one streamed cut, to the same spectra to the bit, and both report the share of frames done."""
    from analysis.music.spectra import power_stretches, stream_power_stretches

    y = np.random.default_rng(6).standard_normal(512 * 300 + 77).astype(np.float32)
    heard: dict[str, list[float]] = {"whole": [], "blocks": []}
    whole = list(power_stretches(y, 2048, 512, 64, progress=heard["whole"].append))
    blocks = (y[i : i + 5000] for i in range(0, y.size, 5000))
    streamed = list(stream_power_stretches(blocks, y.size, 2048, 512, 64, progress=heard["blocks"].append))
    assert len(whole) == len(streamed) == 5
    for a, b in zip(whole, streamed, strict=True):
        np.testing.assert_array_equal(a, b)
    assert heard["whole"] == heard["blocks"] == sorted(heard["whole"]) and heard["whole"][-1] == 1.0


def test_one_within_maps_a_part_of_either_kind_of_progress() -> None:
    """A part's share was mapped onto its whole four ways (a stage, a part of a stage, two inline lambdas and
    the tagger's own helper); one :func:`within` now maps either kind of callback, nested and clamped."""
    from analysis.music.spectra import stage, within

    heard: list[tuple[float, str]] = []
    whole = within(lambda f, m: heard.append((f, m)), 0.5, 1.0)  # the second half of an analysis
    within(whole, 0.0, 0.5)(1.0, "tagging")  # the first half of that half, done
    stage(whole, 0.5, 1.0, "tagging")(2.0)  # past its end: clamped
    within(stage(lambda f, m: heard.append((f, m)), 0.0, 0.4, "timbre"), 0.5, 1.0)(0.5)
    assert heard == [(0.75, "tagging"), (1.0, "tagging"), (pytest.approx(0.3), "timbre")]
    within(None, 0.0, 1.0)(0.5)  # no one follows: nothing heard, nothing raised
    stage(None, 0.0, 1.0, "tagging")(0.5)
