"""``kmt bdd``: the installed suite runs from any directory, pytest options after ``--``."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

KMT = str(Path(sys.executable).with_name("kmt"))


def test_kmt_bdd_runs_the_installed_suite_from_another_directory(tmp_path: Path) -> None:
    report = tmp_path / "kmt.xml"
    args = ["-q", "-p", "no:cacheprovider", "-k", "three_steps_of_a_card_check", f"--junitxml={report}"]
    proc = subprocess.run([KMT, "bdd", "--", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    cases = [c.get("name") for c in ET.parse(report).getroot().iter("testcase")]
    assert cases == ["test_the_three_steps_of_a_card_check"]


def test_kmt_bdd_passes_pytest_exit_status_through(tmp_path: Path) -> None:
    proc = subprocess.run(
        [KMT, "bdd", "--", "-q", "-p", "no:cacheprovider", "-k", "no_scenario_is_called_this"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 5, proc.stdout[-2000:]  # pytest: no tests collected
