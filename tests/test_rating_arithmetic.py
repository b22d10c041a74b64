"""Rating arithmetic pinned by expectations computed by hand (SPEC section 7).

Reference data goes in through `mbg load`, calls into a real dataset, rating through
`mbg rate`; the expectations are worked out in the comments beside them.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from mbg.money import round_to_minor
from mbg.tariffs import Rate, billed_seconds

from .rating_helpers import add_calls, amounts, call, costs, mbg, query, setup_root, unrated

A1 = "4951110000"
BASE = dict(
    accounts="A1,Alpha\nA2,Beta\nA3,Gamma",
    numbers=f"{A1},A1,2009-01-01,",
    services="phone,Phone,,,T",
    subscriptions="A1,phone,2009-01-01,",
)


def rate(root, month="2009-10"):
    result = mbg("rate", month, "--root", root)
    assert result.exit_code == 0, result.output
    return result


def test_increments_by_hand(tmp_path):
    # price 0.60 a minute is one kopeck a second, so the amount is the billed seconds.
    root = setup_root(tmp_path / "r", **BASE, tariffs="""
T,1,,0.60,1,1,,,
T,2,,1.20,60,60,,,
T,3,,0.60,30,6,,,
T,4,,0.60,90,60,,,
T,5,,0.60,45,30,,,
T,6,,0.45,60,60,,,
""")
    path = add_calls(root, [
        call("2009-10-01 10:00:00", A1, "1000", 61, "1/1 61s"),      # 61 s -> 0.61
        call("2009-10-01 10:00:01", A1, "2000", 61, "60/60 61s"),    # 120 s x 1.20/60 -> 2.40
        call("2009-10-01 10:00:02", A1, "2000", 60, "60/60 60s"),    # 60 s -> 1.20
        call("2009-10-01 10:00:03", A1, "3000", 10, "30/6 10s"),     # 30 s minimum -> 0.30
        call("2009-10-01 10:00:04", A1, "3000", 31, "30/6 31s"),     # 30 + 6 = 36 s -> 0.36
        call("2009-10-01 10:00:05", A1, "3000", 37, "30/6 37s"),     # 30 + 12 = 42 s -> 0.42
        call("2009-10-01 10:00:06", A1, "4000", 91, "90/60 91s"),    # 90 + 60 = 150 s -> 1.50
        call("2009-10-01 10:00:07", A1, "4000", 90, "90/60 90s"),    # 90 s -> 0.90
        call("2009-10-01 10:00:08", A1, "4000", 1, "90/60 1s"),      # 90 s -> 0.90
        call("2009-10-01 10:00:09", A1, "5000", 46, "45/30 46s"),    # 45 + 30 = 75 s -> 0.75
        call("2009-10-01 10:00:10", A1, "5000", 45, "45/30 45s"),    # 45 s -> 0.45
        call("2009-10-01 10:00:11", A1, "5000", 76, "45/30 76s"),    # 45 + 60 = 105 s -> 1.05
        call("2009-10-01 10:00:12", A1, "6000", 61, "0.45 61s"),     # 120 s x 0.45/60 = 0.90
        call("2009-10-01 10:00:13", A1, "6000", 0, "unanswered"),    # no cost, rated
    ])
    rate(root)
    seconds = {k: v[0][4] for k, v in costs(path).items()}
    assert seconds == {"1/1 61s": 61, "60/60 61s": 120, "60/60 60s": 60, "30/6 10s": 30,
                       "30/6 31s": 36, "30/6 37s": 42, "90/60 91s": 150, "90/60 90s": 90,
                       "90/60 1s": 90, "45/30 46s": 75, "45/30 45s": 45, "45/30 76s": 105,
                       "0.45 61s": 120}
    assert amounts(path) == {"1/1 61s": 61, "60/60 61s": 240, "60/60 60s": 120, "30/6 10s": 30,
                             "30/6 31s": 36, "30/6 37s": 42, "90/60 91s": 150, "90/60 90s": 90,
                             "90/60 1s": 90, "45/30 46s": 75, "45/30 45s": 45, "45/30 76s": 105,
                             "0.45 61s": 90}
    assert "unanswered" not in unrated(path)
    assert query(path, "SELECT count(*) FROM telephony_log WHERE is_new = 1") == [(0,)]


def test_free_seconds_and_connect_fee(tmp_path):
    # free 5 s, 1/1 at 0.60 (a kopeck a second), connect fee 0.07
    root = setup_root(tmp_path / "r", **BASE, tariffs="T,,,0.60,1,1,0.07,5,")
    path = add_calls(root, [
        call("2009-10-02 09:00:00", A1, "111", 5, "5s"),   # within free seconds: 0 s, fee 0.07
        call("2009-10-02 09:00:01", A1, "111", 6, "6s"),   # 6 s (all of it) -> 0.06 + 0.07
        call("2009-10-02 09:00:02", A1, "111", 1, "1s"),   # 0 s -> 0.07
    ])
    rate(root)
    assert {k: (v[0][4], v[0][6]) for k, v in costs(path).items()} == {
        "5s": (0, 7), "6s": (6, 13), "1s": (0, 7)}


def test_bucket_runs_out_mid_call_and_fee_inside_bundle(tmp_path):
    # 60/60 at 1.00 a minute, connect fee 0.10, bucket of 120 s a month
    root = setup_root(tmp_path / "r", **BASE, tariffs="T,8,,1.00,60,60,0.10,,m",
                      buckets="T,m,120")
    path = add_calls(root, [
        call("2009-10-03 08:00:00", A1, "800", 50, "a"),   # 60 s, all from the bucket: fee 0.10
        call("2009-10-03 09:00:00", A1, "800", 100, "b"),  # 120 s: 60 left in bucket, 60 paid: 1.10
        call("2009-10-03 10:00:00", A1, "800", 10, "c"),   # 60 s, bucket empty: 1.10
    ])
    rate(root)
    assert {k: (v[0][4], v[0][5], v[0][6]) for k, v in costs(path).items()} == {
        "a": (60, 60, 10), "b": (120, 60, 110), "c": (60, 0, 110)}
    assert query(path, "SELECT * FROM telephony_counter") == [("A1", "T", "m", 120)]


@pytest.mark.parametrize("mode,expected", [
    # 0.30 a minute, 1/1: 1 s is 0.005 (half a kopeck), 3 s is 0.015, 5 s is 0.025
    ("half-up", {"1s": 1, "3s": 2, "5s": 3, "2s": 1}),
    ("half-even", {"1s": 0, "3s": 2, "5s": 2, "2s": 1}),
    ("up", {"1s": 1, "3s": 2, "5s": 3, "2s": 1}),
    ("down", {"1s": 0, "3s": 1, "5s": 2, "2s": 1}),
])
def test_rounding_modes_at_exactly_half_a_kopeck(tmp_path, mode, expected):
    root = setup_root(tmp_path / "r", f'rounding = "{mode}"\n', **BASE, tariffs="T,,,0.30,1,1,,,")
    path = add_calls(root, [call(f"2009-10-04 10:00:0{s}", A1, "1", s, f"{s}s") for s in (1, 2, 3, 5)])
    rate(root)
    assert amounts(path) == expected  # 2 s is 0.01 exactly in every mode


def test_rounding_up_and_down_off_the_half(tmp_path):
    # 0.10 a minute, 1/1: 7 s is 0.011666.. -> up 0.02, down 0.01, half-up 0.01
    for mode, want in (("up", 2), ("down", 1), ("half-up", 1), ("half-even", 1)):
        root = setup_root(tmp_path / mode, f'rounding = "{mode}"\n', **BASE, tariffs="T,,,0.10,1,1,,,")
        path = add_calls(root, [call("2009-10-04 10:00:00", A1, "1", 7, "7s")])
        rate(root)
        assert amounts(path) == {"7s": want}, mode


def test_money_decimals_zero_and_three(tmp_path):
    # 1.234 a minute for 30 s = 0.617: decimals 3 -> 617; decimals 0 -> 1 (half-up)
    for decimals, want in ((3, 617), (0, 1)):
        root = setup_root(tmp_path / str(decimals), f"money_decimals = {decimals}\n", **BASE,
                          tariffs="T,,,1.234,1,1,,,")
        path = add_calls(root, [call("2009-10-04 10:00:00", A1, "1", 30, "c")])
        rate(root)
        assert amounts(path) == {"c": want}


def test_number_moved_mid_month_and_subscription_starting_mid_month(tmp_path):
    root = setup_root(
        tmp_path / "r",
        accounts="A1,Alpha\nA2,Beta",
        numbers="4951234567,A1,2009-01-01,2009-10-15\n4951234567,A2,2009-10-15,",
        tariffs="T1,,,0.60,1,1,,,\nT2,,,1.20,1,1,,,",
        services="p1,Plan 1,,,T1\np2,Plan 2,,,T2",
        subscriptions="A1,p1,2009-01-01,\nA2,p2,2009-10-20,",
    )
    path = add_calls(root, [
        call("2009-10-14 23:59:59", "4951234567", "1", 10, "A1 last second"),  # A1, T1: 0.10
        call("2009-10-15 00:00:00", "4951234567", "1", 10, "A2 first day"),    # A2, no plan yet
        call("2009-10-19 23:59:59", "4951234567", "1", 10, "A2 before plan"),  # A2, no plan yet
        call("2009-10-20 00:00:00", "4951234567", "1", 10, "A2 plan"),         # A2, T2: 0.20
    ])
    rate(root)
    assert {k: [(r[0], r[1], r[6]) for r in v] for k, v in costs(path).items()} == {
        "A1 last second": [("T1", "A1", 10)], "A2 plan": [("T2", "A2", 20)]}
    assert unrated(path) == {"A2 first day": [("", "no tariff")],
                             "A2 before plan": [("", "no tariff")]}


def test_call_at_the_last_second_of_the_month(tmp_path):
    root = setup_root(
        tmp_path / "r", accounts="A1,Alpha", numbers=f"{A1},A1,2009-10-31,2009-11-01",
        tariffs="T,,,0.60,60,60,,,", services="phone,Phone,,,T",
        subscriptions="A1,phone,2009-10-31,2009-11-01",
    )
    path = add_calls(root, [call("2009-10-31 23:59:59", A1, "1", 1, "last")])
    rate(root)
    assert costs(path) == {"last": [("T", "A1", "", "1", 60, 0, 60)]}
    assert rate(root).output.count("rated 0 calls") == 1  # nothing new the second time


def test_longest_prefix_with_empty_and_overlapping_prefixes(tmp_path):
    root = setup_root(tmp_path / "r", **BASE, tariffs="""
