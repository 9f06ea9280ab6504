"""What the web page shows in the browser itself: its CSS and JavaScript (:mod:`.assets`)."""
