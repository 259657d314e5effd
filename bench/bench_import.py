"""Benchmark ``manage.py import_movielens``: ML-100K into SQLite and PostgreSQL, and a
generated 5M-rating ml-latest-style CSV into PostgreSQL.

Each case runs ``migrate`` and the import as subprocesses against a fresh
database (a temporary SQLite file, or a PostgreSQL database created here and
dropped afterwards), imports twice (the second run shows the idempotent path)
and, for the large case, times the item-aggregate recompute both ways.
Prints a markdown table and rewrites the "Import" section of docs/benchmarks.md.

    python -m bench.bench_import                        # all cases
    python -m bench.bench_import --synthetic-ratings 0  # skip the 5M case
    python -m bench.bench_import --synthetic-ratings 0 --no-postgres --no-write   # a smoke run

PostgreSQL: ``--pg-url`` (default postgres://postgres@127.0.0.1:5432/postgres) must
be allowed to CREATE/DROP DATABASE.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import command_line, manage, manage_env, ml100k_folder, postgres_database, write_section

HEADING = "## Import"


@dataclass
class Row:
    case: str
    database: str
    ratings: int
    seconds: float
    summary: str
    stages: str = ""


def bench_case(
    case: str, database: str, database_url: str, data: Path, ratings: int, timeout: float
) -> list[Row]:
    """Migrate a fresh database, then import ``data`` twice; one row per import."""
    env = import_env(database_url)
    manage(["migrate", "-v0"], env, timeout)
    rows = []
    for run in ("first import", "second import (no changes)"):
        print(f"{case} / {database}: {run} …", file=sys.stderr, flush=True)
        seconds, lines = manage(["import_movielens", str(data), "-v2"], env, timeout)
        summary = next(line for line in lines if line.startswith("users:"))
        stages = next((line for line in lines if line.startswith("seconds per stage:")), "")
        row = Row(f"{case}, {run}", database, ratings, seconds, summary, stages.partition(": ")[2])
        rows.append(row)
        print(f"  {seconds:.1f} s  {summary}  [{row.stages}]", file=sys.stderr, flush=True)
    return rows


def import_env(database_url: str) -> dict[str, str]:
    """DEBUG off: Django's debug query log would slow the import down."""
    return manage_env(database_url, DEBUG="0")


AGGREGATES_SCRIPT = """
import time
from catalog.models import Item
from ratings.services import item_aggregates_recompute
out = []
for label, fn in (("services.item_aggregates_recompute", lambda: item_aggregates_recompute()),):
    Item.objects.update(rating_count=0, rating_sum=0.0, rating_mean=None)
    t = time.perf_counter(); n = fn(); out.append(f"{label}={time.perf_counter() - t:.1f}s/{n}")
print(" ".join(out))
"""


def generate_latest(folder: Path, ratings: int, items: int, users: int, seed: int = 0) -> None:
    """An ml-latest-style ratings.csv + movies.csv with unique (user, item) pairs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    genres = np.array(["Action", "Adventure", "Comedy", "Drama", "Romance", "Sci-Fi", "Thriller", "Children"])
    with (folder / "movies.csv").open("w", encoding="utf-8") as out:
        out.write("movieId,title,genres\n")
        for item in range(1, items + 1):
            picked = "|".join(rng.choice(genres, size=int(rng.integers(1, 4)), replace=False))
            out.write(f'{item},"Movie {item}, The ({1920 + item % 100})",{picked}\n')
    keys = np.unique(rng.integers(0, users * items, size=int(ratings * 1.02)))
    keys = rng.permutation(keys)[:ratings]
    user_ids, item_ids = keys // items + 1, keys % items + 1
    scores = rng.integers(1, 11, size=len(keys)) / 2
    stamps = rng.integers(828_000_000, 1_700_000_000, size=len(keys))
    with (folder / "ratings.csv").open("w", encoding="ascii") as out:
        out.write("userId,movieId,rating,timestamp\n")
        step = 500_000
        for start in range(0, len(keys), step):
            part = slice(start, start + step)
            out.write(
                "".join(
                    f"{u},{i},{s},{t}\n"
                    for u, i, s, t in zip(
                        user_ids[part].tolist(),
                        item_ids[part].tolist(),
                        scores[part].tolist(),
                        stamps[part].tolist(),
                        strict=True,
                    )
                )
            )


NOTES = (
    "Where the time goes on PostgreSQL: the merge `INSERT … ON CONFLICT` costs about the same as a "
    "plain INSERT; nearly all of it is maintaining the seven b-tree indexes of `ratings_rating` "
    "(two of them, the single-column FK indexes on `user_id` and `item_id`, are covered by "
    "composite ones), and the commit runs the deferred foreign-key checks, one per row and key. "
    "Django start-up (which loads `recommender.engine`) is part of every wall time."
)


def markdown_table(rows: list[Row]) -> list[str]:
    return [
        "| case | database | ratings | wall time (s) | seconds per stage | result |",
        "|---|---|---:|---:|---|---|",
        *(
            f"| {r.case} | {r.database} | {r.ratings:,} | {r.seconds:.1f} | {r.stages} | {r.summary} |"
            for r in rows
        ),
    ]


def section(rows: list[Row], extra: list[str]) -> str:
    """The body of the ``## Import`` section (``write_section`` adds the command line)."""
    return "\n".join(
        [
            "Wall time of `manage.py import_movielens PATH` as a subprocess (Django start-up included), "
            "each case on a freshly migrated database; the stages are the import's own timings (`-v2`), "
            "commit included.",
            "",
            *markdown_table(rows),
            "",
            *extra,
            "",
            NOTES,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--synthetic-ratings", type=int, default=5_000_000, help="0 skips the large case")
    parser.add_argument("--synthetic-items", type=int, default=50_000)
    parser.add_argument("--synthetic-users", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per subprocess, seconds")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    args = parser.parse_args()

    ml100k = ml100k_folder()
    rows: list[Row] = []
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tastebase-bench-import-") as tmp:
        tmpdir = Path(tmp)
        rows += bench_case(
            "ML-100K", "SQLite", f"sqlite:///{tmpdir / 'bench.sqlite3'}", ml100k, 100_000, args.timeout
        )
        if not args.no_postgres:
            with postgres_database(args.pg_url, f"tastebase_bench_import_{os.getpid()}") as url:
                rows += bench_case("ML-100K", "PostgreSQL", url, ml100k, 100_000, args.timeout)

        if args.synthetic_ratings and not args.no_postgres:
            data = tmpdir / "synthetic"
            started = time.perf_counter()
            generate_latest(data, args.synthetic_ratings, args.synthetic_items, args.synthetic_users)
            print(f"generated {data} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            label = (
                f"generated ml-latest CSV ({args.synthetic_users:,} users × {args.synthetic_items:,} items)"
            )
            with postgres_database(args.pg_url, f"tastebase_bench_import_big_{os.getpid()}") as url:
                rows += bench_case(label, "PostgreSQL", url, data, args.synthetic_ratings, args.timeout)
                _, lines = manage(["shell", "-c", AGGREGATES_SCRIPT], import_env(url), args.timeout)
                timings = lines[-1] if lines else "?"
                extra.append(
                    f"Item aggregates after the {args.synthetic_ratings:,}-rating import, all items reset "
                    f"and recomputed (seconds/items written): {timings}."
                )

    print("\n".join(markdown_table(rows)))
    for line in extra:
        print(line)
    if not args.no_write:
        write_section(
            "bench.bench_import", HEADING, section(rows, extra), command=command_line("bench.bench_import")
        )


if __name__ == "__main__":
    main()
