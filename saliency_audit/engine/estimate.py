"""The time-left estimate: the plan's passes still to come, at the rate the run has spent them so far.

With sequential verdicts (the default) each (criterion, method) pair spends between its first look's passes
and its last look's (``plan["per_pair_least"]`` and ``plan["per_pair"]``).  Where in that range the pairs to
come will land is read from the pairs already decided: ``taken`` is the share of their range they spent, and
the pairs to come are expected to spend their least plus that share of their range.  The seconds are those
passes at the run's rate so far.  The first estimate waits until the first criterion of the run's order has
decided every method (the run runs cheapest criterion first: every method's maps have then been computed
once, so the rate is not a single cheap method's; a criterion the run skips, which costs nothing, does not
count), or a minute if that takes longer.
``benchmarks/bench_estimate.py`` measures its error against the truth on the demo and on a densenet121.
"""
from __future__ import annotations

#: the first estimate is made once the first criterion is complete, or after this many seconds (with at least
#: ``MIN_SHARE`` of the planned passes spent: a rate from a handful of passes is noise)
AFTER_S, MIN_SHARE = 60.0, 0.02


def ready(plan: dict, done: dict[str, int], spent: int, seconds: float) -> bool:
    """Whether enough has run for the first estimate (see the module's docstring)."""
    per = plan.get("per_pair") or {}
    if spent <= 0 or not per:
        return False
    costly = [k for k, v in per.items() if v]  # per_pair follows the run's order; a skipped criterion costs none
    first = costly[0].split("[", 1)[0] if costly else None
    complete = first is not None and all(k in done for k in per if k.split("[", 1)[0] == first)
    return complete or (seconds >= AFTER_S and spent >= MIN_SHARE * plan.get("image_passes", 0))


def estimate(plan: dict, done: dict[str, int], spent: int, seconds: float) -> dict:
    """{"after_passes", "after_seconds", "seconds_per_1000_passes", "seconds_left", "seconds_left_at_least",
    "seconds_left_at_most", "range_taken"} from the plan, the passes of the pairs decided so far (``done``,
    "criterion[subject]" -> passes), and the run's passes and seconds since the plan."""
    most = plan.get("per_pair") or {}
    least = plan.get("per_pair_least") or most
    rate = seconds / spent
    lo_done = sum(least.get(k, most[k]) for k in done if k in most)
    hi_done = sum(most[k] for k in done if k in most)
    got = sum(v for k, v in done.items() if k in most)
    # no decided pair with a range to read yet (none sequential, or none costing passes): the middle
    taken = 0.5 if hi_done <= lo_done else min(max((got - lo_done) / (hi_done - lo_done), 0.0), 1.0)
    to_come = [k for k in most if k not in done]
    lo = sum(least.get(k, most[k]) for k in to_come)
    hi = sum(most[k] for k in to_come)
    out = {"after_passes": spent, "after_seconds": round(seconds, 1), "seconds_per_1000_passes": round(1000 * rate, 3),
           "seconds_left": round((lo + taken * (hi - lo)) * rate, 1), "seconds_left_at_most": round(hi * rate, 1)}
    if "per_pair_least" in plan:
        out.update(seconds_left_at_least=round(lo * rate, 1), range_taken=round(taken, 3))
    return out


def estimate_text(est: dict) -> str:
    """The estimate in one terminal line."""
    head = f"audit plan: {est['after_passes']:,} passes in {est['after_seconds']:.0f} s; about " \
           f"{est['seconds_left'] / 60:.1f} min left on this device"
    if "seconds_left_at_least" in est:
        return head + (f" (between {est['seconds_left_at_least'] / 60:.1f} and {est['seconds_left_at_most'] / 60:.1f}"
                       f": the verdicts so far took {100 * est['range_taken']:.0f} % of their looks' range)")
    return head