T,,any,0.60,1,1,,,
T,7,russia,1.20,1,1,,,
T,749,moscow-region,1.80,1,1,,,
T,7495,moscow,2.40,1,1,,,
T,74951,moscow-1,3.00,1,1,,,
T,8,,0.60,1,1,,,
T,80,,1.20,1,1,,,
""")
    path = add_calls(root, [
        call("2009-10-05 10:00:00", A1, "74951234567", 60, "7495"),   # 74951 -> 3.00
        call("2009-10-05 10:00:01", A1, "74991234567", 60, "749"),    # 749 -> 1.80
        call("2009-10-05 10:00:02", A1, "78121234567", 60, "7"),      # 7 -> 1.20
        call("2009-10-05 10:00:03", A1, "4951234", 60, "none"),       # '' -> 0.60
        call("2009-10-05 10:00:04", A1, "7", 60, "exactly 7"),        # 7 -> 1.20
        call("2009-10-05 10:00:05", A1, "", 60, "empty dst"),         # '' -> 0.60
        call("2009-10-05 10:00:06", A1, "8", 60, "8 not 80"),         # 8 -> 0.60
    ])
    rate(root)
    assert {k: (v[0][2], v[0][6]) for k, v in costs(path).items()} == {
        "7495": ("74951", 300), "749": ("749", 180), "7": ("7", 120), "none": ("", 60),
        "exactly 7": ("7", 120), "empty dst": ("", 60), "8 not 80": ("8", 60)}
    directions = dict(query(path, "SELECT prefix, direction FROM telephony_cost"))
    assert directions["74951"] == "moscow-1" and directions[""] == "any"


def test_no_rate_without_the_empty_prefix(tmp_path):
    root = setup_root(tmp_path / "r", **BASE, tariffs="T,7,,1.20,1,1,,,")
    path = add_calls(root, [call("2009-10-05 10:00:00", A1, "8123", 60, "c")])
    rate(root)
    assert costs(path) == {} and unrated(path) == {"c": [("T", "no rate")]}


def test_three_tariffs_route_by_channel_and_unknown_account(tmp_path):
    root = setup_root(
        tmp_path / "r",
        accounts="A1,Alpha\nA2,Trunk customer",
        numbers=f"{A1},A1,2009-01-01,\nE1/5,A2,2009-01-01,",
        tariffs="T,,,0.60,1,1,,,\nX,,,0.30,60,60,,,\nPROV,,,0.12,1,1,,,\nPROV2,,,9.99,1,1,,,",
        routes="C01*,PROV\nC0*,PROV2",
        services="phone,Phone,,,T\nextra,Extra,,,X",
        subscriptions="A1,phone,2009-01-01,\nA1,extra,2009-01-01,\nA2,phone,2009-01-01,",
    )
    path = add_calls(root, [
        call("2009-10-06 10:00:00", A1, "123", 30, "three", dstchannel="C0100517"),
        call("2009-10-06 10:00:01", "999", "123", 30, "by channel", channel="E1/5",
             dstchannel="C0200001"),
        call("2009-10-06 10:00:02", "999", "123", 30, "nobody", dstchannel="C0100001"),
        call("2009-10-06 10:00:03", "999", "123", 30, "nobody, no route", dstchannel="Z"),
    ])
    rate(root)
    got = {k: [(r[0], r[1], r[4], r[6]) for r in v] for k, v in costs(path).items()}
    assert got == {
        # T: 30 s x 0.60/60 = 0.30; X: 60 s x 0.30/60 = 0.30; PROV: 30 s x 0.12/60 = 0.06
        "three": [("PROV", "A1", 30, 6), ("T", "A1", 30, 30), ("X", "A1", 60, 30)],
        # account by channel; the first matching route is PROV2: 30 s x 9.99/60 = 4.995 -> 5.00
        "by channel": [("PROV2", "A2", 30, 500), ("T", "A2", 30, 30)],
        "nobody": [("PROV", "", 30, 6)],
    }
    assert unrated(path) == {"nobody": [("", "unknown account")],
                             "nobody, no route": [("", "unknown account")]}
    roles = query(path, "SELECT tariff, group_concat(DISTINCT role) FROM telephony_cost "
                        "GROUP BY tariff ORDER BY tariff")
    assert roles == [("PROV", "route"), ("PROV2", "route"), ("T", "plan"), ("X", "plan")]


def test_a_plan_tariff_that_is_also_the_route_is_rated_once_as_the_plan(tmp_path):
    root = setup_root(tmp_path / "r", accounts="A1,Alpha", numbers=f"{A1},A1,2009-01-01,",
                      tariffs="T,,,0.60,1,1,,,", routes="C01*,T", services="phone,Phone,,,T",
                      subscriptions="A1,phone,2009-01-01,")
    path = add_calls(root, [
        call("2009-10-06 10:00:00", A1, "123", 30, "own", dstchannel="C0100517"),
        call("2009-10-06 10:00:01", "999", "123", 30, "nobody", dstchannel="C0100517"),
    ])
    rate(root)
    assert query(path, "SELECT l.callid, c.tariff, c.account, c.amount, c.role FROM telephony_cost c "
                       "JOIN telephony_log l ON l.id = c.log_id ORDER BY l.callid") == [
        ("nobody", "T", "", 30, "route"), ("own", "T", "A1", 30, "plan")]


def test_rate_naming_an_unknown_bucket_stops_rating(tmp_path):
    root = setup_root(tmp_path / "r", **BASE, tariffs="T,,,0.60,1,1,,,nobucket")
    path = add_calls(root, [call("2009-10-05 10:00:00", A1, "1", 60, "c")])
    result = mbg("rate", "2009-10", "--root", root)
    assert result.exit_code == 2
    assert "'T'" in result.output and "'nobucket'" in result.output
    assert result.output.count("\n") == 1
    assert query(path, "SELECT count(*) FROM telephony_log WHERE is_new = 1") == [(1,)]


def test_integer_arithmetic_equals_the_decimal_definition():
    rng = random.Random(5)
    for _ in range(20_000):
        price = f"{rng.randrange(0, 500)}.{rng.randrange(0, 10**4):0{rng.randrange(1, 5)}d}"
        fee = rng.choice(["0", "0.05", f"{rng.randrange(0, 100)}.{rng.randrange(0, 1000):03d}"])
        decimals = rng.choice([0, 2, 2, 3])
        mode = rng.choice(["half-up", "half-even", "up", "down"])
        first, step = rng.choice([(1, 1), (60, 60), (30, 6), (90, 60), (45, 30)])
        r = Rate("T", "", "", price, first, step, fee, rng.choice([0, 3]), None, decimals, mode)
        billsec = rng.randrange(1, 4000)
        b = billed_seconds(billsec, r)
        c = rng.randrange(0, b + 1)
        exact = Decimal(fee) + Decimal(c) * Decimal(price) / Decimal(60)
        assert r.amount(c) == round_to_minor(exact, decimals, mode), (price, fee, c, decimals, mode)


def test_bad_month_and_missing_dataset(tmp_path):
    root = setup_root(tmp_path / "r", **BASE, tariffs="T,,,0.60,1,1,,,")
    result = mbg("rate", "2009-13", "--root", root)
    assert result.exit_code == 2 and "bad month" in result.output
    result = mbg("rate", "2009-10", "--root", root)
    assert result.exit_code == 0 and "nothing to rate" in result.output
    assert not (root / "dataset" / "telephony" / "2009-10-01.db").exists()


def test_longest_prefix_of_many_tariffs_equals_brute_force(tmp_path):
    """Random overlapping prefixes in three tariffs: every cost row has the longest prefix
    of its tariff, and a tariff with no prefix of the number gives 'no rate'."""
    rng = random.Random(3)
    tariff_rows, prefixes = [], {}
    for name in ("T", "U", "R"):
        mine = {"".join(rng.choice("789") for _ in range(rng.randrange(1, 5))) for _ in range(60)}
        if name == "U":
            mine.add("")
        prefixes[name] = mine
        tariff_rows += [f"{name},{p},,0.60,1,1,,," for p in sorted(mine)]
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers=f"{A1},A1,2009-01-01,",
                      tariffs="\n".join(tariff_rows), routes="*,R",
                      services="t,,,,T\nu,,,,U", subscriptions="A1,t,2009-01-01,\nA1,u,2009-01-01,")
    calls = [call(f"2009-10-07 10:{i // 60:02d}:{i % 60:02d}", A1,
                  "".join(rng.choice("789") for _ in range(rng.randrange(0, 7))), 60, f"c{i}")
             for i in range(1500)]
    path = add_calls(root, calls)
    rate(root)
    _assert_longest_prefixes(path, calls, prefixes)


def _assert_longest_prefixes(path, calls: list[tuple], prefixes: dict[str, set[str]]) -> int:
    """Each call's cost row of each tariff has the tariff's longest prefix of the number,
    by brute force, or 'no rate' when it has none. Returns how many are longer than 5."""
    got = {(callid, r[0]): r[2] for callid, rows in costs(path).items() for r in rows}
    missing = {(callid, t) for callid, rows in unrated(path).items() for t, reason in rows
               if reason == "no rate"}
    longer = 0
    for c in calls:
        for name, mine in prefixes.items():
            best = max((p for p in mine if c[3].startswith(p)), key=len, default=None)
            if best is None:
                assert (c[9], name) in missing
            else:
                assert got[(c[9], name)] == best, (c[3], name)
                longer += len(best) > 5
    return longer


def _nested_prefixes(rng: random.Random, count: int) -> set[str]:
    """Prefixes of 1 to 9 characters over a two-letter alphabet: many nest, and many are
    longer than the head the rating loop looks up first (tariffs.PREFIX_HEAD)."""
    return {"".join(rng.choice("78") for _ in range(rng.randrange(1, 10))) for _ in range(count)}


def _numbers_under(rng: random.Random, prefixes: set[str], count: int) -> list[str]:
    """Half of them a prefix plus up to four more characters, half random (0 to 12)."""
    ordered = sorted(prefixes)
    return [rng.choice(ordered) + "".join(rng.choice("78") for _ in range(rng.randrange(0, 5)))
            if i % 2 else "".join(rng.choice("78") for _ in range(rng.randrange(0, 13)))
            for i in range(count)]


def test_longest_prefix_longer_than_the_head_equals_brute_force(tmp_path):
    """Prefixes up to 9 characters nested under shorter ones, in two tariffs: every cost
    row has the longest prefix of its tariff (the loop finds the longest of all tariffs'
    prefixes from the number's first characters, then tries the longer ones)."""
    rng = random.Random(8)
    prefixes = {"T": _nested_prefixes(rng, 150) | {""}, "U": _nested_prefixes(rng, 150)}
    tariff_rows = [f"{name},{p},,0.60,1,1,,," for name, mine in prefixes.items()
                   for p in sorted(mine)]
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers=f"{A1},A1,2009-01-01,",
                      tariffs="\n".join(tariff_rows), services="t,,,,T\nu,,,,U",
                      subscriptions="A1,t,2009-01-01,\nA1,u,2009-01-01,")
    numbers = _numbers_under(rng, prefixes["T"] | prefixes["U"], 2000)
    assert sum(len(n) > 5 for n in numbers) > 1000
    calls = [call(f"2009-10-08 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}", A1, number,
                  60, f"c{i}") for i, number in enumerate(numbers)]
    path = add_calls(root, calls)
    rate(root)
    # many calls rated under a prefix longer than the head
    assert _assert_longest_prefixes(path, calls, prefixes) > 300


