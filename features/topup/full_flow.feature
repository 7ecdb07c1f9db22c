Feature: The whole top-up, over amounts and KCI's limits
  card-check, pending, update 1-7 and confirm, as a frontend runs them, at and around the
  boundaries of the minimum top-up, the per-transaction maximum, the maximum balance and the
  monthly limit. The limits are set through the simulator's admin API and put back afterwards.

  Scenario Outline: A top-up of <amount> where <limit>
    Given a fresh card
    And KCI's <limit>
    When the terminal tops up Rp <amount>
    Then the top-up ends with code <code>
    And the card's balance has grown by Rp <loaded>

    Examples: minimum top-up
      | limit                                 | amount    | code | loaded    |
      | minimum top-up is Rp 10,000           | 9,999     | 418  | 0         |
      | minimum top-up is Rp 10,000           | 10,000    | 200  | 10,000    |
      | minimum top-up is Rp 10,000           | 75,500    | 200  | 75,500    |

    Examples: per-transaction maximum
      | limit                                 | amount    | code | loaded    |
      | per-transaction maximum is Rp 500,000 | 500,000   | 200  | 500,000   |
      | per-transaction maximum is Rp 500,000 | 500,001   | 419  | 0         |

    Examples: maximum balance
      | limit                                                   | amount | code | loaded |
      | maximum balance is the card's balance plus Rp 30,000    | 30,000 | 200  | 30,000 |
      | maximum balance is the card's balance plus Rp 30,000    | 30,001 | 416  | 0      |

    Examples: monthly limit
      | limit                         | amount | code | loaded |
      | monthly limit is Rp 40,000    | 40,000 | 200  | 40,000 |
      | monthly limit is Rp 40,000    | 40,001 | 417  | 0      |

  Scenario: The monthly limit counts the month's earlier top-ups
    Given a fresh card
    And the card was topped up with Rp 25,000
    And KCI's monthly limit is Rp 40,000
    When the terminal tops up Rp 15,001
    Then the top-up ends with code 417
    When the terminal tops up Rp 15,000
    Then the top-up ends with code 200
    And the card's balance has grown by Rp 40,000
    And KCI counts 2 successful top-ups of the card

  Scenario: Top-ups one after the other on one card
    Given a fresh card
    When the terminal tops up Rp 10,000
    And the terminal tops up Rp 20,000
    And the terminal tops up Rp 30,000
    Then the top-up succeeds
    And the card's balance has grown by Rp 60,000
    And KCI counts 3 successful top-ups of the card
