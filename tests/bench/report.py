"""The short human table of a bench run (bench-results/bench.md), from its JSON."""

from __future__ import annotations

from typing import Any


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Bench {results['measured_at']}{' (smoke)' if results.get('smoke') else ''}", ""]
    machine = results.get("machine", {})
    lines += [
        f"{machine.get('cpus')} CPUs, load {machine.get('load_before')} -> {machine.get('load_after')}",
        "",
    ]
    for name in ("ring", "sweep", "core", "waiting"):
        if isinstance(results.get(name), dict) and "error" in results[name]:
            lines += [f"## {name}: failed", "", results[name]["error"], ""]
    if "ring" in results and "paths" in results["ring"]:
        ring = results["ring"]
        lines += [
            f"## Time-to-ring (trunk INVITE sent -> listener INVITE received), {ring['calls_per_path']} calls"
            " per path, interleaved",
            "",
            "| path | n | p50 ms | p90 ms | p99 ms | max ms | rang nobody |",
            "|---|---|---|---|---|---|---|",
        ]
        for path, row in ring["paths"].items():
            lines.append(
                f"| {path} | {row['n']} | {_ms(row['p50_ms'])} | {_ms(row['p90_ms'])} | {_ms(row['p99_ms'])}"
                f" | {_ms(row['max_ms'])} | {row['rang_nobody']} |"
            )
        r = ring["ratios"]
        lines += [
            "",
            "| ratio | p50 | p90 | p99 |",
            "|---|---|---|---|",
            *(
                f"| helpline / {base} | {_ms(r[f'helpline_over_{base}_p50'])} | {_ms(r[f'helpline_over_{base}_p90'])}"
                f" | {_ms(r[f'helpline_over_{base}_p99'])} |"
                for base in ("router", "queue")
            ),
            "",
        ]
    if "sweep" in results and "rates" in results["sweep"]:
        sweep = results["sweep"]
        lines += [
            f"## Capacity ({sweep['listeners']} listeners answering, callers hold {sweep['hold_ms']} ms,"
            f" {sweep['duration_s']:g} s per rate)",
            "",
            "| calls/s | offered | lost | fallback | screen failures | ring p50 ms | ring p99 ms"
            " | service CPU ms/call | Asterisk CPU ms/call |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in sweep["rates"]:
            ring_row = row["time_to_ring"]
            lines.append(
                f"| {row['rate_per_s']:g} | {row['offered']} | {row['lost']} | {row['fallback']}"
                f" | {row['screen_failures']} | {_ms(ring_row['p50_ms'])} | {_ms(ring_row['p99_ms'])}"
                f" | {row['service_cpu_ms_per_call']:g} | {row['asterisk_cpu_ms_per_call']:g} |"
            )
        lines.append("")
    if isinstance(results.get("core"), list):
        lines += [
            "## Core decisions (µs per event)",
            "",
            "| floor | listeners | waiting | p50 µs | p99 µs |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['floor']} | {row['listeners']} | {row['waiting']} | {row['p50_us']:g} | {row['p99_us']:g} |"
            for row in results["core"]
        ]
        lines.append("")
    if "waiting" in results:
        lines += ["## Waiting", "", "```", str(results["waiting"]), "```", ""]
    return "\n".join(lines)
