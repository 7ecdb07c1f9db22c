Feature: Error codes
  Each code of docs/error-codes.md that a backend can return, with the request that causes it.
  (416-419 are in the top-up outline, 422/423 in card check, 401 in security, 502/504 and KCI's
  500 in the KCI faults; 420, 421 and 433 cannot be caused through a correct backend: its pending
  returns the open reservation, and it allocates the reference itself.)

  Background:
    Given a fresh card

  Scenario: 400 for an amount that is not positive
    Given the frontend has done every step before pending
    When the frontend sends pending with amount set to "0"
    Then the answer is code 400 naming amount
    When the frontend sends pending with amount set to "-10000"
    Then the answer is code 400 naming amount

  Scenario: 400 for a malformed card number
    When the frontend sends card-check 1 with card_no set to "60320001ABCD"
    Then the answer is code 400 naming card_no

  Scenario: 412 for a terminal id the credentials do not belong to
    When the frontend sends card-check 1 with tid set to "T9999999"
    Then the answer is code 412

  Scenario: 413 for a card number KCI does not know
    When the frontend sends card-check 1 with card_no set to "6032999999999999"
    Then the answer is code 413

  Scenario: 414 for an update without a reservation
    Given the frontend has done every step before pending
    When the frontend sends update 1
    Then the answer is code 414

  Scenario: 424 for a session nobody opened
    Given the frontend has done every step before update 2
    When the frontend sends update 2 with session_id set to "0123456789abcdef0123456789abcdef"
    Then the answer is code 424
    When the frontend completes the top-up of Rp 10,000
    Then the card's balance has grown by Rp 10,000

  Scenario: 425 for a step out of order
    Given the frontend has done every step before update 3
    When the frontend sends update 4
    Then the answer is code 425

  Scenario: 426 for a card answer whose MAC is broken
    Given the frontend has done every step before update 5
    When the frontend sends update 5 with the purse balance raised by Rp 100,000 in the card's answer
    Then the answer is code 426
    And the card's balance is unchanged

  Scenario: 427 for another card's answer in a card check
    Given another fresh card
    And the frontend has done every step before card-check 3
    When the frontend sends card-check 3 with the first card's number in the card's answer
    Then the answer is code 427

  Scenario: 428 for a balance that differs from the card's purse
    Given the frontend has done every step before update 1
    When the frontend sends update 1 with prev_balance set to "1000"
    And the frontend sends update 2 with balance set to "1000"
    And the frontend sends update 3 with balance set to "1000"
    And the frontend sends update 4 with balance set to "1000"
    And the frontend sends update 5 with balance set to "1000"
    Then the answer is code 428
    And the card's balance is unchanged

  Scenario: 429 for a reservation that expired
    Given the frontend has done every step before update 1
    And KCI's clock moves past the reservation's lifetime
    When the frontend sends update 1
    Then the answer is code 429

  Scenario: 430 for a confirm before the load finished
    Given the frontend has done every step before update 6
    When the frontend sends confirm
    Then the answer is code 430

  Scenario: 432 for a merchant KCI has made inactive
    Given KCI marks the terminal's merchant inactive
    When the terminal tops up Rp 10,000
    Then the top-up stops at card-check 1 with code 432
    And the card's balance is unchanged

  Scenario: 434 for tampered sequence data
    Given the frontend has done every step before card-check 3
    When the frontend sends card-check 3 with sequence_data set to "tampered"
    Then the answer is code 434

  Scenario: 435 for a confirm with the wrong last balance
    Given the frontend has done every step before confirm
    When the frontend sends confirm with last_balance set to "1"
    Then the answer is code 435
    When the frontend sends confirm
    Then the answer is a success

  Scenario: 431 for confirming again with different data after success
    Given the frontend has done every step before confirm
    And the frontend sends confirm
    When the frontend sends confirm with last_balance set to "1"
    Then the answer is code 431
