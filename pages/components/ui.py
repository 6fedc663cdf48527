"""Small page helpers: showing core errors, page preconditions."""

from __future__ import annotations

import datetime as dt
import json
import re
from contextlib import contextmanager
from typing import Callable, Iterator

import streamlit as st

from core.errors import CropMapError, environment_error

#: where the region and the image in use are chosen (their errors link there)
TO_REGION = ("pages/region.py", "Go to the Region page")
#: training patch sides the pages offer (the Data page cuts them, the Model page trains on them)
PATCH_SIZES = [64, 128, 256]
#: the key of the container of a page's map beside its controls: on a phone, where the columns stack, its
#: column comes first (assets/style.css; the Predict map was 1,100 px down, out of view as the threshold moved)
MAP_FIRST = "map-first"


def map_place(column):
    """The container of a page's map in ``column`` (key :data:`MAP_FIRST`), made before the page's
    slower work: until the map arrives (and while its frame loads) it reads "Drawing the map..."
    (assets/style.css), not a blank that looks broken; the map covers the words once drawn."""
    box = column.container(key=MAP_FIRST)
    box.html('<div class="map-wait">Drawing the map…</div>')
    return box


def patch_size_choice(shape: tuple[int, int] | None, wanted: int) -> tuple[list[int], int, str | None]:
    """The patch sizes a region of ``shape`` (rows, columns; None: unknown, all sizes) can be cut
    into, the index of ``wanted`` among them (else of the largest), and a help text when some are
    left out. The list is empty when none fits."""
    fits = [s for s in PATCH_SIZES if shape is None or s <= min(shape)]
    index = fits.index(wanted) if wanted in fits else max(len(fits) - 1, 0)
    help_ = None if fits == PATCH_SIZES else f"Sizes up to the region's {min(shape)} px; a larger region allows larger patches."
    return fits, index, help_


def remembered(prev: dict, field: str, default, options=None, lo=None, hi=None):
    """A form's ``field`` as last submitted (``prev``: the form's kept dict), where it is still a value
    its widget takes: of ``default``'s type, among ``options`` or within ``lo``..``hi`` when given;
    else ``default`` (a session kept by another version of the app, whose form offered other values,
    would otherwise fail the widget)."""
    value = prev.get(field, default) if isinstance(prev, dict) else default
    if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, type(default)):
        return default
    if options is not None and value not in options:
        return default
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return default
    return value


def remembered_number(widget: Callable, label: str, lo, hi, prev: dict, field: str, default, **kwargs):
    """``widget`` (a container's ``number_input``) from ``lo`` to ``hi``, at the form's ``field`` as last
    submitted (:func:`remembered`)."""
    return widget(label, lo, hi, remembered(prev, field, default, lo=lo, hi=hi), **kwargs)


def remembered_index(options: list, prev: dict, field: str, default) -> int:
    """The index among ``options`` of the form's ``field`` as last submitted (:func:`remembered`)."""
    return options.index(remembered(prev, field, default, options=options))


def sentence(text: str, end: str = "") -> str:
    """``text`` as the page shows it: a capital first letter (core's messages begin in lower case, as
    a line on stderr does) and ``end`` (e.g. ".") unless it ends in a stop already. A first word that
    is a name (a file, a path, an identifier: not all letters) is left as it is written."""
    first = text.split(" ", 1)[0].rstrip(":,;")
    if first.isalpha() and first.islower():
        text = text[0].upper() + text[1:]
    text = no_links(text)
    return text + end if end and not text.endswith((".", "!", "?")) else text


def code_span(text: str) -> str:
    """``text`` as one Markdown code span, whatever backticks it holds (a model card's command: a backtick in
    it ended the span, and the rest showed as Markdown of the card's own)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest else f"`{text}`"


def no_links(text: str) -> str:
    """``text`` for st.markdown with no link or image of its own: messages quote a file's words (a GeoJSON's
    names and properties, a GeoTIFF's band names, a file name), which as Markdown made a link or a remote image
    inside the app's own message box (``[Sign in](http://...)``, ``![](http://...)``, ``<http://...>``)."""
    return re.sub(r"<(?=[A-Za-z/!?])", r"\<", text.replace("](", "\\]("))


def plain(text: str) -> str:
    """``text`` for st.markdown as it is: its Markdown and LaTeX characters (``*``, ``_``, ``$``...)
    escaped, so that a file's own words (a model card's notes) show unchanged."""
    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|$~])", r"\\\1", text)


