"""Writing a parsed MovieLens dataset into the database, all or nothing.

``movielens_import(path=...)`` parses and validates the whole dataset first
(``ratings.movielens.read_dataset``), then writes it in one transaction:

* genres, items (``source="movielens"``, ``external_id`` = the movie id) and
  their genre links; existing items get changed titles, years and genres. Titles
  are stored in display form (``catalog.titles.display_title``: "Shining, The" ->
  "The Shining"), which is also what a re-import compares with;
* users ``ml<id>`` with unusable passwords;
* ratings: new ones dated from the file's timestamp; changed scores updated
  (``updated_at`` = now, so "changed since" queries see them); equal ones left alone;
* the denormalized item aggregates, recomputed with one set-based UPDATE, then
  every item's damped mean with the new global mean (only when ratings changed).

No query runs per row. On SQLite new ratings go in with ``executemany`` in
batches after one query that reads the existing (user, item, score) rows. On
PostgreSQL (psycopg 3) :mod:`ratings.bulk_load` sends them with a binary COPY:
into an empty table straight in, under dropped and then rebuilt indexes and
constraints; otherwise into a temporary staging table joined once with the
stored ratings, writing only new pairs and changed scores. Users are created
with one ``INSERT … SELECT FROM unnest`` there.

Only changed data moves the derived data: the aggregates are recomputed and the
users whose ratings were created or changed are stamped
(``ratings.services.user_rating_stamps_touch``) when a rating was written; a
re-import of unchanged data leaves both alone. With ``progress`` a tqdm bar
names each stage (and counts the COPY's rows) on a terminal;
``ImportSummary.stage_seconds`` has each stage's seconds (``-v2`` prints them).

Imported ratings do not notify ``ratings.services.rating_change_listeners``:
per-user fold-in for thousands of users is pointless; retrain after an import.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, UNUSABLE_PASSWORD_SUFFIX_LENGTH
from django.contrib.auth.models import User as DjangoUser
from django.db import connection, transaction
from django.utils import timezone
from numpy.typing import NDArray
from tqdm import tqdm

from catalog.models import Genre, Item
from catalog.titles import display_title, title_search_text

from . import bulk_load
from .bulk_load import MergeResult
from .models import Rating, UserRatingStamp
from .movielens import MovieLensDataset, read_dataset
from .services import item_aggregates_recompute, user_rating_stamps_touch

SOURCE = "movielens"
USERNAME_PREFIX = "ml"
#: Rows per INSERT batch on SQLite and per COPY chunk on PostgreSQL.
BATCH_SIZE = 50_000
#: bulk_create batch for users, items, genres and genre links.
MODEL_BATCH_SIZE = 2_000

logger = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    """What an import did; ``str()`` is the one-line summary the command prints."""

    format: str = ""
    users_created: int = 0
    items_created: int = 0
    items_updated: int = 0
    genres_created: int = 0
    ratings_created: int = 0
    ratings_updated: int = 0
    ratings_unchanged: int = 0
    #: Rows of the file dropped because a later row rated the same pair.
    duplicates: int = 0
    seconds: float = field(default=0.0, compare=False)
    #: Wall seconds per stage (parse, genres, items, users, ratings or, on PostgreSQL, copy,
    #: merge, indexes and analyze; aggregates, stamps, commit).
    stage_seconds: dict[str, float] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return (
            f"users: {self.users_created} created; "
            f"items: {self.items_created} created, {self.items_updated} updated; "
            f"genres: {self.genres_created} created; "
            f"ratings: {self.ratings_created} created, {self.ratings_updated} updated, "
            f"{self.ratings_unchanged} unchanged"
        )


def movielens_import(*, path: Path, progress: bool = False) -> ImportSummary:
    """Import the MovieLens dataset at ``path`` (folder or .zip); see the module docstring.

    Raises ``ratings.movielens.ImportFormatError`` on bad input, before writing anything.
    """
    started = time.perf_counter()
    stages = _Stages(progress)
    try:
        stages.start("parse")
        dataset = read_dataset(path)
        summary = ImportSummary(format=dataset.format, duplicates=dataset.duplicates)
        with transaction.atomic():
            _write(dataset, summary, stages)
            stages.start("commit")
        stages.start(None)
    finally:
        stages.close()
    summary.stage_seconds = stages.seconds
    summary.seconds = time.perf_counter() - started
    logger.debug("MovieLens import: %s; stage seconds %s", summary, stages.seconds)
    return summary


class _Stages:
    """Times the import's stages (a stage started again adds to its time) and names the
    current one on a tqdm bar (on a terminal only; the COPY has a bar of its own)."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress and sys.stderr.isatty()
        self.bar = tqdm(total=None, unit="stage", file=sys.stderr, disable=not self.progress, leave=False)
        self.seconds: dict[str, float] = {}
        self._current: str | None = None
        self._since = time.perf_counter()

    def start(self, name: str | None) -> None:
        now = time.perf_counter()
        if self._current is not None:
            spent = self.seconds.get(self._current, 0.0) + now - self._since
            self.seconds[self._current] = round(spent, 3)
            self.bar.update()
        self._current, self._since = name, now
        if name is not None:
            self.bar.set_description(name)

    def close(self) -> None:
        self.bar.close()


