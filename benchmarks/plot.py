"""Plot a benchmark's time series: offered vs stored rate, backlog, latency per second.

    python -m benchmarks.plot benchmarks/results/e2e-quick.json docs/e2e-quick.png

Reads the ``timeseries`` of a ``benchmarks.e2e`` JSON; needs matplotlib (the ``bench``
extra: ``pip install -e '.[bench]'``), which the runtime does not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def plot(result: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = result["timeseries"]
    t = [r["t_s"] for r in ts]
    fig, (a, b, c) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    a.plot(t, [r["offered_fixes"] for r in ts], label="offered fixes/s")
    a.plot(t, [r["stored_fixes"] for r in ts], label="stored fixes/s")
    a.plot(t, [r["offered_messages"] for r in ts], label="offered messages/s", linestyle=":")
    a.set_ylabel("per second")
    a.legend(loc="upper right")
    b.plot(t, [r["backlog_fixes"] for r in ts], color="tab:red")
    b.set_ylabel("backlog (fixes)")
    for key, style in (("p50_ms", "-"), ("p99_ms", "--")):
        pts = [(r["t_s"], r[key]) for r in ts if r[key] is not None]
        c.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"publish -> stored {key[:3]}")
    c.set_yscale("log")
    c.set_ylabel("ms")
    c.set_xlabel("seconds since the first publish")
    c.legend(loc="upper right")
    fig.suptitle(f"{result.get('devices')} devices, {result.get('messages_per_s')} msg/s, "
                 f"{result.get('fixes_per_s')} fixes/s stored, lost {result.get('lost')}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    plot(json.loads(Path(args[0]).read_text()), Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
