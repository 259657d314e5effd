"""ratings.demo_data: ML-100K from the recbole wheel, downloaded once and cached (no network here)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ratings import demo_data
from tests.engine.test_readers import INTER

MEMBERS = {
    "ml-100k.inter": INTER,
    "ml-100k.item": "item_id:token\tmovie_title:token_seq\n242\tKolya\n302\tL.A. Confidential\n377\tHeavyweights\n",
    "ml-100k.user": "user_id:token\tage:token\n196\t49\n",
}


def write_wheel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"recbole-{demo_data.RECBOLE_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in MEMBERS.items():
            zf.writestr(f"recbole/dataset_example/ml-100k/{name}", text)
    return wheel


def test_it_downloads_the_wheel_once_and_extracts_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def fake_pip(command: list[str], **kwargs: Any) -> None:
        commands.append(command)
        write_wheel(Path(command[command.index("-d") + 1]))

    monkeypatch.setattr(subprocess, "run", fake_pip)
    folder = demo_data.fetch_ml100k(tmp_path)
    assert folder == tmp_path / "ml-100k"
    assert (folder / "ml-100k.inter").read_text() == INTER
    assert len(commands) == 1
    assert commands[0][1:4] == ["-m", "pip", "download"]
    assert f"recbole=={demo_data.RECBOLE_VERSION}" in commands[0]
    assert demo_data.fetch_ml100k(tmp_path) == folder  # cached: pip is not run again
    assert len(commands) == 1


def test_ml100k_arrays_reads_the_fetched_files_through_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_wheel(tmp_path / "wheels")
    monkeypatch.setenv("TASTEBASE_DATA_DIR", str(tmp_path))
    users, items, ratings, stamps = demo_data.ml100k_arrays()
    assert users.tolist() == [196, 186, 22]
    assert items.tolist() == [242, 302, 377]
    assert ratings.tolist() == [3.0, 3.0, 1.0]
    assert stamps[0] == 881250949
