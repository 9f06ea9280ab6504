"""Rule-based music: note types and sources, harmony, arranger, styles."""
