"""Rules 4 and 5 on the document as the server sent it, when the page itself cannot be read.

The access check reads the rendered page (``SIGNALS_JS``, in an isolated world). A page
that never lets it run — a script that hogs the browser, a renderer that hangs — is
judged here instead, on the HTML bytes the recorder kept: its password forms, challenge
widgets and interstitial markers, and how much text stands beside them. Without a
rendering nothing is known of what is hidden, so every form counts as shown: this errs
towards refusing, never towards capturing a wall.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from osint_capture.lawful.rules import BarrierSeen, PageSignals

__all__ = ["signals_from_document"]

# What is read of the document: enough for any sign-in page, bounded for any file.
_READ_LIMIT = 1 << 20
_CHROME_TAGS = {"header", "nav", "aside", "footer"}
_SILENT_TAGS = {"script", "style", "template", "noscript", "head", "title"}
_WIDGET_CLASSES = {"g-recaptcha": "reCAPTCHA", "h-captcha": "hCaptcha", "cf-turnstile": "Turnstile"}
_INTERSTITIAL_IDS = (
    "challenge-form",
    "challenge-stage",
    "challenge-running",
    "cf-challenge-running",
    "cf-please-wait",
)
_VOID = {"input", "br", "img", "meta", "link", "hr", "source", "wbr", "area", "col", "embed"}


def signals_from_document(
    body_path: Path | None, *, url: str, status: int, redirect_chain: tuple[str, ...]
) -> PageSignals:
    """The signals of the document's HTML (the first MiB of it)."""
    reader = _Reader()
    if body_path is not None and body_path.exists():
        with open(body_path, "rb") as fh:
            reader.feed(fh.read(_READ_LIMIT).decode("utf-8", errors="replace"))
        reader.close()
    own = reader.own_text()
    return PageSignals(
        url=url,
        title=reader.title.strip(),
        status=status,
        redirect_chain=redirect_chain,
        password_forms=tuple(
            BarrierSeen("password form", password_fields=n) for n in reader.password_forms
        ),
        challenge_widgets=tuple(BarrierSeen(kind) for kind in reader.widgets),
        interstitial_markers=tuple(reader.markers),
        visible_text_length=len(" ".join(reader.text).strip()),
        own_text_length=len(own),
        text_beside_password_forms=len(reader.own_text(outside_password_forms=True)),
        text_beside_challenges=len(reader.own_text(outside_widget_forms=True)),
        text_sample=" ".join(reader.text)[:3000],
    )


class _Reader(HTMLParser):
    """Text and barriers of an HTML document, with where each piece of text stood."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._open: list[str] = []
        self._forms_open: list[int] = []  # numbers of the forms open, innermost last
        self._form_fields: dict[int, int] = {}  # form number -> its password fields
        self._widget_forms: set[int] = set()
        self._forms = 0
        self._chunks: list[tuple[str, bool, tuple[int, ...]]] = []  # text, chrome, forms
        self.title = ""
        self.text: list[str] = []
        self.password_forms: list[int] = []
        self.widgets: list[str] = []
        self.markers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._forms += 1
            self._forms_open.append(self._forms)
            self._form_fields[self._forms] = 0
        if tag == "input" and values.get("type", "").lower() == "password":
            if self._forms_open:
                self._form_fields[self._forms_open[-1]] += 1
            else:
                self.password_forms.append(1)
        classes = set(values.get("class", "").split())
        for css, kind in _WIDGET_CLASSES.items():
            if css in classes and values.get("data-size", "").lower() != "invisible":
                self.widgets.append(kind)
                if self._forms_open:
                    self._widget_forms.add(self._forms_open[-1])
        if values.get("id", "") in _INTERSTITIAL_IDS:
            self.markers.append(values["id"])
        if tag not in _VOID:
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._forms_open:
            fields = self._form_fields[self._forms_open.pop()]
            if fields:
                self.password_forms.append(fields)
        if tag in self._open:
            while self._open and self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if "title" in self._open:
            self.title += data
            return
        if _SILENT_TAGS & set(self._open) or not data.strip():
            return
        text = " ".join(data.split())
        self.text.append(text)
        in_chrome = bool(_CHROME_TAGS & set(self._open))
        self._chunks.append((text, in_chrome, tuple(self._forms_open)))

    def own_text(
        self, *, outside_password_forms: bool = False, outside_widget_forms: bool = False
    ) -> str:
        # Decided once the whole document is read: a label may come before its field.
        password = {n for n, fields in self._form_fields.items() if fields}
        kept = [
            text
            for text, chrome, forms in self._chunks
            if not chrome
            and not (outside_password_forms and password.intersection(forms))
            and not (outside_widget_forms and self._widget_forms.intersection(forms))
        ]
        return " ".join(kept).strip()
