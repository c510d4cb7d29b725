"""The labs' texts, one catalogue per language (`en.py`, `uk.py`: the same keys). Code names a text by its key;
no text is written anywhere else."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

LANGUAGES = ("en", "uk")
DEFAULT = "en"
ENVIRONMENT = "LAB_LANG"


class Catalogue:
    """The texts of one language; `catalogue("key", field=value)` fills the text's {field}s."""

    def __init__(self, language: str):
        if language not in LANGUAGES:
            raise ValueError(f"no catalogue for language {language!r}: {', '.join(LANGUAGES)}")
        self.language = language
        self.texts: Mapping[str, str] = importlib.import_module(f"{__name__}.{language}").TEXTS

    def __call__(self, key: str, **fields: object) -> str:
        return self.texts[key].format(**fields) if fields else self.texts[key]

    def has(self, key: str) -> bool:
        return key in self.texts


def language(option: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """The option if given, else LAB_LANG, else English."""
    return option or environ.get(ENVIRONMENT) or DEFAULT


def catalogue(option: str | None = None, environ: Mapping[str, str] = os.environ) -> Catalogue:
    return Catalogue(language(option, environ))
