"""Is a text English? The text-emotion reader (an English sentence encoder and English prototypes)
reads other languages as noise with full confidence: German "Ich bin so glücklich" read as
unpleasant. Subtitles in another language are therefore left out, with a note saying why.

English prose is dense in a few hundred function words ("the", "I", "is", "you", ...): about
four words in ten of film dialogue. German, French, Spanish or Japanese text shares few of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORDS = """
a about after all also am an and any are as at back be because been before being but by can could did do
does don't down for from get go going good got had has have he her here him his how i i'm if in into is
it it's its just know let's like look me more my no not now of off oh okay on one or our out over right
said say see she so some than that that's the their them then there they think this to too up us very
want was we well were what when where which who why will with would yeah yes you you're your
"""
_COMMON = frozenset(_WORDS.split())
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
#: Fewer words than this say nothing either way.
MIN_WORDS = 12
#: Below this share of common English words a text is taken for another language.
MIN_SHARE = 0.15


def english_share(texts: Iterable[str]) -> float | None:
    """The share of the words of ``texts`` that are common English words; None for too few words to tell."""
    words = [w.lower().replace("\u2019", "'") for t in texts for w in _WORD.findall(t.replace("\u2019", "'"))]
    if len(words) < MIN_WORDS:
        return None
    return sum(w in _COMMON for w in words) / len(words)


def not_english(texts: Iterable[str]) -> float | None:
    """The share of common English words when ``texts`` look like another language, else None."""
    share = english_share(texts)
    return share if share is not None and share < MIN_SHARE else None
