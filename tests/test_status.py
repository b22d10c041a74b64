"""mbg status and mbg explain on a rated month."""

from __future__ import annotations

from .rating_helpers import add_calls, call, mbg, query, setup_root

A1 = "4951110000"


def rated_month(tmp_path):
    root = setup_root(
        tmp_path / "r",
        'rounding = "half-even"\n',
        accounts="A1,Alpha",
        numbers=f"{A1},A1,2009-01-01,",
        tariffs="T,,other,0.60,1,1,,,\nT,7495,city,0.45,90,60,0.05,,m\nP,,,0.30,1,1,,,",
        buckets="T,m,100",
        routes="C01*,P",
        services="phone,Phone,,,T",
        subscriptions="A1,phone,2009-01-01,",
    )
    path = add_calls(root, [
        call("2009-10-01 10:00:00", A1, "74951234567", 30, "first"),
        call("2009-10-01 11:00:00", A1, "74951234567", 91, "second", dstchannel="C0100517"),
        call("2009-10-01 12:00:00", "777", "8123", 10, "stranger"),
        call("2009-10-01 13:00:00", A1, "8123", 0, "unanswered"),
    ])
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    add_calls(root, [call("2009-10-02 10:00:00", A1, "1", 5, "late")])
    return root, path


def ids(path) -> dict[str, int]:
    return dict(query(path, "SELECT callid, id FROM telephony_log"))


def test_status_counts(tmp_path):
    root, path = rated_month(tmp_path)
    result = mbg("status", "--root", root)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["dataset", "calls", "new", "rated", "unanswered", "costs",
                                "amount", "unrated"]
    # first: 90 s from the bucket of 100 -> fee 0.05; second: 150 s, 10 from the bucket,
    # 140 s x 0.45 / 60 = 1.05 + 0.05 = 1.10; P: 91 s x 0.30/60 = 0.455 -> 0.46 (half-even)
    assert lines[1].split() == ["2009-10-01.db", "5", "1", "4", "1", "3", "1.61", "1"]
    assert lines[2].split() == ["unrated:", "unknown", "account", "1"]
    assert mbg("status", "2009-10", "--root", root).output == result.output
    missing = mbg("status", "2009-11", "--root", root)
    assert missing.exit_code == 2 and "no dataset" in missing.output


def test_explain_a_call_with_increments_bucket_and_rounding(tmp_path):
    root, path = rated_month(tmp_path)
    result = mbg("explain", "2009-10", ids(path)["second"], "--root", root)
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"2. account A1: numbers row '{A1}' -> A1, valid from 2009-01-01 to open (by src" in text
    assert "3. plan: service phone (from 2009-01-01 to open) -> tariff T" in text
    assert "3. route: dstchannel 'C0100517' matches pattern 'C01*' -> tariff P" in text
    assert "4. prefix '7495'" in text
    assert "5. billed seconds: billsec 91 > first 90: 90 + ceil((91 - 90) / 60) x 60 = 150" in text
    assert ("6. bucket m (100 s a month): took 10 s of 150; the month's earlier calls took 90 s; "
            "counter now 100 s") in text
    assert "7. amount: 0.05 + 140 x 0.45 / 60 = 1.1 -> 1.10 (half-even, 2 decimals)" in text
    assert "7. amount: 0 + 91 x 0.30 / 60 = 0.455 -> 0.46 (half-even, 2 decimals)" in text
    assert "cost T: account 'A1' prefix '7495' number '74951234567' 150 s (bucket 10 s) amount 1.10" in text
    assert "note:" not in text


def test_explain_unknown_unanswered_new_and_changed_price(tmp_path):
    root, path = rated_month(tmp_path)
    call_ids = ids(path)
    text = mbg("explain", "2009-10", call_ids["stranger"], "--root", root).output
    assert "2. unknown account: no numbers row for src '777' or channel ''" in text
    assert "unrated: unknown account" in text
    text = mbg("explain", "2009-10", call_ids["unanswered"], "--root", root).output
    assert "unanswered (billsec 0): rated at no cost" in text
    text = mbg("explain", "2009-10", call_ids["late"], "--root", root).output
    assert "state: new, not rated yet" in text and "stored:\n  nothing" in text
    # a new price after rating: explain recomputes and points at the difference
    (root / "t.csv").write_text("tariff,prefix,direction,price,first,next,connect_fee,"
                                "free_seconds,bucket\nT,,other,0.60,1,1,,,\nT,7495,city,0.90,90,60,0.05,,m\n")
    assert mbg("load", "tariffs", root / "t.csv", "--root", root).exit_code == 0
    text = mbg("explain", "2009-10", call_ids["second"], "--root", root).output
    assert "note: the stored cost differs (150 s, bucket 10 s, 1.10)" in text
    result = mbg("explain", "2009-10", 999, "--root", root)
    assert result.exit_code == 2 and "no call with id 999" in result.output
