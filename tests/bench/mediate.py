"""Mediation benchmark (issue 7): rating with a 20-rule chain against rating without rules.

The data is the rating benchmark's (tests/bench/rate.py: 20,000 prefixes, 3 tariffs per
call, buckets). The chain below has 20 rules of every kind, written the way an operator
would (most conditions false for most calls, a third of the numbers rewritten 8 -> 7, a
local set and tested in an if on every call) plus a dst validator. Figures: force
re-rating without rules and with them (calls/s), their ratio (target: rules cost at most
2x), and RuleSet.apply alone (calls/s), beside the cost-row ceiling of the same run.

    python -m tests.bench mediate [--n 200000]
"""

from __future__ import annotations

from pathlib import Path

from mbg import db
from mbg.mediation import call_from_row, parse_rules
from mbg.rating import INSERT_COST, force_month
from mbg.tariffs import load_reference

from .common import Figure, ceiling_rows_per_s, cost_rows_sample, timed
from .rate import ACCOUNTS, make_billing, make_month

RULES = """
chain = ["skip_unanswered", "strip_plus", "strip_punctuation", "skip_internal",
         "skip_emergency", "international_810", "dst_8_to_7", "local_dst", "mobile_10",
         "src_8_to_7", "src_local", "trunk", "by_trunk", "skip_test_calls",
         "default_cause", "sip_channel", "skip_blocked", "skip_answer_leg"]

[constants]
city = "7495"
national = 11
local = 7
internal = 4
emergency = ["01", "02", "03", "04", "101", "102", "103", "104", "112"]

[rules.skip_unanswered]
kind = "skip"
when = "billsec == 0"

[rules.strip_plus]
kind = "replace"
field = "dst"
map = [["^\\\\+", ""]]

[rules.strip_punctuation]
kind = "replace"
field = "dst"
when = "not matches(dst, '^[0-9]+$')"
map = [["[ ()-]", ""]]

[rules.skip_internal]
kind = "skip"
when = "len(dst) <= internal"

[rules.skip_emergency]
kind = "skip"
when = "dst in emergency"

[rules.international_810]
kind = "replace"
field = "dst"
when = "len(dst) > national"
map = [["^810", ""]]

[rules.dst_8_to_7]
kind = "replace"
field = "dst"
when = "len(dst) == national"
map = [["^8", "7"]]

[rules.local_dst]
kind = "prepend"
field = "dst"
when = "len(dst) == local"
value = "city"

[rules.mobile_10]
kind = "prepend"
field = "dst"
when = "len(dst) == 10 and dst.startswith('9')"
value = "'7'"

[rules.src_8_to_7]
kind = "replace"
field = "src"
when = "len(src) == national"
map = [["^8", "7"]]

[rules.src_local]
kind = "prepend"
field = "src"
when = "len(src) == local"
value = "city"

[rules.trunk]
kind = "set"
field = "$trunk"
value = "dstchannel[0:3].upper()"

[rules.by_trunk]
kind = "if"
when = "$trunk == 'C01'"
then = ["route_c01"]
else = ["route_other"]

[rules.route_c01]
kind = "set"
field = "$route"
value = "'c01'"

[rules.route_other]
kind = "set"
field = "$route"
value = "'other'"

[rules.skip_test_calls]
kind = "skip"
when = "src.startswith('0000') or $route == 'test'"

[rules.default_cause]
kind = "set"
field = "cause"
when = "cause == ''"
value = "'16'"

[rules.sip_channel]
kind = "replace"
field = "channel"
when = "channel.startswith('SIP/')"
map = [["^SIP/", ""]]

[rules.skip_blocked]
kind = "skip"
when = "dst[0:4] in ('7809', '8809')"

[rules.skip_answer_leg]
kind = "skip"
when = "extra['h323-call-origin'] == 'answer'"

[validate.dst]
required = true
type = "digits"
length = [10, 15]
"""


def run(n: int, workdir: Path) -> list[Figure]:
    rules = parse_rules(RULES, "bench")
    assert len(rules.rules) == 20
    billing_path = workdir / "billing.db"
    make_billing(billing_path)
    month_path = workdir / "2009-10-01.db"
    make_month(month_path, n)
    billing = db.connect(billing_path, "billing", readonly=True)
    ref = load_reference(billing, 2, "half-up")
    billing.close()

    conn = db.connect(month_path, "dataset")
    plain_s, plain = timed(force_month, conn, ref)
    ruled_s, ruled = timed(force_month, conn, ref, rules=rules)
    # Best of two for each: the machine is shared.
    plain_s = min(plain_s, timed(force_month, conn, ref)[0])
    ruled_s = min(ruled_s, timed(force_month, conn, ref, rules=rules)[0])
    cost_rows = conn.execute("SELECT count(*) FROM telephony_cost").fetchall()[0][0]
    calls = [call_from_row(r) for r in conn.execute(
        "SELECT source, calldate, src, dst, channel, dstchannel, duration, billsec, cause, "
        "callid, extra FROM telephony_log")]
    conn.close()
    assert plain.calls == ruled.calls == n

    def apply_all() -> None:
        apply = rules.apply
        for c in calls:  # outcomes dropped at once, as rating does
            apply(c)

    apply_s = min(timed(apply_all)[0] for _ in range(2))

    sample_calls = min(n, 200_000)
    sample = cost_rows_sample(sample_calls, ACCOUNTS)
    ceiling_calls = ceiling_rows_per_s(sample, workdir, sql=INSERT_COST) / max(cost_rows / n, 1e-9)

    slowdown = ruled_s / plain_s
    return [
        Figure("rating force, no rules", n / plain_s, "calls/s", ceiling_calls),
        Figure("rating force, 20-rule chain", n / ruled_s, "calls/s", ceiling_calls),
        Figure("slowdown with 20 rules", slowdown, "x", None, "<= 2", slowdown <= 2),
        Figure("RuleSet.apply alone, 20 rules", n / apply_s, "calls/s"),
        Figure("unrated by the rules (skipped, invalid)",
               sum(v for k, v in ruled.unrated.items() if k.startswith(("skipped", "invalid"))),
               "calls"),
    ]
