"""Reference backend: the seed's ``/topup-kci`` API (card-check, pending, update, confirm).

The backend never touches a card. It relays KCI's FeliCa commands to the frontend and the card's answers
back to KCI, over HTTP only (``docs/kci-api-contract.txt``), and keeps its own record of every top-up.

Layers, outermost first:

- :mod:`backend.api` is the HTTP edge: it reads the body (JSON or form), authenticates the terminal
  (:mod:`backend.auth`), parses the request into a typed value (:mod:`backend.validation`), calls the
  service and wraps the outcome in the seed's envelope ``{"response": {code, message, latency}, "data"}``.
  It is the only place where a :class:`backend.errors.BackendError` becomes a response code.
- :mod:`backend.service` holds the flow: idempotent replay of retried steps, the reservation lookup of
  ``/pending``, the suspect marking around the card write (update 5-7) and the transaction record.
- :mod:`backend.kci_client` speaks KCI's signed JSON API with connect and read timeouts
  (unreachable -> 502, timed out -> 504).
- :mod:`backend.store` keeps transactions, the last answer of every flow, terminal nonces and the
  ``reff_no`` sequence in SQLite (WAL), on one worker thread so the event loop never blocks on the disk.

Money is integer rupiah everywhere. A transaction whose card write may have happened but is not verified
is *suspect* from the moment the write is requested until update 7 verifies it; nothing ever marks it
failed or successful without KCI's word.
"""
