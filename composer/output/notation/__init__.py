"""What a copyist decides beyond the notes, for the MusicXML writer (:mod:`composer.output.musicxml`):
pitch spelling, key signatures, clefs, dynamic marks, transposing instruments, the percussion staff,
the grand staff of a keyboard or harp, and the names and sounds of the parts."""