def test_reference_longest_prefix_equals_brute_force(tmp_path, monkeypatch):
    """Reference.longest_prefix, the loop's way, with a cache of heads so small that it is
    cleared again and again; numbers shorter than the head, and not digits, too."""
    from mbg import tariffs

    from .rating_helpers import reference

    rng = random.Random(9)
    prefixes = _nested_prefixes(rng, 300) | {"+7", "+7495", "+74951234"}
    root = setup_root(tmp_path / "r", tariffs="\n".join(f"T,{p},,0.60,1,1,,,"
                                                        for p in sorted(prefixes)))
    monkeypatch.setattr(tariffs, "ROUTE_CACHE_LIMIT", 7)
    ref = reference(root)
    numbers = _numbers_under(rng, prefixes, 3000) + ["", "+", "+7", "+749512345", "x7"]
    for number in numbers:
        best = max((p for p in prefixes if number.startswith(p)), key=len, default=None)
        assert ref.longest_prefix(number) == best, number
    assert 0 < len(ref.heads) <= 7


def test_account_by_src_else_channel_when_either_changes_mid_month(tmp_path):
    root = setup_root(
        tmp_path / "r",
        accounts="A1,x\nA2,y\nA3,z",
        numbers="E1/5,A1,2009-01-01,2009-10-10\nE1/5,A2,2009-10-10,\n"
                "222,A3,2009-10-20,",
        tariffs="T,,,0.60,1,1,,,", services="phone,,,,T",
        subscriptions="A1,phone,2009-01-01,\nA2,phone,2009-01-01,\nA3,phone,2009-01-01,",
    )
    path = add_calls(root, [
        call("2009-10-09 12:00:00", "999", "1", 10, "channel A1", channel="E1/5"),
        call("2009-10-10 12:00:00", "999", "1", 10, "channel A2", channel="E1/5"),
        call("2009-10-19 12:00:00", "222", "1", 10, "src not yet: channel", channel="E1/5"),
        call("2009-10-20 12:00:00", "222", "1", 10, "src A3", channel="E1/5"),
        call("2009-10-19 12:00:00", "222", "1", 10, "nobody", channel="E9"),
    ])
    rate(root)
    assert {k: v[0][1] for k, v in costs(path).items()} == {
        "channel A1": "A1", "channel A2": "A2", "src not yet: channel": "A2", "src A3": "A3"}
    assert unrated(path) == {"nobody": [("", "unknown account")]}


