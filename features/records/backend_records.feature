@embedded_only
Feature: The reference backend's records
  In-process checks of the reference backend's transaction store (docs/backend-api.md, "Transactions"):
  what it keeps about each top-up. Another backend keeps its own records, so these are skipped there.

  Scenario: A finished top-up is recorded as SUCCESS with KCI's numbers
    Given a fresh card
    When the terminal tops up Rp 10,000
    Then the top-up succeeds
    And the backend records the top-up as SUCCESS, not suspect, with KCI's numbers and balances

  Scenario: A write of unknown outcome stays suspect in the backend until it is recovered
    Given a fresh card
    And the card leaves the field after the command of update 5
    When the terminal tops up Rp 10,000
    Then the backend records the top-up as IN_PROGRESS, suspect
    When the card is put back and the frontend completes the top-up of Rp 10,000
    Then the top-up succeeds
    And the backend records the top-up as SUCCESS, not suspect, with KCI's numbers and balances
