Feature: Card removal and resumption
  The card may leave the reader's field before or after any card command. Running the top-up again
  with the card back finishes it exactly once: money is never lost, never loaded twice.

  Scenario Outline: The card leaves <when> the command of <point>, then the top-up is resumed
    Given a fresh card
    And the card leaves the field <when> the command of <point>
    When the terminal tops up Rp 10,000
    Then the top-up stops at <point> because the card left
    And the card's balance has grown by Rp <loaded>
    When the card is put back and the frontend completes the top-up of Rp 10,000
    Then the top-up succeeds
    And the card's balance has grown by Rp 10,000
    And KCI counts 1 successful top-up of the card

    Examples:
      | when   | point        | loaded |
      | before | card-check 1 | 0      |
      | after  | card-check 1 | 0      |
      | before | card-check 2 | 0      |
      | after  | card-check 2 | 0      |
      | before | update 1     | 0      |
      | after  | update 1     | 0      |
      | before | update 2     | 0      |
      | after  | update 2     | 0      |
      | before | update 3     | 0      |
      | after  | update 3     | 0      |
      | before | update 4     | 0      |
      | after  | update 4     | 0      |
      | before | update 5     | 0      |
      | after  | update 5     | 10,000 |
      | before | update 6     | 10,000 |
      | after  | update 6     | 10,000 |
