"""The management commands are thin shells; these check what a user sees."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from recommender.models import ModelVersion, VersionStatus

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--param", "factors=4", "--param", "iterations=5", "--param", "regularization=1.0"]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_retrain_list_activate_and_rollback(planted) -> None:  # type: ignore[no-untyped-def]
    assert "is active" in run("retrain", "--algorithm", "implicit_als", *FAST)
    run("retrain", "--algorithm", "implicit_als", *FAST, "--force")
    listing = run("modelversions", "list")
    assert listing.count("implicit_als") == 2 and "active" in listing and "retired" in listing
    first, second = ModelVersion.objects.order_by("pk")
    assert f"vs #{first.pk} on the same holdout: ndcg@10=" in listing
    run("modelversions", "rollback", "--kind", "ranking")
    assert ModelVersion.objects.get(status=VersionStatus.ACTIVE).pk == first.pk
    run("modelversions", "activate", str(second.pk), "--force")
    assert ModelVersion.objects.get(status=VersionStatus.ACTIVE).pk == second.pk
    with pytest.raises(CommandError, match="no model version #999"):
        run("modelversions", "activate", "999")


@pytest.mark.django_db(transaction=True)
def test_recommend_and_similar_print_json(planted) -> None:  # type: ignore[no-untyped-def]
    run("retrain", "--algorithm", "implicit_als", *FAST)
    fan = planted.user("action")
    rows = json.loads(run("recommend", "--user", fan.username, "-n", "3", "--json"))
    assert len(rows) == 3
    assert set(rows[0]) == {"item_id", "title", "predicted_rating", "score", "explanation", "source"}
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    similar = json.loads(run("similar", "--item", str(planted.items[0].pk), "-n", "4", "--json"))
    assert len(similar) == 4 and planted.items[0].pk not in {s["item_id"] for s in similar}
    with pytest.raises(CommandError, match="no user 'nobody'"):
        run("recommend", "--user", "nobody")


@pytest.mark.django_db(transaction=True)
def test_retrain_rejects_unknown_algorithms_and_parameters(planted) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="unknown algorithm 'nope'"):
        run("retrain", "--algorithm", "nope")
    with pytest.raises(CommandError, match="cannot be served"):
        run("retrain", "--algorithm", "bpmf")
    with pytest.raises(CommandError, match="did not activate"):
        run("retrain", "--algorithm", "implicit_als", "--param", "bogus=1")
    assert not ModelVersion.objects.filter(status=VersionStatus.ACTIVE).exists()


@pytest.mark.django_db
def test_setup_schedules_is_idempotent_and_editable() -> None:
    from django_celery_beat.models import PeriodicTask

    first = run("setup_schedules")
    assert first.count("created") == 2
    task = PeriodicTask.objects.get(task="recommender.tasks.retrain_all")
    task.crontab.hour = "5"  # staff edit in the admin
    task.crontab.save()
    assert run("setup_schedules").count("kept") == 2
    assert PeriodicTask.objects.filter(task__startswith="recommender.tasks.").count() == 2
    assert PeriodicTask.objects.get(task="recommender.tasks.retrain_all").crontab.hour == "5"


def _write_csv(path: Path, rows: list[tuple[int, int, float]]) -> None:
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows))


def test_evaluate_needs_no_database_and_prints_the_contract_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [
        (u, i, float(rng.choice([1, 2, 3, 4, 5]))) for u in range(30) for i in range(20) if rng.random() < 0.5
    ]
    _write_csv(tmp_path / "train.csv", rows[: int(0.8 * len(rows))])
    _write_csv(tmp_path / "test.csv", rows[int(0.8 * len(rows)) :])
    # A subprocess with an unusable database proves no database is touched.
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "evaluate",
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--algorithm",
            "bias_baseline",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "DEBUG": "1",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
            "HOME": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"rmse", "mae", "precision@10", "recall@10", "ndcg@10", "coverage", "fit_seconds"}
    assert 0 < report["rmse"] < 2 and 0 <= report["ndcg@10"] <= 1
    ranking = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "evaluate",
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--algorithm",
            "implicit_als",
            "--param",
            "factors=4",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "1", "HOME": str(tmp_path)},
    )
    assert ranking.returncode == 0, ranking.stderr
    assert json.loads(ranking.stdout)["rmse"] is None


def test_evaluate_reports_a_bad_file_by_name_and_line(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("user,item,rating\n1,2,4\n1,3,abc\n")
    with pytest.raises(CommandError, match=r"train.csv:3"):
        run(
            "evaluate",
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "train.csv"),
            "--algorithm",
            "bias_baseline",
        )


@pytest.mark.django_db(transaction=True)
def test_retrain_if_missing_skips_kinds_that_are_already_served(planted) -> None:  # type: ignore[no-untyped-def]
    run("retrain", "--algorithm", "implicit_als", *FAST)
    out = run("retrain", "--algorithm", "implicit_als", "--if-missing")
    assert "skipping implicit_als" in out
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_retrain_async_queues_a_celery_task(planted, settings) -> None:  # type: ignore[no-untyped-def]
    if settings.REDIS_URL:
        pytest.skip("with a broker the task waits for a worker; test_celery.py covers the real worker")
    out = run("retrain", "--algorithm", "implicit_als", *FAST, "--async")
    assert "queued implicit_als (ranking) as task" in out
    # The embedded default runs the task in-process, so it has finished by now.
    assert ModelVersion.objects.get().status == VersionStatus.ACTIVE
