Feature: Card check
  The frontend reads the card through the backend in three steps: Polling, a read of the card's
  number, purse and history, then KCI's decoding of the card's answer.

  Background:
    Given a fresh card

  Scenario: The three steps of a card check
    When the frontend sends card-check 1
    Then the answer is step 1 with next step 2 and a Polling command
    When the frontend sends card-check 2
    Then the answer is step 2 with next step 3 and a ReadWithoutEncryption command
    And the answer keeps the session of card-check 1 and carries sequence data
    When the frontend sends card-check 3
    Then the answer is step 3 with no next step
    And the card check reports the card's number, its balance and account status "ACTIVE"

  Scenario: The history shows an earlier top-up
    Given the card was topped up with Rp 10,000
    When the frontend checks the card
    Then the card check reports the card's number, its balance and account status "ACTIVE"
    And the card check history holds a top-up of Rp 10,000

  Scenario Outline: A card KCI does not accept for top-ups
    Given KCI marks the card <change>
    When the frontend checks the card
    Then the card check reports the card's number, its balance and account status "<status>"
    When the terminal tops up Rp 10,000
    Then the top-up stops at pending with code <code>
    And the card's balance is unchanged

    Examples:
      | change   | status   | code |
      | blocked  | BLOCKED  | 422  |
      | inactive | INACTIVE | 422  |
      | expired  | EXPIRED  | 423  |
