"""Text: subtitle files and text emotion."""
