"""The web page's parts beside its wiring in ``app.py``: the CSS and JavaScript the browser runs
(:mod:`.assets`) and the Live tab (:mod:`.live`)."""