def _write(dataset: MovieLensDataset, summary: ImportSummary, stages: _Stages) -> None:
    stages.start("genres")
    genre_ids = _genres_upsert(dataset, summary)
    stages.start("items")
    item_pks = _items_upsert(dataset, genre_ids, summary)
    stages.start("users")
    ratings = dataset.ratings
    user_ids = _unique(ratings.user_ids)
    user_pks = _users_upsert(user_ids, summary)
    stages.start("ratings")
    item_col = _lookup(dataset.items.ids, item_pks, ratings.item_ids)
    user_col = _lookup(user_ids, user_pks, ratings.user_ids)
    if _has_copy():
        merged = bulk_load.ratings_merge(
            users=user_col,
            items=item_col,
            scores=ratings.scores,
            stamps=ratings.timestamps,
            progress=stages.progress,
            stage=stages.start,
        )
    else:
        merged = _ratings_merge_generic(user_col, item_col, ratings.scores, ratings.timestamps)
    summary.ratings_created, summary.ratings_updated = merged.created, merged.updated
    summary.ratings_unchanged = merged.unchanged
    if merged.created or merged.updated:
        # Unchanged data leaves the aggregates and everybody's stamp as they were.
        stages.start("aggregates")
        item_aggregates_recompute()
        stages.start("stamps")
        user_rating_stamps_touch(user_ids=merged.changed_user_ids, changed_at=timezone.now())
    if _has_copy() and (summary.items_created or summary.users_created or summary.genres_created):
        # Fresh planner statistics for the catalog tables too (bulk_load analyzes the
        # ratings): without them, at 20M, the item cards of a recommendation list read
        # every item-genre row (28 ms instead of 7; docs/benchmarks.md, serving at 20M).
        stages.start("analyze catalog")
        _catalog_analyze()


def _catalog_analyze() -> None:
    """``ANALYZE`` the tables an import fills besides the ratings (Postgres)."""
    tables = [Item._meta.db_table, Item.genres.through._meta.db_table, Genre._meta.db_table]
    tables += [get_user_model()._meta.db_table, UserRatingStamp._meta.db_table]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def _dense(ids: NDArray[np.int64]) -> bool:
    """Whether a table indexed by id is cheap: MovieLens ids are small, dense whole numbers."""
    return len(ids) > 0 and int(ids.max()) < 4 * len(ids) + 10_000_000


