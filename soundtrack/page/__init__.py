"""The web page's parts beside its wiring in ``app.py``: the CSS and JavaScript the browser runs
(:mod:`.assets`), the Live tab (:mod:`.live`), and forgetting the page state of visits that are over
(:mod:`.visits`)."""
