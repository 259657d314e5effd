"""``manage.py evaluate --tune``: choose on a validation split of --train, then test once."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from recommender.engine.tune import SEARCH_SPACES

CONTRACT_KEYS = {"rmse", "mae", "precision@10", "recall@10", "ndcg@10", "coverage", "fit_seconds"}


def run(*args: str) -> str:
    out = StringIO()
    call_command("evaluate", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def write_csv(path: Path, rows: list[tuple[int, int, float]]) -> Path:
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A train file, its test file and a second, unrelated test file."""
    rng = np.random.default_rng(0)
    quality = rng.normal(0, 1, 25)
    rows = [
        (u, i, float(np.clip(np.rint(3 + quality[i] + rng.normal(0, 0.8)), 1, 5)))
        for u in range(40)
        for i in range(25)
        if rng.random() < 0.5
    ]
    cut = int(0.8 * len(rows))
    other = [(u, i, float(6 - r)) for u, i, r in rows[cut:]]  # every test rating flipped
    return {
        "train": write_csv(tmp_path / "train.csv", rows[:cut]),
        "test": write_csv(tmp_path / "test.csv", rows[cut:]),
        "other": write_csv(tmp_path / "other.csv", other),
    }


def tuned_json(files: dict[str, Path], *extra: str, test: str = "test") -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        run("--train", str(files["train"]), "--test", str(files[test]), "--tune", "--json", *extra)
    )
    return report


def test_it_reports_the_chosen_params_and_the_validation_score_with_the_test_metrics(
    files: dict[str, Path],
) -> None:
    report = tuned_json(files, "--algorithm", "bias_baseline")
    assert set(report) == CONTRACT_KEYS | {"chosen_params", "validation_metric", "validation_score", "search"}
    space = SEARCH_SPACES["bias_baseline"]
    assert set(report["chosen_params"]) == set(space)
    assert all(report["chosen_params"][key] in values for key, values in space.items())
    assert report["validation_metric"] == "rmse"
    assert len(report["search"]) == len(space["regularization_user"]) * len(space["regularization_item"])
    best = min(report["search"], key=lambda row: row["score"])
    assert report["validation_score"] == best["score"] and report["chosen_params"] == best["params"]
    assert 0 < report["rmse"] < 2


def test_the_test_file_does_not_influence_the_choice(files: dict[str, Path]) -> None:
    args = ("--algorithm", "bias_baseline")
    first = tuned_json(files, *args)
    flipped = tuned_json(files, *args, test="other")
    assert flipped["chosen_params"] == first["chosen_params"]
    assert flipped["validation_score"] == first["validation_score"]
    assert [r["score"] for r in flipped["search"]] == [r["score"] for r in first["search"]]
    assert flipped["rmse"] != first["rmse"]  # yet the test file was read and scored


def test_a_grid_replaces_the_default_space_and_params_are_pinned(files: dict[str, Path]) -> None:
    report = tuned_json(
        files,
        "--algorithm",
        "implicit_als",
        "--grid",
        "factors=2,4",
        "--param",
        "iterations=3",
        "--seed",
        "1",
    )
    assert report["validation_metric"] == "ndcg@10" and report["rmse"] is None
    assert [row["params"] for row in report["search"]] == [{"factors": 2}, {"factors": 4}]
    assert report["chosen_params"]["iterations"] == 3
    assert report["chosen_params"]["factors"] in (2, 4)


def test_the_text_output_names_the_choice_before_the_test_metrics(files: dict[str, Path]) -> None:
    out = run(
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--algorithm",
        "bias_baseline",
        "--tune",
        "--grid",
        "regularization_item=1,10",
    )
    assert "chosen on validation rmse" in out and "regularization_item=" in out
    assert out.index("validation rmse") < out.index("test, once") < out.index("ndcg@10")


def test_it_rejects_tuning_options_without_tune_and_unknown_grid_keys(files: dict[str, Path]) -> None:
    common = ("--train", str(files["train"]), "--test", str(files["test"]), "--algorithm", "bias_baseline")
    with pytest.raises(CommandError, match="only apply with --tune"):
        run(*common, "--grid", "regularization_item=1,2")
    with pytest.raises(CommandError, match="unknown parameters in the search space: bogus"):
        run(*common, "--tune", "--grid", "bogus=1,2")
    with pytest.raises(CommandError, match="no such file"):
        run("--train", str(files["train"]), "--test", "missing.csv", "--algorithm", "ease", "--tune")


def test_without_tune_the_report_keeps_its_contract_keys(files: dict[str, Path]) -> None:
    report = json.loads(
        run(
            "--train",
            str(files["train"]),
            "--test",
            str(files["test"]),
            "--algorithm",
            "bias_baseline",
            "--json",
        )
    )
    assert set(report) == CONTRACT_KEYS