def anchor(name: str) -> None:
    """A place on the page that :data:`state.SCROLL_TO` = ``name`` brings into view on the next run
    (e.g. a training's progress at the top of the form whose button, far below, started it)."""
    from pages.components import state

    st.markdown(f'<div id="cropmap-anchor-{name}"></div>', unsafe_allow_html=True)
    if state.get(state.SCROLL_TO) == name:
        state.put(state.SCROLL_TO, None)
        import streamlit.components.v1 as components

        # Streamlit scrolls nothing itself; a zero-height frame of the same origin can scroll its page. Again
        # for 3 s where the place has left the view: the page still being drawn moved it off the screen after
        # the first scroll (once in CI, the training's progress stayed out of view)
        components.html("<script>var n = 0; function go() { var e = window.parent.document.getElementById("
                        + json.dumps(f"cropmap-anchor-{name}") + "); if (e) { var r = e.getBoundingClientRect(); "
                        "if (n == 0 || r.top < 0 || r.top > window.parent.innerHeight - 120) "
                        "{ e.scrollIntoView({block: 'start', behavior: 'instant'}); } } if (++n < 7) setTimeout(go, 500); } "
                        "go();</script>", height=0)


@contextmanager
def errors_shown(stop: bool = False, remember: Callable[[str], None] | None = None,
                 fix_at: tuple[str, str] | None = None) -> Iterator[None]:
    """Show a :class:`CropMapError` raised inside the block as ``st.error`` (its message only), and
    so a failure of the machine (no memory, a disk that cannot be written, Cloud Storage out of
    reach: :func:`core.errors.environment_error`). Anything else is a bug and is raised.

    With ``stop``, the page then ends (see :func:`stop`): for what the rest of the page needs; a failure
    that may pass (``retryable``: Earth Engine's quota, a server's or the network's moment) gets a Try
    again button (the page was a dead end: its message said to retry, its one link led back to Region).
    ``remember`` is given the shown text (to show it again on later runs). ``fix_at`` (page file,
    link label): a link under the error to the page where it is put right (e.g. a region too small
    for the model is redrawn on the Region page), so that a page that stops is no dead end.

    What the block shows (a cached read's spinner, the error) stays in one container, one element of
    the page however many it holds: a spinner shown on one run and not on the next (the read then
    cached) moved the elements after it, and a map moved in the page is a new map to the browser.
    """
    try:
        with st.container():
            yield
    except Exception as err:  # noqa: BLE001 - only the project's and the machine's failures are shown; bugs re-raised
        text = str(err) if isinstance(err, CropMapError) else environment_error(err, "use a smaller region")
        if text is None:
            raise
        shown = sentence(text)
        st.error(shown, icon=":material/error:")
        from core.ee.errors import EENotConfiguredError  # (no ee import)

        if isinstance(err, EENotConfiguredError):  # credentials refused: the sidebar no longer says "ready"
            from pages.components import cached

            cached.ee_status.clear()
        if stop and getattr(err, "retryable", False):  # (quota, a server's or the network's moment: it says to retry)
            st.button("Try again", key="try_again", icon=":material/refresh:")  # (its press runs the page again)
        if fix_at is not None:
            st.page_link(fix_at[0], label=fix_at[1], icon=":material/arrow_back:")
        if remember is not None:
            remember(shown)
        if stop:
            raise PageStopped from None


class PageStopped(Exception):
    """Raised to end a page early (it has said why); app.py catches it and still draws the sidebar.

    Not ``st.stop()``: after that, every further Streamlit call of the run stops too, and the
    sidebar, drawn after the page, would stay empty.
    """


def stop() -> None:
    """End the page here (see :class:`PageStopped`)."""
    raise PageStopped


def stop_with(message: str, page: str | None = None, label: str = "Go there") -> None:
    """Show why the page cannot go on (and a link to the page that fixes it), then end the page."""
    st.info(message, icon=":material/info:")
    if page:
        st.page_link(page, label=label)
    stop()


@contextmanager
def progress_bar(text: str) -> Iterator[object]:
    """An ``st.progress`` bar for the block, removed when the block ends, also by an error (no bar
    left standing above the error message)."""
    bar = st.progress(0.0, text=text)
    try:
        yield bar
    finally:
        bar.empty()


def progress_callback(bar, what: str) -> "callable":
    """A ``progress(done, total)`` that moves an ``st.progress`` bar, saying what it counts
    (``what``: e.g. "Predicting tiles")."""

    def update(done: int, total: int, *_: object) -> None:
        frac = 0.0 if not total else min(max(done / total, 0.0), 1.0)
        bar.progress(frac, text=f"{what}: {done:,} of {total:,}")

    return update


def when(iso: str) -> str:
    """An ISO 8601 time as '2026-11-25 15:22 UTC' (as given when it is not ISO 8601, '' for '')."""
    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if t.utcoffset() is not None:
        return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return t.strftime("%Y-%m-%d %H:%M")


def cut_long_words(text: str, longest: int = 28) -> str:
    """``text`` with each word (run of characters without spaces) longer than ``longest`` cut in the middle
    ("00002806639B…_B04_B08.tif"): a file name in the narrow sidebar was broken mid-word over two lines."""
    keep = (longest - 1) // 2

    def cut(word: str) -> str:
        # the punctuation around a name kept whole (the name shows the same in "Source: x" and "x:")
        core = word.strip("()[],:;.\"'")
        if len(core) <= longest:
            return word
        i = word.index(core)
        return f"{word[:i]}{core[:keep]}…{core[-keep:]}{word[i + len(core):]}"

    return " ".join(cut(w) for w in text.split(" "))
