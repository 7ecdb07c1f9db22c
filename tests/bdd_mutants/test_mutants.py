"""The Gherkin suite against deliberately broken backends: it must fail on each, and name the scenario.

One simulator and one reference backend (the embedded stack, no cards of its own) serve every run; each
mutant is a proxy in front of that backend; the suite runs in a subprocess against the proxy as an
external backend (``--backend-url``, ``--kci-url``, HMAC credentials), on a few selected scenarios,
and its JUnit XML says which scenarios failed.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import Stack, StackConfig, SyncStack

from .mutants import Mutant, run_mutant

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    # mutant: (scenarios to run (-k), scenarios that must fail)
    "ignore_auth": (
        "without_credentials or wrong_secret or replayed",
        {
            "test_a_request_without_credentials_is_refused",
            "test_a_request_with_a_wrong_secret_is_refused",
            "test_a_replayed_signed_request_is_refused",
        },
    ),
    "confirm_twice": ("confirm_sent_twice", {"test_confirm_sent_twice"}),
    "drop_suspect": ("suspect_reservation", {"test_a_suspect_reservation_is_returned_for_resumption"}),
    "skip_card_verification": (
        "forged_card_number or another_cards_answer or tampered_sequence",
        {
            "test_a_forged_card_number_in_the_card_check_is_refused",
            "test_for_another_cards_answer_in_a_card_check",
            "test_tampered_sequence_data_is_refused_at_point[card-check 3-tampered]",
        },
    ),
    "write_again": (
        "test_removal",
        {"test_the_card_leaves_when_the_command_of_point_then_the_topup_is_resumed[after-update 5-10,000]"},
    ),
    "fake_confirm": (
        "test_faults and confirm and not timeout",
        {"test_kci_call_fails_with_fault[load-balance/confirm-reset-confirm-502]"},
    ),
}
PASSTHROUGH = " or ".join(f"({k})" for k, _ in CASES.values())


@pytest.fixture(scope="module")
def sync_stack() -> Iterator[tuple[SyncStack, Stack]]:
    sync = SyncStack(StackConfig(seed=77, cards=0))
    with sync as stack:
        yield sync, stack


def run_suite(
    sync_stack: tuple[SyncStack, Stack], mutant: str, select: str, seed: int, tmp_path: Path
) -> dict[str, str]:
    """Run the selected scenarios against ``mutant``; returns {scenario: "passed"|"failed"|"skipped"}."""
    sync, stack = sync_stack
    proxy = run_mutant(Mutant(mutant, stack.backend_url, stack.terminal_key_id, stack.terminal_secret))
    url = sync.run(proxy.__aenter__())
    report = tmp_path / f"{mutant}.xml"
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "features",
                "-q",
                "-p",
                "no:cacheprovider",
                "-k",
                select,
                "--backend-url",
                url,
                "--kci-url",
                str(stack.kci_url),
                "--backend-auth",
                "hmac",
                "--backend-key-id",
                stack.terminal_key_id,
                "--backend-api-key",
                stack.terminal_secret,
                "--kmt-seed",
                str(seed),
                "--kmt-cards",
                "60",
                "--junitxml",
                str(report),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        sync.run(proxy.__aexit__(None, None, None))
    assert report.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
        name = case.get("name", "")
        outcomes[name] = "failed" if outcomes.get(name) == "failed" else outcome
    return outcomes


def test_reference_backend_through_the_proxy_passes(sync_stack: tuple[SyncStack, Stack], tmp_path: Path) -> None:
    """The same scenarios, run as against an external backend, pass on the reference backend."""
    outcomes = run_suite(sync_stack, "passthrough", PASSTHROUGH, 300, tmp_path)
    every = set().union(*(names for _, names in CASES.values()))
    assert every <= set(outcomes), sorted(every - set(outcomes))
    assert {n for n, o in outcomes.items() if o == "failed"} == set(), outcomes
    assert all(outcomes[n] == "passed" for n in every)


@pytest.mark.parametrize("mutant", sorted(CASES))
def test_suite_catches_mutant(sync_stack: tuple[SyncStack, Stack], tmp_path: Path, mutant: str) -> None:
    select, catching = CASES[mutant]
    outcomes = run_suite(sync_stack, mutant, select, 301 + sorted(CASES).index(mutant), tmp_path)
    failed = {n for n, o in outcomes.items() if o == "failed"}
    assert catching <= failed, f"{mutant} slipped through {sorted(catching - failed)}; outcomes {outcomes}"
