"""Property-based requests to every public route of the host, as a stranger would send them.

The host and the sandbox portal run as real processes (``tests.servers``), the way ``make run``
starts them, and every request goes over one keep-alive connection. Whatever arrives, the host
answers below 500 and keeps the connection; a refused request (4xx), or a GET, HEAD or
OPTIONS, leaves every table of the database as it was. ``tests/test_fuzz.py`` is the bounded
run of ``make test``; ``python -m tests.fuzz`` (``make fuzz``) the long one.
"""
