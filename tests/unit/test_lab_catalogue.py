"""The labs' catalogues: English and Ukrainian have the same keys and the same {fields}, and every key the code
names exists in both."""

import ast
import re
import string
from pathlib import Path

import pytest

from labctl.deps import ROOT
from labctl.lab.catalog import LABS
from labctl.lab.i18n import LANGUAGES, Catalogue, catalogue

KEY = re.compile(r"^(col|word|run|mark|error|expect|seen|fact|report|experiment)\.[a-z_]+$")
CODE = [*sorted((ROOT / "scripts" / "labctl" / "lab").glob("*.py")), ROOT / "scripts" / "labctl" / "experiment.py"]


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def keys_named_in(path: Path) -> set[str]:
    """Every string constant of the module shaped like a catalogue key."""
    tree = ast.parse(path.read_text())
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value)}


def test_the_two_catalogues_have_the_same_keys():
    english, ukrainian = Catalogue("en").texts, Catalogue("uk").texts
    assert set(english) - set(ukrainian) == set()
    assert set(ukrainian) - set(english) == set()


def test_each_text_has_the_same_fields_in_both_languages():
    english, ukrainian = Catalogue("en").texts, Catalogue("uk").texts
    differ = {key: (fields(english[key]), fields(ukrainian[key])) for key in english
              if fields(english[key]) != fields(ukrainian[key])}
    assert differ == {}


def test_the_ukrainian_texts_are_ukrainian():
    ukrainian = Catalogue("uk").texts
    prose = [key for key in ukrainian if key.endswith((".why", ".title", ".intro"))]
    assert prose, "no prose in the catalogue"
    not_cyrillic = [key for key in prose if not re.search("[а-щьюяєіїґ]", ukrainian[key])]
    assert not_cyrillic == []


@pytest.mark.parametrize("path", CODE, ids=lambda p: p.name)
def test_every_key_the_code_names_exists(path):
    named = keys_named_in(path)
    for language in LANGUAGES:
        assert named - set(Catalogue(language).texts) == set(), language


def test_every_lab_and_step_has_its_texts():
    needed = set()
    for lab in LABS.values():
        needed |= {f"{lab.key}.title", f"{lab.key}.intro"}
        needed |= {lab.text_key(step, part) for step in lab.steps for part in ("title", "why", "look")}
    for language in LANGUAGES:
        assert needed - set(Catalogue(language).texts) == set(), language


def test_the_language_comes_from_the_option_then_lab_lang_then_english():
    assert catalogue("uk", {}).language == "uk"
    assert catalogue(None, {"LAB_LANG": "uk"}).language == "uk"
    assert catalogue("en", {"LAB_LANG": "uk"}).language == "en"
    assert catalogue(None, {}).language == "en"
    with pytest.raises(ValueError, match="no catalogue"):
        catalogue("fr", {})
