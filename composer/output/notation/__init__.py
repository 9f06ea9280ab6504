"""What a copyist decides beyond the notes, for the MusicXML writer (:mod:`composer.output.musicxml`):
pitch spelling, clefs, dynamic marks, transposing instruments and the percussion staff."""
