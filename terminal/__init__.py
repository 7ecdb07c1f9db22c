"""The frontend's role as a library: run a KMT top-up against any ``/topup-kci`` backend.

Layers, each in one module:

- :mod:`terminal.api`: the seed's requests and envelopes, parsed once into typed values;
- :mod:`terminal.flow`: the protocol as sans-I/O generators (card-check 1-3, pending, update 1-7,
  confirm; what is carried between steps; what an interruption means for the money);
- :mod:`terminal.readers`: card readers (in process, HTTP virtual reader) and
  :mod:`terminal.pcsc_reader` (pyscard/PC/SC);
- :mod:`terminal.terminal`: drivers (sync with ``http.client``, async with aiohttp) that perform the
  flows' I/O, apply the reader retry policy and record every call with its latency.
"""
