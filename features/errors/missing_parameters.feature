Feature: Missing parameters
  Every parameter a step needs, left out of an otherwise correct request, is answered with code
  400 and a message that names it; nothing reaches the card.

  Scenario Outline: <point> without <param>
    Given a fresh card
    And the frontend has done every step before <point>
    When the frontend sends <point> without <param>
    Then the answer is code 400 naming <param>

    Examples:
      | point        | param         |
      | card-check 1 | card_no       |
      | card-check 1 | tid           |
      | card-check 1 | mid           |
      | card-check 2 | card_no       |
      | card-check 2 | card_resp     |
      | card-check 2 | session_id    |
      | card-check 3 | card_resp     |
      | card-check 3 | session_id    |
      | card-check 3 | sequence_data |
      | pending      | card_no       |
      | pending      | tid           |
      | pending      | mid           |
      | pending      | amount        |
      | update 1     | card_no       |
      | update 1     | prev_balance  |
      | update 2     | balance       |
      | update 2     | card_resp     |
      | update 2     | session_id    |
      | update 3     | balance       |
      | update 3     | card_resp     |
      | update 3     | session_id    |
      | update 3     | sequence_data |
      | update 4     | balance       |
      | update 4     | card_resp     |
      | update 4     | session_id    |
      | update 4     | sequence_data |
      | update 5     | balance       |
      | update 5     | card_resp     |
      | update 5     | session_id    |
      | update 5     | sequence_data |
      | update 6     | balance       |
      | update 6     | card_resp     |
      | update 6     | session_id    |
      | update 6     | sequence_data |
      | update 7     | balance       |
      | update 7     | card_resp     |
      | update 7     | session_id    |
      | update 7     | sequence_data |
      | confirm      | card_no       |
      | confirm      | last_balance  |
      | confirm      | session_id    |
