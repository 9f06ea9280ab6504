"""The page's own CSS and the small JavaScript snippets its events run in the browser.

Kept apart from :mod:`app` (the wiring) so the page's look and its browser-side guards read in one
place; nothing here imports Gradio. Each constant's comment says which element it serves and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

SKIP_JS = """(s, c, p, l, k, d) => { const v = document.querySelector('#preview video');
    return [s, c, v ? v.currentTime : 0, v ? v.duration : 0, k, d]; }"""
#: Once the upload's look-only copy is on show, the browser's "Video not playable" about the upload is stale.
DISMISS_JS = """() => { if (!document.querySelector('#clip-note')?.innerText.includes('small copy')) return;
    document.querySelectorAll('.toast-body').forEach(t => { if (t.innerText.includes('Video not playable'))
        t.querySelector('.toast-close')?.click(); }); }"""
#: A file dropped on (or picked for) an upload box that the box does not take: Gradio answered with its own
#: pop-up ("Invalid file type: tone.wav. Only video/x-m4v,video/* allowed."; the subtitles box: "Only .srt, .vtt,
#: .ass, .ssa allowed."). This listener, ahead of Gradio's (capture phase), takes the files Gradio would refuse,
#: hands the name to the box's hidden #BOX-refuse-btn, whose handler words the answer under the box
#: (clips.not_a_clip, clips.not_subtitles), and gives Gradio an empty drop, so the box leaves its "dragging" look.
#: ``__BOXES__`` becomes {box id: what it takes}, each a MIME type prefix ("video/") or a file suffix (".srt").
#: A file of the right kind over ``__MOST__`` bytes (the server's upload limit) is refused the same way, its size
#: handed on too: Gradio's pop-up said "File(s) exceed the maximum allowed size of 190.7 Mb" of a 200 MB limit.
_UPLOAD_GUARD_JS = """() => { if (window.soundtrackUploadGuard) return; window.soundtrackUploadGuard = true;
  const boxes = __BOXES__, most = __MOST__;
  const takes = (f, kinds) => kinds.some(k => k.startsWith('.') ? (f.name || '').toLowerCase().endsWith(k)
    : (f.type || '').startsWith(k));
  const refuse = (event, files) => {
    if (!(event.target instanceof Element)) return;
    const box = Object.keys(boxes).find(b => event.target.closest('#' + b));
    const odd = box && Array.from(files || []).find(f => !takes(f, boxes[box]) || (most && f.size > most));
    if (!odd) return;
    window.soundtrackRefusedSize = takes(odd, boxes[box]) ? odd.size : 0;
    event.preventDefault(); event.stopImmediatePropagation();
    if (event.type === 'drop') event.target.dispatchEvent(new DragEvent('drop',
      {dataTransfer: new DataTransfer(), bubbles: true, cancelable: true}));
    else event.target.value = '';
    window.soundtrackRefused = odd.name;
    document.querySelector('#' + box + '-refuse-btn')?.click(); };
  document.addEventListener('drop', e => refuse(e, e.dataTransfer?.files), true);
  document.addEventListener('change', e => refuse(e, e.target.files), true); }"""


def upload_guard_js(boxes: Mapping[str, Sequence[str]], max_bytes: int | None = None) -> str:
    """The page-load script that answers a wrong file in each of ``boxes`` (element id -> the MIME type
    prefixes and lower-case suffixes it takes), or one over ``max_bytes``, through that box's hidden
    ``#<id>-refuse-btn``."""
    return (_UPLOAD_GUARD_JS.replace("__BOXES__", json.dumps({box: list(kinds) for box, kinds in boxes.items()}))
            .replace("__MOST__", json.dumps(max_bytes or 0)))