def _unique(ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """``np.unique(ids)``; one counting pass instead of a sort for dense ids (tens of millions of rows)."""
    if _dense(ids):
        return np.flatnonzero(np.bincount(ids)).astype(np.int64)
    return np.unique(ids)


def _lookup(
    keys: NDArray[np.int64], values: NDArray[np.int64], wanted: NDArray[np.int64]
) -> NDArray[np.int64]:
    """``values[k]`` where ``keys[k] == w`` for each ``w`` in ``wanted`` (every one is among ``keys``)."""
    if _dense(keys):
        table = np.zeros(int(keys.max()) + 1, dtype=np.int64)
        table[keys] = values
        return table[wanted]
    order = np.argsort(keys)
    return values[order][np.searchsorted(keys[order], wanted)]


# ---- genres, items, users ------------------------------------------------------------


def _genres_upsert(dataset: MovieLensDataset, summary: ImportSummary) -> dict[str, int]:
    names = sorted({genre for genres in dataset.items.genres for genre in genres})
    existing = dict(Genre.objects.filter(name__in=names).values_list("name", "id"))
    missing = [Genre(name=name) for name in names if name not in existing]
    Genre.objects.bulk_create(missing, batch_size=MODEL_BATCH_SIZE)
    summary.genres_created = len(missing)
    return dict(Genre.objects.filter(name__in=names).values_list("name", "id"))


def _items_upsert(
    dataset: MovieLensDataset, genre_ids: dict[str, int], summary: ImportSummary
) -> NDArray[np.int64]:
    """Create or update the dataset's items; their primary keys in dataset order."""
    items = dataset.items
    external_ids = [str(int(i)) for i in items.ids]
    titles = [display_title(title) for title in items.titles]
    # All MovieLens items in one query: cheaper than a huge IN list.
    existing = {
        ext: (pk, title, year)
        for ext, pk, title, year in Item.objects.filter(source=SOURCE).values_list(
            "external_id", "id", "title", "year"
        )
    }
    new_items = [
        Item(title=title, year=year, source=SOURCE, external_id=ext)
        for ext, title, year in zip(external_ids, titles, items.years, strict=True)
        if ext not in existing
    ]
    Item.objects.bulk_create(new_items, batch_size=MODEL_BATCH_SIZE)
    summary.items_created = len(new_items)
    changed: dict[int, Item] = {}
    for ext, title, year in zip(external_ids, titles, items.years, strict=True):
        if ext in existing:
            pk, old_title, old_year = existing[ext]
            if (old_title, old_year) != (title, year):
                # bulk_update skips the field's pre_save: search_text is set here.
                changed[pk] = Item(pk=pk, title=title, year=year, search_text=title_search_text(title))
    Item.objects.bulk_update(
        list(changed.values()), ["title", "year", "search_text"], batch_size=MODEL_BATCH_SIZE
    )

    pk_by_ext = dict(Item.objects.filter(source=SOURCE).values_list("external_id", "id"))
    pks = np.fromiter((pk_by_ext[ext] for ext in external_ids), dtype=np.int64, count=len(external_ids))

    # Genre links: compare wanted (item, genre) pairs with the stored ones.
    through = Item.genres.through
    wanted = {
        (int(pk), genre_ids[genre]) for pk, genres in zip(pks, items.genres, strict=True) for genre in genres
    }
    stored: dict[tuple[int, int], int] = {
        (item_id, genre_id): link_id
        for link_id, item_id, genre_id in through.objects.filter(item__source=SOURCE).values_list(
            "id", "item_id", "genre_id"
        )
    }
    ours = {int(pk) for pk in pks}
    to_add = sorted(wanted - stored.keys())
    remove_pairs = [pair for pair in stored if pair[0] in ours and pair not in wanted]
    to_remove = [stored[pair] for pair in remove_pairs]
    through.objects.bulk_create(
        [through(item_id=item_id, genre_id=genre_id) for item_id, genre_id in to_add],
        batch_size=MODEL_BATCH_SIZE,
    )
    for start in range(0, len(to_remove), MODEL_BATCH_SIZE):
        through.objects.filter(id__in=to_remove[start : start + MODEL_BATCH_SIZE]).delete()
    new_pks = {pk_by_ext[item.external_id] for item in new_items}
    genre_changed = {item_id for item_id, _ in to_add} | {item_id for item_id, _ in remove_pairs}
    summary.items_updated = len((changed.keys() | genre_changed) - new_pks)
    return pks


def _users_upsert(user_ids: NDArray[np.int64], summary: ImportSummary) -> NDArray[np.int64]:
    """Create missing ``ml<id>`` users; primary keys aligned with the sorted ``user_ids``."""
    User = get_user_model()
    pattern = re.compile(rf"^{USERNAME_PREFIX}(\d+)$")

    def existing() -> dict[int, int]:
        found: dict[int, int] = {}
        rows = User.objects.filter(username__startswith=USERNAME_PREFIX).values_list("username", "id")
        for username, pk in rows:
            match = pattern.match(username)
            if match and str(int(match.group(1))) == match.group(1):
                found[int(match.group(1))] = pk
        return found

    known = existing()
    missing = [int(uid) for uid in user_ids if int(uid) not in known]
    if missing and connection.vendor == "postgresql" and User is DjangoUser:
        # One INSERT … SELECT FROM unnest: 100k+ model instances cost seconds.
        _users_create_postgres(missing)
        summary.users_created = len(missing)
        known = existing()
        return np.fromiter((known[int(uid)] for uid in user_ids), dtype=np.int64, count=len(user_ids))
    # What make_password(None) returns ("!" + random suffix), built with
    # secrets.token_urlsafe: make_password's get_random_string costs ~0.5 ms a
    # user, minutes for the 100k+ users of the larger datasets.
    User.objects.bulk_create(
        [
            User(
                username=f"{USERNAME_PREFIX}{uid}",
                password=UNUSABLE_PASSWORD_PREFIX
                + secrets.token_urlsafe(30)[:UNUSABLE_PASSWORD_SUFFIX_LENGTH],
            )
            for uid in missing
        ],
        batch_size=MODEL_BATCH_SIZE,
    )
    summary.users_created = len(missing)
    if missing:
        known = existing()
    return np.fromiter((known[int(uid)] for uid in user_ids), dtype=np.int64, count=len(user_ids))


def _users_create_postgres(user_ids: list[int]) -> None:
    """Create ``ml<id>`` users with unusable passwords (``make_password(None)``'s form) and
    the field defaults of ``django.contrib.auth``'s User, in one statement."""
    table = connection.ops.quote_name(DjangoUser._meta.db_table)
    names = [f"{USERNAME_PREFIX}{uid}" for uid in user_ids]
    passwords = [
        UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)[:UNUSABLE_PASSWORD_SUFFIX_LENGTH]
        for _ in user_ids
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (username, password, is_superuser, is_staff, is_active,
                                 first_name, last_name, email, date_joined)
            SELECT u.name, u.password, false, false, true, '', '', '', %s
            FROM unnest(%s::text[], %s::text[]) AS u(name, password)
            """,
            [timezone.now(), names, passwords],
        )


# ---- ratings ---------------------------------------------------------------------------


def _has_copy() -> bool:
    """PostgreSQL through psycopg 3 (whose cursors have ``copy``); psycopg2 takes the generic path."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        return hasattr(cursor.cursor, "copy")


def _batches(count: int) -> Iterator[slice]:
    for start in range(0, count, BATCH_SIZE):
        yield slice(start, min(start + BATCH_SIZE, count))


def _ratings_merge_generic(
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    scores: NDArray[np.float64],
    stamps: NDArray[np.int64],
) -> MergeResult:
    """SQLite (and any other backend): read existing pairs once, then batched writes."""
    table = connection.ops.quote_name(Rating._meta.db_table)
    item_table = connection.ops.quote_name(Item._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.id, r.user_id, r.item_id, r.score FROM {table} r "
            f"JOIN {item_table} i ON i.id = r.item_id WHERE i.source = %s",
            [SOURCE],
        )
        rows = cursor.fetchall()
    existing = np.array(rows, dtype=np.float64).reshape(-1, 4)
    ex_ids, ex_users, ex_items, ex_scores = (
        existing[:, 0].astype(np.int64),
        existing[:, 1].astype(np.int64),
        existing[:, 2].astype(np.int64),
        existing[:, 3],
    )
    # Match (user, item) pairs through one int64 key.
    width = int(max(items.max(initial=0), ex_items.max(initial=0))) + 1
    keys = users * width + items
    ex_keys = ex_users * width + ex_items
    order = np.argsort(ex_keys)
    ex_keys, ex_ids, ex_scores = ex_keys[order], ex_ids[order], ex_scores[order]
    where = np.searchsorted(ex_keys, keys)
    found = where < len(ex_keys)
    found[found] = ex_keys[where[found]] == keys[found]
    changed = found.copy()
    changed[found] = ex_scores[where[found]] != scores[found]
    written = ~found | changed
    result = MergeResult(
        created=int((~found).sum()),
        updated=int(changed.sum()),
        unchanged=int((found & ~changed).sum()),
        changed_user_ids=np.unique(users[written]).tolist(),
        changed_item_ids=np.unique(items[written]).tolist(),
    )

    # In (user, item) order the unique index grows at its right edge: fewer page splits.
    new = np.flatnonzero(~found)
    new = new[np.lexsort((items[new], users[new]))]
    dates = _datetime_texts(stamps[new])
    new_rows = zip(users[new].tolist(), items[new].tolist(), scores[new].tolist(), dates, dates, strict=True)
    insert = (
        f"INSERT INTO {table} (user_id, item_id, score, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    update = f"UPDATE {table} SET score = %s, updated_at = %s WHERE id = %s"
    updates = zip(
        scores[changed].tolist(), [now] * int(changed.sum()), ex_ids[where[changed]].tolist(), strict=True
    )
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # The default 2 MB page cache is far smaller than the rating table's
            # five B-trees; with it, inserts spill pages to disk and run ~5x slower.
            cursor.execute("PRAGMA cache_size = -262144")  # KiB: 256 MB, this connection only
        new_list = list(new_rows)
        for part in _batches(len(new_list)):
            cursor.executemany(insert, new_list[part])
        update_list = list(updates)
        for part in _batches(len(update_list)):
            cursor.executemany(update, update_list[part])
    return result


def _datetime_texts(stamps: NDArray[np.int64]) -> list[str]:
    """Unix seconds as the naive-UTC text Django's SQLite backend stores."""
    if not len(stamps):
        return []
    texts = np.datetime_as_string(stamps.astype("datetime64[s]"), unit="s")
    return np.char.replace(texts, "T", " ").tolist()
