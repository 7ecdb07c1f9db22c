Feature: KCI faults
  KCI may be slow, answer an error, fail with a bare HTTP 500, drop the connection or say nothing.
  On each KCI call the backend answers the frontend with a clear code, and once KCI is well again the
  top-up finishes: no money lost, none loaded twice.

  Scenario Outline: KCI <call> fails with <fault>
    Given a fresh card
    And KCI answers <call> with a fault <fault>
    When the terminal tops up Rp 10,000
    Then the top-up stops at <point> with code <code>
    When the frontend completes the top-up of Rp 10,000
    Then the top-up succeeds
    And the card's balance has grown by Rp 10,000
    And KCI counts 1 successful top-up of the card

    Examples: error codes passed through
      | call                 | fault     | point        | code |
      | card-info step 1     | error 432 | card-check 1 | 432  |
      | card-info step 2     | error 500 | card-check 2 | 500  |
      | card-info step 3     | error 432 | card-check 3 | 432  |
      | reservation/check    | error 500 | pending      | 500  |
      | reservation/validate | error 432 | pending      | 432  |
      | reservation/create   | error 500 | pending      | 500  |
      | load-balance step 1  | error 432 | update 1     | 432  |
      | load-balance step 2  | error 500 | update 2     | 500  |
      | load-balance step 3  | error 432 | update 3     | 432  |
      | load-balance step 4  | error 500 | update 4     | 500  |
      | load-balance step 5  | error 432 | update 5     | 432  |
      | load-balance step 6  | error 500 | update 6     | 500  |
      | load-balance step 7  | error 432 | update 7     | 432  |
      | load-balance/confirm | error 500 | confirm      | 500  |

    Examples: bare HTTP 500, reset, empty answer
      | call                 | fault   | point        | code |
      | card-info step 1     | http500 | card-check 1 | 502  |
      | card-info step 2     | reset   | card-check 2 | 502  |
      | card-info step 3     | empty   | card-check 3 | 502  |
      | reservation/check    | reset   | pending      | 502  |
      | reservation/validate | http500 | pending      | 502  |
      | reservation/create   | empty   | pending      | 502  |
      | load-balance step 1  | reset   | update 1     | 502  |
      | load-balance step 2  | http500 | update 2     | 502  |
      | load-balance step 3  | empty   | update 3     | 502  |
      | load-balance step 4  | reset   | update 4     | 502  |
      | load-balance step 5  | http500 | update 5     | 502  |
      | load-balance step 6  | reset   | update 6     | 502  |
      | load-balance/confirm | reset   | confirm      | 502  |

    Examples: KCI did the work, then the connection dropped
      | call                 | fault       | point        | code |
      | reservation/create   | reset after | pending      | 502  |
      | load-balance step 5  | reset after | update 5     | 502  |
      | load-balance step 6  | reset after | update 6     | 502  |
      | load-balance/confirm | reset after | confirm      | 502  |

    @kci_timeout
    Examples: slower than the backend's timeout, or no answer at all
      | call                 | fault                  | point        | code |
      | card-info step 1     | delay past the timeout | card-check 1 | 504  |
      | card-info step 3     | hang                   | card-check 3 | 504  |
      | reservation/create   | delay past the timeout | pending      | 504  |
      | load-balance step 1  | hang                   | update 1     | 504  |
      | load-balance step 5  | delay past the timeout | update 5     | 504  |
      | load-balance step 6  | hang                   | update 6     | 504  |
      | load-balance/confirm | delay past the timeout | confirm      | 504  |

  Scenario Outline: KCI's answer to update 7 is lost (<fault>): the load is neither lost nor repeated
    The card was written at update 5 and KCI may have verified it; the backend asks KCI (and the
    frontend sends update 7 once more) instead of leaving a loaded card unconfirmed.
    Given a fresh card
    And KCI answers load-balance step 7 with a fault <fault>
    When the terminal tops up Rp 10,000
    Then the top-up succeeds
    And the card's balance has grown by Rp 10,000
    And KCI counts 1 successful top-up of the card

    Examples:
      | fault                  |
      | empty                  |
      | reset after            |
      | delay past the timeout |
