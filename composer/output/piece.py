"""The composed piece and its writers: MIDI (tempo map + cut markers), MusicXML, WAV, stems, muxed clip.

The MIDI carries the planner's tempo map (:func:`composer.music.midi.tempo_midi`). Cut markers
are added to the first track with ``mido`` after writing, as ``marker`` meta events that DAWs show
on their timeline.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mido
import pretty_midi

from analysis.errors import MediaError, as_path, make_folder, output_file
from analysis.media.dialogue import UNDER_DB, check_clip_sound, check_duck_db, mux_soundtrack
from analysis.media.loudness import TARGET_LUFS
from analysis.media.mux import check_mux, delivery_rate
from composer.music.arranger import Part
from composer.music.harmony import HarmonyPlan, key_sections
from composer.music.midi import tempo_midi
from composer.output.musicxml import compressed_musicxml, score_xml
from composer.output.render import SAMPLE_RATE, check_wav_name, delivered_mix, stems, synthesize, write_wav

#: Who a score names as its composer unless told otherwise.
CREDIT = "Soundtrack composer"

def build_midi(parts: tuple[Part, ...], plan: HarmonyPlan) -> pretty_midi.PrettyMIDI:
    """A PrettyMIDI of ``parts`` with the plan's tempo map, 4/4 and key signatures."""
    pm = tempo_midi(plan.tempo_map, plan.duration)
    for bar, mode in key_sections(plan):
        when = float(plan.downbeats[bar]) if bar < len(plan.downbeats) else 0.0
        pm.key_signature_changes.append(pretty_midi.KeySignature(plan.tonic + (12 if mode == "minor" else 0), when))
    for part in parts:
        inst = pretty_midi.Instrument(program=part.program, is_drum=part.is_drum, name=part.name)
        inst.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in part.notes]
        pm.instruments.append(inst)
    return pm


