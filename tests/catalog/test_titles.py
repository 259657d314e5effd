"""catalog.titles: MovieLens titles in display form, and the words search compares (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.titles import ARTICLES, display_title, search_words, title_search_text

# Real MovieLens titles (year already split off), from ML-100K and ML-latest.
MOVIELENS_TITLES = [
    ("Shining, The", "The Shining"),
    ("Usual Suspects, The", "The Usual Suspects"),
    ("Amants du Pont-Neuf, Les", "Les Amants du Pont-Neuf"),
    ("Misérables, Les", "Les Misérables"),
    ("Postino, Il", "Il Postino"),
    ("Boot, Das", "Das Boot"),
    ("Bewegte Mann, Der", "Der Bewegte Mann"),
    ("Enfer, L'", "L'Enfer"),
    ("Life Less Ordinary, A", "A Life Less Ordinary"),
    ("Dolce Vita, La", "La Dolce Vita"),
    ("Laberinto del fauno, El", "El Laberinto del fauno"),
    ("Vitelloni, I", "I Vitelloni"),
    ("Auto da Compadecida, O", "O Auto da Compadecida"),
    ("Godfather: Part II, The", "The Godfather: Part II"),
    # an article inside the alternative title, and in both
    ("City of Lost Children, The (Cité des enfants perdus, La)", "The City of Lost Children (La Cité des enfants perdus)"),
    ("Postman, The (Postino, Il)", "The Postman (Il Postino)"),
    ("Contempt (Mépris, Le)", "Contempt (Le Mépris)"),
    ("Star Maker, The (Uomo delle stelle, L')", "The Star Maker (L'Uomo delle stelle)"),
    ("Tin Drum, The (Blechtrommel, Die)", "The Tin Drum (Die Blechtrommel)"),
    ("Double vie de Véronique, La (Double Life of Veronique, The)", "La Double vie de Véronique (The Double Life of Veronique)"),
    ("Fille seule, La (A Single Girl)", "La Fille seule (A Single Girl)"),
    ("Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il)", "The Good, the Bad and the Ugly (Il Buono, il brutto, il cattivo)"),
    ("Shining, The (a.k.a. Overlook Hotel, The)", "The Shining (a.k.a. The Overlook Hotel)"),
]  # fmt: skip

# Commas that are not a moved article, and titles already in display form.
UNCHANGED = [
    "Twelve Monkeys (a.k.a. 12 Monkeys)",
    "I, Worst of All (Yo, la peor de todas)",
    "Maybe, Maybe Not",
    "Die, Mommie, Die!",
    "Paris, Texas",
    "Run, Lola, Run (Lola rennt)",
    "Santa with Muscles",
    "(500) Days of Summer",
    "The Shining",
    "Toy Story",
]


@pytest.mark.parametrize(("raw", "expected"), MOVIELENS_TITLES)
def test_it_moves_movielens_articles_to_the_front(raw: str, expected: str) -> None:
    assert display_title(raw) == expected


@pytest.mark.parametrize("title", UNCHANGED)
def test_it_leaves_other_commas_alone(title: str) -> None:
    assert display_title(title) == title


def test_the_article_only_moves_when_it_ends_the_title_capitalized() -> None:
    assert display_title("Shining, the") == "Shining, the"
    assert display_title("Yo, la peor de todas") == "Yo, la peor de todas"
    assert display_title(", The") == ", The"  # nothing to put it in front of


def test_a_title_that_would_move_again_is_kept_as_it_is() -> None:
    assert display_title("Hello, A, The") == "Hello, A, The"
    assert display_title("Thing (Chose, La), The") == "Thing (Chose, La), The"


def test_unbalanced_parentheses_are_kept_as_they_are() -> None:
    assert display_title("Shining, The (Director's cut") == "Shining, The (Director's cut"
    assert display_title("Shining, The)") == "Shining, The)"


def test_surrounding_spaces_are_trimmed() -> None:
    assert display_title("  Shining, The ") == "The Shining"


_WORDS = st.lists(st.sampled_from([*"ab ,'.()", *sorted(ARTICLES)]), max_size=6).map("".join)
_ARTICLE = st.sampled_from(["", *sorted(ARTICLES), "the"])


@st.composite
def movielens_like_titles(draw: st.DrawFn) -> str:
    """``head[, Article][ ([a.k.a. ]alt[, Article])]`` with odd characters mixed in."""
    title = draw(_WORDS) + (f", {article}" if (article := draw(_ARTICLE)) else "")
    if draw(st.booleans()):
        alternative = draw(st.sampled_from(["", "a.k.a. "])) + draw(_WORDS)
        if article := draw(_ARTICLE):
            alternative += f", {article}"
        title += f" ({alternative})"
    return title


@given(movielens_like_titles())
def test_display_title_is_idempotent(raw: str) -> None:
    """Re-imports and the data migration apply it to stored titles again: nothing may change."""
    once = display_title(raw)
    assert display_title(once) == once


@given(movielens_like_titles() | st.text(max_size=60))
def test_display_title_only_reorders(raw: str) -> None:
    """Nothing but spaces and the moved articles' commas is lost, and the title never grows
    (so it always fits the column)."""
    shown = display_title(raw)
    assert len(shown) <= len(raw)
    kept = [ch for ch in shown if not ch.isspace() and ch != ","]
    assert sorted(kept) == sorted(ch for ch in raw if not ch.isspace() and ch != ",")


# ---- search words ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("The Shining", ["the", "shining"]),
        ("SHINING, the", ["shining", "the"]),
        ("Les Misérables", ["les", "miserables"]),
        ("Amélie", ["amelie"]),
        ("Smilla's Sense of Snow", ["smillas", "sense", "of", "snow"]),
        ("Schindler’s List", ["schindlers", "list"]),  # typographic apostrophe
        ("L.A. Confidential", ["la", "confidential"]),
        ("Dr. Strangelove or: How I Learned", ["dr", "strangelove", "or", "how", "i", "learned"]),
        ("The Truth About Cats & Dogs", ["the", "truth", "about", "cats", "and", "dogs"]),
        ("Face/Off", ["face", "off"]),
        ("Ørnen, Kærlighed", ["ornen", "kaerlighed"]),
        ("  spaced\tout\n", ["spaced", "out"]),
        ("!!! ... ???", []),
    ],
)
def test_search_words_ignore_case_accents_and_punctuation(text: str, words: list[str]) -> None:
    assert search_words(text) == words


@pytest.mark.parametrize(
    ("title", "also_found_by"),
    [
        ("Twelve Monkeys", ["12"]),
        ("12 Angry Men", ["twelve"]),
        ("The Godfather: Part II", ["2", "two"]),
        ("Star Wars: Episode IV - A New Hope", ["4", "four"]),
        ("Seven", ["7", "vii"]),
        ("Spider-Man", ["spiderman"]),
    ],
)
def test_the_stored_search_text_has_every_spelling_of_small_numbers(
    title: str, also_found_by: list[str]
) -> None:
    stored = title_search_text(title).split()
    assert stored[: len(search_words(title))] == search_words(title)
    for word in also_found_by:
        assert word in stored


def test_numbers_outside_zero_to_twenty_and_the_letter_i_are_left_as_written() -> None:
    assert title_search_text("Apollo 13") == "apollo 13 thirteen xiii"
    assert title_search_text("2001: A Space Odyssey") == "2001 a space odyssey"
    assert title_search_text("I Shot Andy Warhol") == "i shot andy warhol"


def test_search_text_of_a_display_title_and_its_movielens_form_have_the_same_words() -> None:
    """Word order does not matter to the search, so storing one order is enough."""
    raw, shown = (
        "City of Lost Children, The (Cité des enfants perdus, La)",
        display_title("City of Lost Children, The (Cité des enfants perdus, La)"),
    )
    assert sorted(title_search_text(raw).split()) == sorted(title_search_text(shown).split())
