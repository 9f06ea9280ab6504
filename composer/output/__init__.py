"""The composed piece and its outputs: MIDI, MusicXML, audio."""
