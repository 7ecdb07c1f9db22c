Feature: Idempotency and concurrency
  A frontend that did not get an answer sends the same request again: it gets a success and the
  top-up goes on, loaded exactly once. Confirming twice never activates twice. Two terminals on one
  card never load more than was paid for.

  Scenario Outline: <point> sent twice
    Given a fresh card
    And the frontend has done every step before <point>
    When the frontend sends <point> twice
    Then both answers are a success and the second repeats the first
    When the frontend completes the step-by-step top-up
    Then the card's balance has grown by Rp 10,000
    And KCI counts 1 successful top-up of the card

    Examples:
      | point        |
      | card-check 2 |
      | card-check 3 |
      | update 2     |
      | update 3     |
      | update 4     |
      | update 5     |
      | update 6     |
      | update 7     |

  Scenario Outline: <point> sent twice right away
    Given a fresh card
    And the frontend has done every step before <point>
    When the frontend sends <point> twice
    Then both answers are a success
    When the frontend completes the step-by-step top-up
    Then the card's balance has grown by Rp 10,000
    And KCI counts 1 successful top-up of the card

    Examples:
      | point        |
      | card-check 1 |
      | pending      |
      | update 1     |

  Scenario: Confirm sent twice
    Given a fresh card
    And the frontend has done every step before confirm
    When the frontend sends confirm twice
    Then both answers are a success and the second repeats the first
    And the card's balance has grown by Rp 10,000
    And KCI counts 1 successful top-up of the card

  @other_terminal
  Scenario: Two terminals top up one card at the same moment
    Given a fresh card
    When two terminals top up the card with Rp 10,000 and Rp 20,000 at the same moment
    Then neither was loaded without KCI's word

  Scenario: One terminal runs two top-ups of one card at the same moment
    Given a fresh card
    When the terminal tops up the card with Rp 10,000 and Rp 20,000 at the same moment
    Then neither was loaded without KCI's word