@dataclass(frozen=True, eq=False)
class Composition:
    """A composed soundtrack.

    ``chords`` are symbols aligned with ``chord_times`` (seconds); ``tempo_map`` holds
    ``(time_s, bpm)``; ``instrument`` is the lead's GM program; ``parts`` the arranged
    notes per instrument (``parts[0]`` is the lead); ``source`` the note source used.
    """

    midi: pretty_midi.PrettyMIDI
    chord_times: tuple[float, ...]
    chords: tuple[str, ...]
    tempo_map: tuple[tuple[float, float], ...]
    style: str
    instrument: int
    plan: HarmonyPlan
    parts: tuple[Part, ...]
    duration: float
    source: str

    @property
    def instrument_name(self) -> str:
        return pretty_midi.program_to_instrument_name(self.instrument)

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": round(self.duration, 4),
            "style": self.style,
            "instrument": self.instrument,
            "instrument_name": self.instrument_name,
            "source": self.source,
            "parts": [
                {"name": p.name, "program": p.program, "drum": p.is_drum, "notes": len(p.notes)} for p in self.parts
            ],
            "plan": self.plan.to_dict(),
        }

    # ------------------------------------------------------------------ writers
    def write_midi(self, path: str | Path) -> Path:
        """Standard MIDI file with the tempo map and a ``marker`` meta event at each cut."""
        out = output_file(path)
        buf = io.BytesIO()
        self.midi.write(buf)
        buf.seek(0)
        mf = mido.MidiFile(file=buf)
        track = mf.tracks[0]
        absolute, t = [], 0
        for msg in track:
            t += msg.time
            absolute.append((t, msg))
        for i, (cut, shift) in enumerate(zip(self.plan.cuts, self.plan.cut_shifts, strict=True)):
            text = f"cut {i + 1}" + (f" ({shift * 1000:+.0f} ms to beat)" if abs(shift) > 1e-3 else "")
            absolute.append((self.midi.time_to_tick(cut), mido.MetaMessage("marker", text=text)))
        end = [m for m in absolute if m[1].type == "end_of_track"]
        body = sorted((m for m in absolute if m[1].type != "end_of_track"), key=lambda m: m[0])
        body += [(max([body[-1][0], *(e[0] for e in end)]) if body else 0, mido.MetaMessage("end_of_track"))]
        track.clear()
        prev = 0
        for tick, msg in body:
            track.append(msg.copy(time=tick - prev))
            prev = tick
        try:
            mf.save(str(out))
        except OSError as err:
            raise MediaError(out, f"cannot be written ({err.strerror or err})") from None
        return out

    def write_musicxml(self, path: str | Path, *, title: str | None = None, composer: str | None = None) -> Path:
        """MusicXML of every part (the drums on a percussion staff), quantised to sixteenths and triplets
        (:mod:`composer.output.musicxml`).

        The score's title and composer are ``title`` (default: "<Style> score") and ``composer``
        (default :data:`CREDIT`). A ``.mxl`` path gets compressed MusicXML (the zip notation programs
        expect under that name), any other the plain XML.
        """
        out = output_file(path)
        title = title or f"{self.style.replace('_', ' ').capitalize()} score"
        try:
            xml = score_xml(self.parts, self.plan, title=title, composer=composer or CREDIT)
            out.write_bytes(compressed_musicxml(xml) if out.suffix.lower() == ".mxl" else xml)
        except (OSError, ValueError) as err:
            raise MediaError(out, f"MusicXML export failed ({type(err).__name__}: {err})") from None
        return out

    def render(self, wav_path: str | Path, soundfont: str | Path | None = None) -> Path:
        """WAV (44.1 kHz stereo, 16 bit) of exactly ``duration`` seconds, via FluidSynth: the mix as rendered,
        its true peak at -1 dBTP (its stems, :meth:`write_stems`, sum to it). The files the CLI, the page,
        :meth:`mux` and :func:`composer.output.write.write_outputs` deliver are brought to -16 LUFS instead."""
        out = check_wav_name(output_file(wav_path, "wav_path"))  # before minutes of rendering, not after
        return write_wav(out, synthesize(self.parts, self.duration, soundfont=soundfont), SAMPLE_RATE)

    def write_stems(self, directory: str | Path, soundfont: str | Path | None = None, *,
                    sample_rate: int = SAMPLE_RATE) -> tuple[Path, ...]:
        """One WAV per part (``01-lead-violin.wav``, ...) at ``sample_rate`` Hz, each ``duration`` seconds long;
        together they sum to :meth:`render`'s audio."""
        d = as_path(directory, "directory")
        make_folder(d, what="folder")
        paths = []
        for i, (part, audio) in enumerate(zip(self.parts, stems(self.parts, self.duration, soundfont=soundfont,
                                                                      fs=sample_rate), strict=True), 1):
            label = "drums" if part.is_drum else pretty_midi.program_to_instrument_name(part.program)
            name = re.sub(r"[^a-z0-9]+", "-", f"{part.name}-{label}".lower()).strip("-")
            paths.append(write_wav(d / f"{i:02d}-{name}.wav", audio, sample_rate))
        return tuple(paths)

    def mux(
        self,
        video: str | Path,
        out_mp4: str | Path,
        *,
        wav: str | Path | None = None,
        soundfont: str | Path | None = None,
        clip_sound: str = "auto",
        duck_db: float = UNDER_DB,
        save_wav: str | Path | None = None,
    ) -> Path:
        """``video`` with this piece as its soundtrack (video stream copied, or re-encoded to H.264
        where MP4 cannot hold its codec), the music at -16 LUFS as the CLI delivers it, rendered at the clip's
        own sample rate (:func:`~analysis.media.mux.delivery_rate`: 48 kHz for a clip without sound).

        ``wav``: an existing render to use as it is (its own level) instead of rendering; else the
        piece is rendered for the clip alone, and its WAV kept at ``save_wav`` only when that is given
        (no file is written beside ``out_mp4``). ``clip_sound``: ``"auto"`` keeps a clip's dialogue
        with the music ducked under it and replaces a clip's sound without speech; ``"keep"`` always
        keeps it; ``"replace"`` never (:mod:`analysis.media.dialogue`). ``duck_db``: how far the music
        sits under speech (dB below the dialogue).
        """
        video = as_path(video, "video")
        check_clip_sound(clip_sound)
        check_duck_db(duck_db)
        out = output_file(out_mp4, "out_mp4")
        saved = check_wav_name(output_file(save_wav, "save_wav")) if save_wav is not None else None
        check_mux(video, out)  # a missing clip or a container that cannot take the sound: said before rendering
        if wav is not None:
            return mux_soundtrack(video, wav, out, clip_sound=clip_sound, duck_db=duck_db)[0]
        with music_file(self, out, soundfont, keep=saved, rate=delivery_rate(video)) as audio:
            return mux_soundtrack(video, audio, out, clip_sound=clip_sound, duck_db=duck_db,
                                  music_lufs=TARGET_LUFS)[0]


@contextmanager
def music_file(piece: Composition, out: Path, soundfont: str | Path | None, *, keep: Path | None = None,
               rate: int = SAMPLE_RATE) -> Iterator[Path]:
    """The piece rendered at -16 LUFS and ``rate`` Hz into ``keep``, or else into a passing WAV beside ``out``
    (the clip it is muxed into) removed afterwards: a user's own ``<out>.wav`` is never touched."""
    wav = keep or out.with_name(f".{out.stem}.{os.getpid()}.{threading.get_ident()}.music.wav")
    try:
        yield write_wav(wav, delivered_mix(piece.parts, piece.duration, soundfont=soundfont, fs=rate), rate)
    finally:
        if keep is None:
            wav.unlink(missing_ok=True)