#: The script a hidden refuse button sends its handler: the name of the file the guard took, and its size
#: when it was refused for that alone (else 0).
REFUSED_JS = "() => [window.soundtrackRefused || '', window.soundtrackRefusedSize || 0]"
#: On a phone the plot keeps a readable width and scrolls sideways instead of shrinking its text; a line above
#: it (#plot-hint, shown only there and only with a plot) says so: a phone shows no scroll bar, and the plot's
#: right half (the later scenes, the legend) looked cut off.
#: (Gradio's image markup: .image-container > button > .image-frame > img; checked by the phone browser test.)
#: On a phone the two columns under the table stack, and the preview player came after the skip, the track
#: alone and the rating: a tap on "Preview on the video" changed nothing in view. There the controls' column
#: gives its items to the row (display: contents) and the player is ordered right after the preview button.
#: Gradio cuts a long file name to one line ("harbo… .wav", "harbou… .zip" at 390 px): the downloads wrap.
#: Gradio gives each of several files a remove button (×, interactive or not): a click took a composed file off
#: the downloads for good, so the downloads show none.
#: The five rating choices share one line on a phone (the 5 sat alone on a second line).
#: On a phone the ranked table shows fit, track and mood whole, the catalogue its id and title (it showed fit
#: and a cut-off track, id and a cut-off title): Gradio sets each column's width inline (the header's sizing
#: cells, td, and the body's div cells), so these override it there. The other columns scroll sideways, as a
#: line above each table says so (phone only; above the ranked table only once it has rows). Gradio scopes
#: page CSS by splitting selectors at every comma, :is(th, td) too: hence one selector a cell kind.
PHONE_COLUMNS = {"ranked": (64, 148, 104), "catalogue": (40, 200)}
PHONE_TABLES = "\n".join(
    f'  #{table} th:nth-child({i + 1}), #{table} td:nth-child({i + 1}), #{table} .body-cell[data-col="{i}"] '
    f"{{ width: {w}px !important; "
    f"min-width: {w}px !important; max-width: {w}px !important; flex: 0 0 {w}px !important; }}"
    for table, widths in PHONE_COLUMNS.items() for i, w in enumerate(widths))
#: A player is at most 70 % of the window's height, its picture whole inside it: a 9:16 clip filled the width,
#: and on a 1366x768 laptop the preview was 798x1419 px and the composed score 1188x2112 px (nearly three
#: screens: no way to see the whole frame).
PLAYERS = "#clip video, #preview video, #composed video { max-height: 70vh; object-fit: contain; }"
CSS = PLAYERS + """
#plot-hint, #ranked-hint, #catalogue-hint { display: none !important; }
@media (max-width: 640px) {
""" + PHONE_TABLES + """
  #ranked table, #catalogue table { width: auto !important; }
  #catalogue .body-cell[data-col="1"] span { white-space: normal; }
  :has(> #ranked .body-cell) > #ranked-hint, #catalogue-hint { display: block !important; }
  #arc-plot .image-container { overflow-x: auto; }
  #arc-plot .image-container > button { justify-content: flex-start; min-width: 600px; }
  #arc-plot img { min-width: 600px; max-width: none; }
  :has(> #arc-plot img) > #plot-hint { display: block !important; }
  #pick-col { display: contents; }
  #pick-col > * { order: 2; flex: 1 1 100%; }
  #pick-col > .form:first-child, #pick-col > #preview-btn, #pick-col > #preview-error { order: 0; }
  #preview-col { order: 1; flex: 1 1 100%; }
  #downloads td.download, #data-file td.download { min-width: max-content; }
  #rating .wrap { flex-wrap: nowrap; gap: 6px; }
  #rating .wrap label { padding-left: 8px; padding-right: 8px; flex: 1 1 0; min-width: 0; }
}
#downloads td.filename, #data-file td.filename { flex-wrap: wrap; min-width: 0; }
#downloads .label-clear-button { display: none; }
#downloads td.filename .stem, #data-file td.filename .stem { white-space: normal; overflow-wrap: anywhere; }"""
#: Runs in the browser: no request, so it takes no share of the visitor's queue (security.QueueShare).
CLEAR_ERRORS_JS = "(...notes) => notes.map(n => typeof n === 'string' && n.startsWith('**Error:**') ? '' : n)"
