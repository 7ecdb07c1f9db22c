Feature: Security
  Only the terminal's own credentials open the API; a captured request cannot be replayed; a
  session belongs to its terminal and card; card answers and KCI's sequence data cannot be forged;
  a confirmed session is finished.

  Background:
    Given a fresh card

  @needs_auth
  Scenario: A request without credentials is refused
    When the frontend sends card-check 1 without credentials
    Then the answer is code 401

  @needs_auth
  Scenario: A request with a wrong secret is refused
    When the frontend sends card-check 1 with a wrong secret
    Then the answer is code 401

  @hmac_only
  Scenario: A replayed signed request is refused
    Given the frontend sends card-check 1
    When the same signed request is sent again
    Then the answer is code 401

  @other_terminal
  Scenario: Another terminal cannot use this terminal's session
    Given the frontend has done every step before update 2
    When another terminal sends update 2 with this terminal's session
    Then the answer is code 424
    When the frontend completes the top-up of Rp 10,000
    Then the card's balance has grown by Rp 10,000

  Scenario: A session cannot be used for another card
    Given the frontend has done every step before update 2
    And another fresh card
    When the frontend sends update 2 for this card with the first card's session
    Then the answer is code 427

  Scenario: A card answer with a forged balance is refused
    Given the frontend has done every step before update 5
    When the frontend sends update 5 with the purse balance raised by Rp 100,000 in the card's answer
    Then the answer is code 426
    And the card's balance is unchanged

  Scenario: A card answer with a broken MAC is refused
    Given the frontend has done every step before update 7
    When the frontend sends update 7 with the card's answer corrupted
    Then the answer is code 426

  Scenario: A forged card number in the card check is refused
    Given another fresh card
    And the frontend has done every step before card-check 3
    When the frontend sends card-check 3 with the first card's number in the card's answer
    Then the answer is code 427

  Scenario Outline: Tampered sequence data is refused at <point>
    Given the frontend has done every step before <point>
    When the frontend sends <point> with sequence_data set to "<value>"
    Then the answer is code 434

    Examples:
      | point        | value                |
      | card-check 3 | tampered             |
      | update 3     | eyJzdGVwIjozfQ.AAAA  |
      | update 5     | tampered             |

  Scenario: A session is finished once confirmed
    Given the frontend has done every step before confirm
    And the frontend sends confirm
    When the frontend sends update 2 with the confirmed session
    Then the answer is an error
    And KCI counts 1 successful top-up of the card
    And the card's balance has grown by Rp 10,000
