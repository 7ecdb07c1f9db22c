Feature: Update (the load) and confirm
  Seven update steps relay KCI's commands to the card, carrying KCI's session and sequence data;
  update 5's command is the write; update 7 verifies the new balance; confirm closes the top-up.

  Scenario: The seven update steps and the confirmation
    Given a fresh card
    And the top-up amount is Rp 25,000
    And the frontend has done every step before update 1
    When the frontend sends the update steps 1 to 7
    Then the update answers were
      | call     | step | next_step | command         | sequence_data |
      | update 1 | 1    | 2         | Polling         | any           |
      | update 2 | 2    | 3         | Authentication1 | set           |
      | update 3 | 3    | 4         | Authentication2 | set           |
      | update 4 | 4    | 5         | AuthRead        | set           |
      | update 5 | 5    | 6         | AuthWrite       | set           |
      | update 6 | 6    | 7         | AuthRead        | set           |
      | update 7 | 7    |           |                 | any           |
    And every update answer kept the session of update 1
    And update 7 reports the new balance, the load balance number and status "LOADED"
    And the card's balance has grown by Rp 25,000
    When the frontend sends confirm
    Then the confirmation says status "SUCCESS", activated balance Rp 25,000 and the card's balance as last balance
    And KCI counts 1 successful top-up of the card

  Scenario: Confirm before update 7 is refused as too early
    Given a fresh card
    And the frontend has done every step before update 7
    When the frontend sends confirm
    Then the answer is code 430
    When the frontend completes the top-up of Rp 10,000
    Then the card's balance has grown by Rp 10,000