@pytest.mark.parametrize("decimals", [0, 2, 3])
@pytest.mark.parametrize("mode", ["half-up", "half-even", "up", "down"])
def test_rated_amounts_equal_the_decimal_definition(tmp_path, mode, decimals):
    """The rating loop's own integer arithmetic (not Rate.amount) against SPEC 7.5 and 7.7
    computed here with Decimal, on random rates and calls: every stored amount, exactly."""
    from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP

    rounding = {"half-up": ROUND_HALF_UP, "half-even": ROUND_HALF_EVEN,
                "up": ROUND_UP, "down": ROUND_DOWN}[mode]
    rng = random.Random(f"{mode}-{decimals}")
    rates, calls, expected = [], [], {}
    for i in range(300):
        price = f"{rng.randrange(0, 100)}.{rng.randrange(0, 10000):04d}"
        fee = f"{rng.randrange(0, 3)}.{rng.randrange(0, 10 ** decimals):0{decimals}d}" if decimals else str(rng.randrange(0, 3))
        first, step = rng.choice([(1, 1), (60, 60), (30, 6), (90, 60), (45, 30), (10, 7)])
        free = rng.choice([0, 0, 3, 10])
        prefix = f"{i:04d}"
        rates.append(f"T,{prefix},,{price},{first},{step},{fee},{free},")
        billsec = rng.choice([1, 2, 3, 10, 29, 30, 31, 59, 60, 61, 89, 90, 91, rng.randrange(1, 4000)])
        calls.append(call(f"2009-10-05 10:{i // 60:02d}:{i % 60:02d}", A1, prefix + "555", billsec, f"c{i}"))
        if billsec <= free:
            billed = 0
        elif billsec <= first:
            billed = first
        else:
            billed = first + -(-(billsec - first) // step) * step
        exact = Decimal(fee) + billed * Decimal(price) / 60
        expected[f"c{i}"] = int(exact.scaleb(decimals).quantize(Decimal(1), rounding=rounding))
    root = setup_root(tmp_path / "r", settings=f'money_decimals = {decimals}\nrounding = "{mode}"\n',
                      **BASE, tariffs="\n".join(rates))
    path = add_calls(root, calls)
    rate(root)
    assert amounts(path) == expected
