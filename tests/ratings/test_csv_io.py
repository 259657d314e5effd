"""ratings.csv_io: the ratings CSV writer, its reader (no database) and the import."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from catalog.models import Item
from ratings.csv_io import (
    COLUMNS,
    CsvRating,
    LineError,
    ratings_csv_import,
    ratings_csv_parse,
    ratings_csv_write,
)
from ratings.models import Rating, UserRatingStamp
from ratings.selectors import rating_export_rows
from ratings.services import rating_upsert
from tests.factories import ItemFactory

HEADER = "item_id,title,year,score,rated_at\n"


def parse(text: str | bytes, *, max_rows: int = 100, max_bytes: int = 100_000):  # type: ignore[no-untyped-def]
    data = text.encode() if isinstance(text, str) else text
    return ratings_csv_parse(data=data, max_rows=max_rows, max_bytes=max_bytes)


def messages(text: str | bytes, **limits: int) -> list[str]:
    return [str(error) for error in parse(text, **limits).errors]


# ---- the writer -------------------------------------------------------------


def test_the_writer_puts_the_header_first_and_one_line_per_rating() -> None:
    rated = datetime(2025, 5, 1, 20, 2, 11, 93000, tzinfo=UTC)
    text = "".join(
        ratings_csv_write(rows=[(1, "Toy Story", 1995, 4.5, rated), (7, "Untitled, The", None, 3.0, rated)])
    )
    assert text.splitlines() == [
        "item_id,title,year,score,rated_at",
        "1,Toy Story,1995,4.5,2025-05-01T20:02:11Z",
        '7,"Untitled, The",,3.0,2025-05-01T20:02:11Z',
    ]


def test_the_writer_turns_rated_at_into_utc() -> None:
    paris = datetime(2025, 5, 2, 0, 2, 11, tzinfo=ZoneInfo("Europe/Paris"))  # UTC+2 in May
    (text,) = ratings_csv_write(rows=[(1, "Heat", 1995, 5.0, paris)])
    assert text.splitlines()[1].endswith(",2025-05-01T22:02:11Z")


def test_the_writer_yields_chunks_as_it_reads_rows() -> None:
    rated = datetime(2025, 1, 1, tzinfo=UTC)
    read: list[int] = []

    def rows():  # type: ignore[no-untyped-def]
        for n in range(1, 1201):
            read.append(n)
            yield (n, f"Film {n}", 2000, 4.0, rated)

    chunks = ratings_csv_write(rows=rows())
    first = next(chunks)
    # The first chunk is out before most rows were read: nothing is held in full.
    assert first.startswith(HEADER.replace("\n", "\r\n"))
    assert len(read) < 1200
    assert sum(chunk.count("\n") for chunk in [first, *chunks]) == 1201


def test_what_the_writer_writes_the_reader_reads() -> None:
    rated = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [(3, 'A "quoted", title', 1999, 0.5, rated), (4, "Amélie", 2001, 5.0, rated)]
    parsed = parse("".join(ratings_csv_write(rows=rows)))
    assert parsed.errors == []
    assert parsed.rows == [CsvRating(line=2, item_id=3, score=0.5), CsvRating(line=3, item_id=4, score=5.0)]


# ---- the reader: what it accepts ----------------------------------------------


def test_the_reader_finds_columns_by_name_in_any_order_and_ignores_the_rest() -> None:
    parsed = parse("score, Item_ID ,rated_at\n4.5,12,whenever\n2,13,\n")
    assert parsed.errors == []
    assert parsed.rows == [CsvRating(2, 12, 4.5), CsvRating(3, 13, 2.0)]


def test_the_reader_accepts_a_byte_order_mark_crlf_and_blank_lines() -> None:
    parsed = parse(b"\xef\xbb\xbfitem_id,score\r\n\r\n1,4.5\r\n\r\n2,3.0\r\n")
    assert parsed.errors == []
    assert parsed.rows == [CsvRating(3, 1, 4.5), CsvRating(5, 2, 3.0)]


def test_a_title_spanning_lines_does_not_shift_later_line_numbers() -> None:
    parsed = parse(HEADER + '1,"Two\nlines",1999,4.0,\n2,Heat,1995,6.0,\n')
    assert [str(error) for error in parsed.errors] == ["Line 4: score 6.0 is outside 0.5–5.0."]


# ---- the reader: what it refuses, by line and column ----------------------------


def test_it_rejects_a_score_above_five_and_one_between_half_stars() -> None:
    errors = parse(HEADER + "1,A,2000,5.5,\n2,B,2000,3.3,\n3,C,2000,0,\n").errors
    assert [(e.line, e.column) for e in errors] == [(2, "score"), (3, "score"), (4, "score")]
    assert [str(e) for e in errors] == [
        "Line 2: score 5.5 is outside 0.5–5.0.",
        "Line 3: score 3.3 is not a multiple of 0.5.",
        "Line 4: score 0.0 is outside 0.5–5.0.",
    ]


def test_it_rejects_malformed_numbers() -> None:
    assert messages('item_id,score\nabc,4\n7,\n,4\n8,four\n9,"4,5"\n10,nan\n') == [
        "Line 2: item_id 'abc' is not a whole number.",
        "Line 3: score is empty.",
        "Line 4: item_id is empty.",
        "Line 5: score 'four' is not a number.",
        "Line 6: score '4,5' is not a number (use a decimal point: 4.5).",
        "Line 7: score nan is outside 0.5–5.0.",
    ]


def test_it_names_both_lines_of_a_duplicate() -> None:
    errors = parse("item_id,score\n5,4\n6,3\n5,2\n5,4\n").errors
    assert [(e.line, e.column, e.message) for e in errors] == [
        (4, "item_id", "item 5 is already on line 2."),
        (5, "item_id", "item 5 is already on line 2."),
    ]


def test_it_rejects_a_row_with_the_wrong_number_of_fields() -> None:
    assert messages("item_id,score\n1,4,extra\n2\n") == [
        "Line 2: expected 2 fields as in the header, found 3.",
        "Line 3: expected 2 fields as in the header, found 1.",
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1,4.5\n", "missing: item_id, score"),
        ("item_id,rating\n", "unknown column 'rating'"),
        ("item,score\n", "missing: item_id"),
        ("item_id,score,score\n", "the column 'score' appears twice"),
    ],
)
def test_it_rejects_a_wrong_header(header: str, expected: str) -> None:
    errors = parse(header + "1,4.5,3\n").errors
    assert errors and all(error.line == 1 for error in errors)
    assert any(expected in error.message for error in errors), errors


def test_it_rejects_text_that_is_not_utf8_naming_the_line() -> None:
    errors = parse(HEADER.encode() + b"1,Am\xe9lie,2001,4.5,\n").errors
    assert [(e.line, e.message) for e in errors] == [
        (2, "this line is not UTF-8 text: save the file as “CSV UTF-8” and try again.")
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n"])
def test_it_rejects_an_empty_file(text: str) -> None:
    assert messages(text) == ["The file is empty."]


def test_it_rejects_a_header_without_rows() -> None:
    assert messages(HEADER) == ["The file has a header but no ratings."]


def test_it_rejects_a_file_over_the_size_limit() -> None:
    data = (HEADER + "".join(f"{n},Heat,1995,4.0,\n" for n in range(1, 11))).encode()
    assert parse(data, max_bytes=len(data)).errors == []
    assert messages(data, max_bytes=len(data) - 1) == [f"The file is larger than {len(data) - 1:,} bytes."]
    assert messages(data, max_bytes=2_000_000) == []
    assert messages(b"x" * 2_000_001, max_bytes=2_000_000) == ["The file is larger than 2 MB."]
    assert messages(b"x" * 2_500_001, max_bytes=2_500_000) == ["The file is larger than 2.5 MB."]


def test_it_rejects_more_rows_than_the_limit() -> None:
    text = "item_id,score\n" + "".join(f"{n},4\n" for n in range(1, 5))
    assert parse(text, max_rows=4).errors == []
    assert messages(text + "5,4\n", max_rows=4) == [
        "The file has more than 4 ratings (line 6 is one too many); import at most 4 at a time."
    ]


def test_a_line_error_reads_as_a_sentence() -> None:
    assert str(LineError(3, "score", "score is empty.")) == "Line 3: score is empty."
    assert str(LineError(None, None, "The file is empty.")) == "The file is empty."


# ---- the import (database) ----------------------------------------------------------


@pytest.fixture
def films(db):  # type: ignore[no-untyped-def]
    return [
        ItemFactory(title=title, year=year) for title, year in [("Heat", 1995), ("Alien", 1979), ("Up", 2009)]
    ]


def upload(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def scores(user) -> dict[int, float]:  # type: ignore[no-untyped-def]
    return dict(Rating.objects.filter(user=user).values_list("item_id", "score"))


def test_an_import_creates_and_changes_ratings_and_counts_them(alice, films) -> None:  # type: ignore[no-untyped-def]
    heat, alien, up = films
    rating_upsert(user=alice, item=heat, score=2.0)
    rating_upsert(user=alice, item=alien, score=4.0)
    result = ratings_csv_import(
        user=alice, file=upload(f"item_id,score\n{heat.pk},3.5\n{alien.pk},4.0\n{up.pk},5\n"), max_rows=10
    )
    assert (result.errors, result.rows, result.created, result.changed) == ([], 3, 1, 1)
    assert scores(alice) == {heat.pk: 3.5, alien.pk: 4.0, up.pk: 5.0}
    heat.refresh_from_db()
    assert (heat.rating_count, heat.rating_sum) == (1, 3.5)  # aggregates kept in step by the service


def test_an_import_with_any_bad_row_writes_nothing_and_lists_every_problem(alice, films) -> None:  # type: ignore[no-untyped-def]
    heat, alien, _ = films
    rating_upsert(user=alice, item=heat, score=2.0)
    missing = max(item.pk for item in films) + 100
    text = f"item_id,score\n{heat.pk},5\n{missing},4\n{alien.pk},7\n99999999999999999999999,3\n"
    result = ratings_csv_import(user=alice, file=upload(text), max_rows=10)
    assert [str(error) for error in result.errors] == [
        f"Line 3: no item with id {missing}.",
        "Line 4: score 7.0 is outside 0.5–5.0.",
        "Line 5: no item with id 99999999999999999999999.",
    ]
    assert [error.column for error in result.errors] == ["item_id", "score", "item_id"]
    assert scores(alice) == {heat.pk: 2.0}
    assert (result.rows, result.created, result.changed) == (0, 0, 0)


def test_an_import_reads_no_more_than_the_size_limit(alice, films) -> None:  # type: ignore[no-untyped-def]
    class Endless(io.RawIOBase):
        asked: list[int] = []

        def read(self, size: int = -1) -> bytes:
            self.asked.append(size)
            return b"x" * size

    result = ratings_csv_import(user=alice, file=Endless(), max_rows=10)  # type: ignore[arg-type]
    assert Endless.asked == [10 * 200 + 1]
    assert [str(error) for error in result.errors] == ["The file is larger than 2,000 bytes."]


def test_exporting_then_importing_changes_nothing(alice, bob, films) -> None:  # type: ignore[no-untyped-def]
    heat, alien, up = films
    for item, score in [(heat, 4.5), (alien, 0.5), (up, 3.0)]:
        rating_upsert(user=alice, item=item, score=score)
    rating_upsert(user=bob, item=heat, score=1.0)
    before = list(
        Rating.objects.filter(user=alice).order_by("item_id").values_list("item_id", "score", "updated_at")
    )
    stamp = UserRatingStamp.objects.get(user=alice).changed_at
    aggregates = list(Item.objects.order_by("pk").values_list("rating_count", "rating_sum"))

    exported = "".join(ratings_csv_write(rows=rating_export_rows(user=alice)))
    result = ratings_csv_import(user=alice, file=upload(exported), max_rows=10)

    assert (result.errors, result.rows, result.created, result.changed) == ([], 3, 0, 0)
    after = list(
        Rating.objects.filter(user=alice).order_by("item_id").values_list("item_id", "score", "updated_at")
    )
    assert after == before  # not even "rated at" moves
    assert UserRatingStamp.objects.get(user=alice).changed_at == stamp  # no write at all, no fold-in
    assert list(Item.objects.order_by("pk").values_list("rating_count", "rating_sum")) == aggregates


def test_an_export_imported_into_another_account_copies_the_scores(alice, charlie, films) -> None:  # type: ignore[no-untyped-def]
    heat, alien, _ = films
    rating_upsert(user=alice, item=heat, score=4.5)
    rating_upsert(user=alice, item=alien, score=1.5)
    exported = "".join(ratings_csv_write(rows=rating_export_rows(user=alice)))
    result = ratings_csv_import(user=charlie, file=upload(exported), max_rows=10)
    assert (result.created, result.changed) == (2, 0)
    assert scores(charlie) == scores(alice)


def test_an_import_writes_only_for_its_user(alice, bob, films) -> None:  # type: ignore[no-untyped-def]
    heat, *_ = films
    rating_upsert(user=bob, item=heat, score=1.0)
    ratings_csv_import(user=alice, file=upload(f"item_id,score\n{heat.pk},5\n"), max_rows=10)
    assert scores(bob) == {heat.pk: 1.0}
    assert scores(alice) == {heat.pk: 5.0}


def test_the_export_lists_only_that_users_ratings_in_item_order(alice, bob, films) -> None:  # type: ignore[no-untyped-def]
    heat, alien, up = films
    rating_upsert(user=alice, item=up, score=3.0)
    rating_upsert(user=alice, item=heat, score=4.0)
    rating_upsert(user=bob, item=alien, score=2.0)
    rows = list(rating_export_rows(user=alice))
    assert [(pk, title, year, score) for pk, title, year, score, _ in rows] == [
        (heat.pk, "Heat", 1995, 4.0),
        (up.pk, "Up", 2009, 3.0),
    ]
    assert all(
        rated.tzinfo is not None and rated > datetime.now(UTC) - timedelta(minutes=5) for *_, rated in rows
    )


def test_the_csv_columns_are_the_documented_ones() -> None:
    assert COLUMNS == ("item_id", "title", "year", "score", "rated_at")
