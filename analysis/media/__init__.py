"""Media plumbing: probe, decode, mux, content hash, MIDI synthesis."""
