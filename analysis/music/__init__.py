"""Music tracks: symbolic (MIDI) and audio features on one arc scale."""
