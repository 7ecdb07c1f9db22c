Feature: Pending (reservation)
  After a card check the frontend reserves the amount; a card that already has an open or suspect
  reservation gets that reservation back, to be resumed.

  Background:
    Given a fresh card

  Scenario: A new reservation
    Given the top-up amount is Rp 20,000
    And the frontend has done every step before pending
    When the frontend sends pending
    Then the answer is a success
    And the reservation is new, for Rp 20,000, not suspect

  Scenario: An open reservation is returned instead of a second one
    Given the top-up amount is Rp 20,000
    And the frontend has done every step before pending
    And the frontend sends pending
    When the frontend sends pending with amount set to "30000"
    Then the answer is a success
    And the reservation is the one of the first pending, for Rp 20,000, not suspect
    When the frontend completes the top-up of Rp 20,000
    Then the card's balance has grown by Rp 20,000

  Scenario: The reservation of an interrupted write is returned to the frontend that comes back
    Given the card leaves the field after the command of update 5
    And the terminal tops up Rp 10,000
    And the top-up stops at update 5 because the card left
    When the card is put back and the frontend sends pending
    Then the answer is a success
    And the reservation is the one of the interrupted top-up, for Rp 10,000
    When the frontend completes the top-up of Rp 10,000
    Then the top-up succeeds
    And the card's balance has grown by Rp 10,000
    And KCI counts 1 successful top-up of the card

  Scenario: A suspect reservation is returned for resumption
    Given the card leaves the field after the command of update 5
    And the terminal tops up Rp 10,000
    And the top-up stops at update 5 because the card left
    And KCI's session of the interrupted top-up has expired
    When the card is put back and the frontend sends pending
    Then the answer is a success
    And the reservation is the one of the interrupted top-up, for Rp 10,000, suspect
    When the frontend completes the top-up of Rp 10,000
    Then the top-up succeeds
    And the card's balance has grown by Rp 10,000
    And KCI counts 1 successful top-up of the card
