"""``make bench``: how fast chats become appeals under Bitrix24's rate limit, and against peers.

The limit on throughput is REST round trips, not CPU, so the bench counts the requests the
sandbox answered per appeal and compares the drain time with the floor the leaky bucket sets;
it also times the host's webhook acknowledgements, the plugin's CPU per appeal and the host's
peak memory, and fetches the same records through fast_bitrix24 and b24pysdk for the ratios.
Importing it runs nothing: ``python -m tests.bench`` does (see ``docs/benchmarks.md``).
"""

from tests.bench.core import Report, run_bench
from tests.bench.report import format_report, targets

__all__ = ["Report", "format_report", "run_bench", "targets"]
