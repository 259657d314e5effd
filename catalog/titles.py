"""Titles as people write them, and the words search matches them by. Pure functions, no Django.

MovieLens files move a leading article to the end, as library catalogues do:
``"Shining, The"``, ``"Amants du Pont-Neuf, Les"``, also inside an alternative
title: ``"Postman, The (Postino, Il)"``. :func:`display_title` puts the article
back in front; the importer stores that form.

:func:`search_words` is the one normalization of search: the stored
``Item.search_text`` (:func:`title_search_text`) and every query go through it,
so case, accents and punctuation never decide whether a title is found.
"""

from __future__ import annotations

import re
import unicodedata

#: Leading articles as MovieLens writes them at the end of a title (", The"), for the
#: languages of its titles: English, French, Spanish, Italian, German, Portuguese.
#: Only the capitalized forms: MovieLens capitalizes a moved article, and a lower-case
#: word after a comma is part of the title ("I, Worst of All (Yo, la peor de todas)").
ARTICLES = frozenset(
    {
        "The", "A", "An",                               # English
        "Le", "La", "Les", "L'", "Un", "Une",           # French
        "El", "Los", "Las", "Una",                      # Spanish (and La, Un)
        "Il", "Lo", "I", "Gli", "Uno", "Un'",           # Italian (and La, Le, L', Un, Una)
        "Der", "Die", "Das", "Ein", "Eine",             # German
        "O", "Os", "As", "Um", "Uma",                   # Portuguese (and A)
    }
)  # fmt: skip

#: The prefix MovieLens gives some alternative titles: "Twelve Monkeys (a.k.a. 12 Monkeys)".
_AKA = "a.k.a. "

_APOSTROPHES = "'’‘`´ʼ"


def display_title(raw: str) -> str:
    """``raw`` with each trailing article moved to the front, in the main title and in
    each trailing parenthesized alternative title.

    >>> display_title("City of Lost Children, The (Cité des enfants perdus, La)")
    'The City of Lost Children (La Cité des enfants perdus)'
    >>> display_title("Enfer, L'")
    "L'Enfer"

    Titles without a moved article come back unchanged, and applying it twice is the
    same as once (re-imports and the data migration rely on that): a title whose
    moved form would move again, such as ``"X, A, The"`` or ``"X (Y, Le), The"``,
    is ambiguous and kept as it is. The year must already be split off
    (``split_title_year``).
    """
    title = raw.strip()
    moved = _articles_first(title)
    return moved if _articles_first(moved) == moved else title


def _articles_first(title: str) -> str:
    main, alternatives = _split_alternatives(title)
    moved_main = _article_first(main)
    moved = [(gap, _alternative_article_first(alt)) for gap, alt in alternatives]
    return moved_main + "".join(f"{gap}({alt})" for gap, alt in moved)


def _split_alternatives(title: str) -> tuple[str, list[tuple[str, str]]]:
    """``"A, The (B, Le) (C)"`` -> ``("A, The", [(" ", "B, Le"), (" ", "C")])``: the
    balanced parenthesized groups at the end, peeled off right to left, each with the
    space before it (kept as it was)."""
    alternatives: list[tuple[str, str]] = []
    rest = title
    while rest.endswith(")"):
        depth = 0
        opening = None
        for position in range(len(rest) - 1, -1, -1):
            if rest[position] == ")":
                depth += 1
            elif rest[position] == "(":
                depth -= 1
                if depth == 0:
                    opening = position
                    break
        # Unbalanced, or the whole title is in parentheses: leave the rest as it is.
        if opening is None or not rest[:opening].strip():
            break
        before = rest[:opening].rstrip()
        alternatives.insert(0, (rest[len(before) : opening], rest[opening + 1 : -1]))
        rest = before
    return rest, alternatives


def _article_first(text: str) -> str:
    head, comma, article = text.rpartition(", ")
    if not comma or not head.strip() or article not in ARTICLES:
        return text
    head = head.strip()
    # Elided articles (L', Un') join the next word: "L'Enfer", not "L' Enfer".
    return f"{article}{head}" if article.endswith("'") else f"{article} {head}"


def _alternative_article_first(text: str) -> str:
    if text.startswith(_AKA):
        return _AKA + _article_first(text[len(_AKA) :])
    return _article_first(text)


# ---- search -------------------------------------------------------------------------

#: Letters NFKD does not decompose into a base letter and a mark.
_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
#: Apostrophes and full stops join what they separate ("schindler's" -> "schindlers",
#: "l.a." -> "la"), as people type those words without them; the rest separates words.
_JOINERS = re.compile(f"[{_APOSTROPHES}.]")
_SEPARATORS = re.compile(r"[\W_]+")
_HYPHENATED = re.compile(r"\w+(?:-\w+)+")

# fmt: off
_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
_ROMAN_FROM_TWO = (
    "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x",
    "xi", "xii", "xiii", "xiv", "xv", "xvi", "xvii", "xviii", "xix", "xx",
)
# fmt: on


def _number_spellings() -> dict[str, tuple[str, ...]]:
    spellings: dict[str, tuple[str, ...]] = {}
    for value, word in enumerate(_NUMBER_WORDS):
        forms = (str(value), word, *([_ROMAN_FROM_TWO[value - 2]] if value >= 2 else []))
        spellings.update(dict.fromkeys(forms, forms))
    return spellings


#: Every spelling of a number from 0 to 20 -> all of its spellings: digits, English word
#: and Roman numeral from II ("i" is also a pronoun and an Italian article: it stays a word).
NUMBER_SPELLINGS = _number_spellings()


def _folded(text: str) -> str:
    """Lower case without accents, with apostrophes and full stops dropped."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _JOINERS.sub("", stripped.casefold().translate(_LETTERS))


def search_words(text: str) -> list[str]:
    """The words of ``text`` as search compares them: lower case, accents stripped
    (Unicode NFKD), apostrophes and full stops dropped, ``&`` read as "and", any other
    punctuation a word break.

    >>> search_words("Schindler's List & L.A. Confidential: Amélie")
    ['schindlers', 'list', 'and', 'la', 'confidential', 'amelie']
    """
    return [word for word in _SEPARATORS.split(_folded(text).replace("&", " and ")) if word]


def title_search_text(title: str) -> str:
    """What ``Item.search_text`` stores for ``title``: its :func:`search_words`, then the
    other spellings of every number from 0 to 20 in it ("Twelve Monkeys" is found by
    "12 monkeys", "The Godfather: Part II" by "godfather 2") and hyphenated words written
    together ("Spider-Man" by "spiderman").

    Matching every query word anywhere in this text makes word order irrelevant, so
    "shining the" finds "The Shining" without storing MovieLens's order as well.
    """
    words = search_words(title)
    extra: list[str] = []
    for word in words:
        extra.extend(NUMBER_SPELLINGS.get(word, ()))
    extra.extend(compound.replace("-", "") for compound in _HYPHENATED.findall(_folded(title)))
    seen = set(words)
    for word in extra:
        if word not in seen:
            seen.add(word)
            words.append(word)
    return " ".join(words)
