"""Part names and sounds: each part named as its player expects, with the MusicXML sound of its instrument.

The score named parts by the arranger's role and the General MIDI patch, "lead (French Horn)",
"pad (String Ensemble 1)", "arpeggio (Orchestral Harp)": a copyist hands out "Horn in F",
"Strings", "Harp", and a notation program chose a sound from the name alone. Each part is now named
as players name the instrument (a transposing one with its key), abbreviated as scores print it on
later systems, the role dropped (it is the arranger's, not the player's), and its
``<score-instrument>`` carries an ``<instrument-sound>`` from MusicXML 4.0's standard sounds list
(``sounds.xml``), so notation software picks the instrument rather than a piano. Two parts of one
name are numbered (Marimba 1, Marimba 2).
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple


class Instrument(NamedTuple):
    """A player's ``name`` for a part, its ``abbreviation`` and its MusicXML ``sound`` identifier."""

    name: str
    abbreviation: str
    sound: str


def _table(*rows: tuple[int, int, str, str, str]) -> dict[int, Instrument]:
    """``(first, last, name, abbreviation, sound)`` rows: programs ``first`` .. ``last`` alike."""
    return {p: Instrument(name, abbr, sound) for first, last, name, abbr, sound in rows for p in range(first, last + 1)}


#: General MIDI program -> instrument (sound identifiers as listed in MusicXML 4.0's sounds.xml).
INSTRUMENTS: dict[int, Instrument] = _table(
    (0, 0, "Piano", "Pno.", "keyboard.piano.grand"), (1, 1, "Piano", "Pno.", "keyboard.piano"),
    (2, 2, "Electric Grand Piano", "E.Pno.", "keyboard.piano.electric"),
    (3, 3, "Honky-tonk Piano", "Pno.", "keyboard.piano.honky-tonk"),
    (4, 5, "Electric Piano", "E.Pno.", "keyboard.piano.electric"),
    (6, 6, "Harpsichord", "Hpsd.", "keyboard.harpsichord"),
    (7, 7, "Clavinet", "Clav.", "keyboard.clavichord"), (8, 8, "Celesta", "Cel.", "keyboard.celesta"),
    (9, 9, "Glockenspiel", "Glk.", "pitched-percussion.glockenspiel"),
    (10, 10, "Music Box", "Mus. Box", "pitched-percussion.music-box"),
    (11, 11, "Vibraphone", "Vib.", "pitched-percussion.vibraphone"),
    (12, 12, "Marimba", "Mrm.", "pitched-percussion.marimba"),
    (13, 13, "Xylophone", "Xyl.", "pitched-percussion.xylophone"),
    (14, 14, "Tubular Bells", "T.B.", "pitched-percussion.tubular-bells"),
    (15, 15, "Hammered Dulcimer", "Dulc.", "pitched-percussion.hammer-dulcimer"),
    (16, 16, "Organ", "Org.", "keyboard.organ.drawbar"), (17, 17, "Organ", "Org.", "keyboard.organ.percussive"),
    (18, 18, "Organ", "Org.", "keyboard.organ.rotary"), (19, 19, "Organ", "Org.", "keyboard.organ.pipe"),
    (20, 20, "Harmonium", "Harm.", "keyboard.harmonium"), (21, 21, "Accordion", "Acc.", "keyboard.accordion"),
    (22, 22, "Harmonica", "Hmc.", "wind.reed.harmonica"), (23, 23, "Bandoneon", "Bdn.", "keyboard.bandoneon"),
    (24, 24, "Classical Guitar", "Guit.", "pluck.guitar.nylon-string"),
    (25, 25, "Acoustic Guitar", "Guit.", "pluck.guitar.steel-string"),
    (26, 31, "Electric Guitar", "El. Guit.", "pluck.guitar.electric"),
    (32, 32, "Acoustic Bass", "A. Bass", "pluck.bass.acoustic"),
    (33, 34, "Electric Bass", "El. Bass", "pluck.bass.electric"),
    (35, 35, "Fretless Bass", "Fr. Bass", "pluck.bass.fretless"),
    (36, 37, "Electric Bass", "El. Bass", "pluck.bass.electric"),
    (38, 39, "Synth Bass", "Syn. Bass", "pluck.bass.synth"),
    (40, 40, "Violin", "Vln.", "strings.violin"), (41, 41, "Viola", "Vla.", "strings.viola"),
    (42, 42, "Cello", "Vc.", "strings.cello"), (43, 43, "Contrabass", "Cb.", "strings.contrabass"),
    (44, 44, "Strings", "Str.", "strings.group"), (45, 45, "Strings pizz.", "Str. pizz.", "strings.group"),
    (46, 46, "Harp", "Hp.", "pluck.harp"), (47, 47, "Timpani", "Timp.", "drum.timpani"),
    (48, 49, "Strings", "Str.", "strings.group"), (50, 51, "Synth Strings", "Syn. Str.", "strings.group.synth"),
    (52, 52, "Choir Aahs", "Ch.", "voice.aa"), (53, 53, "Choir Oohs", "Ch.", "voice.oo"),
    (54, 54, "Synth Voice", "Syn. Vo.", "voice.synth"), (55, 55, "Orchestra Hit", "Orch. Hit", "synth.group.orchestra"),
    (56, 56, "Trumpet in Bb", "Tpt.", "brass.trumpet.bflat"), (57, 57, "Trombone", "Tbn.", "brass.trombone"),
    (58, 58, "Tuba", "Tba.", "brass.tuba"), (59, 59, "Trumpet in Bb (muted)", "Tpt.", "brass.trumpet.bflat"),
    (60, 60, "Horn in F", "Hn.", "brass.french-horn"), (61, 61, "Brass", "Br.", "brass.group"),
    (62, 63, "Synth Brass", "Syn. Br.", "brass.group.synth"),
    (64, 64, "Soprano Saxophone", "S. Sax.", "wind.reed.saxophone.soprano"),
    (65, 65, "Alto Saxophone", "A. Sax.", "wind.reed.saxophone.alto"),
    (66, 66, "Tenor Saxophone", "T. Sax.", "wind.reed.saxophone.tenor"),
    (67, 67, "Baritone Saxophone", "B. Sax.", "wind.reed.saxophone.baritone"),
    (68, 68, "Oboe", "Ob.", "wind.reed.oboe"), (69, 69, "English Horn", "E.H.", "wind.reed.english-horn"),
    (70, 70, "Bassoon", "Bsn.", "wind.reed.bassoon"), (71, 71, "Clarinet in Bb", "Cl.", "wind.reed.clarinet.bflat"),
    (72, 72, "Piccolo", "Picc.", "wind.flutes.flute.piccolo"), (73, 73, "Flute", "Fl.", "wind.flutes.flute"),
    (74, 74, "Recorder", "Rec.", "wind.flutes.recorder"), (75, 75, "Pan Flute", "Pan Fl.", "wind.flutes.panpipes"),
    (76, 76, "Blown Bottle", "Bot.", "wind.flutes.blown-bottle"),
    (77, 77, "Shakuhachi", "Shk.", "wind.flutes.shakuhachi"),
    (78, 78, "Whistle", "Wh.", "wind.flutes.whistle"), (79, 79, "Ocarina", "Oc.", "wind.flutes.ocarina"),
    (80, 80, "Square Lead", "Syn.", "synth.tone.square"), (81, 81, "Sawtooth Lead", "Syn.", "synth.tone.sawtooth"),
    (82, 82, "Calliope", "Syn.", "wind.flutes.calliope"), (83, 83, "Chiff Lead", "Syn.", "pluck.synth.chiff"),
    (84, 84, "Charang Lead", "Syn.", "pluck.synth.charang"), (85, 85, "Voice Lead", "Syn.", "voice.synth"),
    (86, 86, "Fifths Lead", "Syn.", "synth.group.fifths"), (87, 87, "Bass and Lead", "Syn.", "pluck.bass.synth.lead"),
    (88, 88, "New Age Pad", "Pad", "synth.pad"), (89, 89, "Warm Pad", "Pad", "synth.pad.warm"),
    (90, 90, "Polysynth Pad", "Pad", "synth.pad.polysynth"), (91, 91, "Choir Pad", "Pad", "synth.pad.choir"),
    (92, 92, "Bowed Pad", "Pad", "synth.pad.bowed"), (93, 93, "Metallic Pad", "Pad", "synth.pad.metallic"),
    (94, 94, "Halo Pad", "Pad", "synth.pad.halo"), (95, 95, "Sweep Pad", "Pad", "synth.pad.sweep"),
    (96, 96, "Rain", "FX", "synth.effects.rain"), (97, 97, "Soundtrack", "FX", "synth.effects.soundtrack"),
    (98, 98, "Crystal", "FX", "synth.effects.crystal"), (99, 99, "Atmosphere", "FX", "synth.effects.atmosphere"),
    (100, 100, "Brightness", "FX", "synth.effects.brightness"), (101, 101, "Goblins", "FX", "synth.effects.goblins"),
    (102, 102, "Echoes", "FX", "synth.effects.echoes"), (103, 103, "Sci-fi", "FX", "synth.effects.sci-fi"),
    (104, 104, "Sitar", "Sit.", "pluck.sitar"), (105, 105, "Banjo", "Bjo.", "pluck.banjo"),
    (106, 106, "Shamisen", "Shm.", "pluck.shamisen"), (107, 107, "Koto", "Koto", "pluck.koto"),
    (108, 108, "Kalimba", "Kal.", "pitched-percussion.kalimba"), (109, 109, "Bagpipes", "Bagp.", "wind.pipes.bagpipes"),
    (110, 110, "Fiddle", "Fdl.", "strings.fiddle"), (111, 111, "Shehnai", "Shn.", "wind.reed.shenai"),
    (112, 112, "Tinkle Bell", "Bell", "metal.bells.tinklebell"), (113, 113, "Agogo", "Ag.", "metal.bells.agogo"),
    (114, 114, "Steel Drums", "St. Dr.", "metal.steel-drums"), (115, 115, "Woodblock", "Wb.", "wood.wood-block"),
    (116, 116, "Taiko", "Tko.", "drum.taiko"), (117, 117, "Toms", "Tom", "drum.tom-tom"),
    (118, 118, "Synth Drum", "Syn. Dr.", "drum.tom-tom.synth"),
    (119, 119, "Reverse Cymbal", "Cym.", "metal.cymbal.reverse"),
    (120, 120, "Guitar Fret Noise", "FX", "effect.guitar-fret"), (121, 121, "Breath", "FX", "effect.breath"),
    (122, 122, "Seashore", "FX", "effect.seashore"), (123, 123, "Bird Tweet", "FX", "effect.bird.tweet"),
    (124, 124, "Telephone", "FX", "effect.telephone-ring"), (125, 125, "Helicopter", "FX", "effect.helicopter"),
    (126, 126, "Applause", "FX", "effect.applause"), (127, 127, "Gunshot", "FX", "effect.gunshot"),
)
PERCUSSION = Instrument("Percussion", "Perc.", "drum.group.set")


def part_names(programs: list[int | None]) -> list[Instrument]:
    """The instrument of each part (``None``: the percussion part), two parts of one name numbered."""
    found = [PERCUSSION if p is None else INSTRUMENTS[p] for p in programs]
    count, seen = Counter(i.name for i in found), Counter[str]()
    out = []
    for inst in found:
        if count[inst.name] > 1:
            seen[inst.name] += 1
            k = seen[inst.name]
            inst = inst._replace(name=f"{inst.name} {k}", abbreviation=f"{inst.abbreviation} {k}")
        out.append(inst)
    return out
