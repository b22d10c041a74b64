"""The daemon's parts on their own: line splitting, backoff, the record encoding, spool segments."""

from __future__ import annotations

import random

import pytest

from mbg.errors import InputError
from mbg.netclient import Backoff, LineSplitter
from mbg.spool import PortBuffer, decode_lines, decode_record, encode_record, spool_stem


def test_splitter_completes_partial_lines_and_keeps_crlf():
    data = b"one\r\ntwo\r\nthree\nfour"
    for cut in range(len(data) + 1):
        splitter = LineSplitter()
        lines = splitter.feed(data[:cut]) + splitter.feed(data[cut:])
        assert lines == [b"one\r\n", b"two\r\n", b"three\n"]
        assert splitter.tail() == b"four"
        assert splitter.tail() == b""


def test_splitter_byte_by_byte():
    splitter = LineSplitter()
    lines = []
    for byte in b"a b\r\n\r\nc\n":
        lines += splitter.feed(bytes([byte]))
    assert lines == [b"a b\r\n", b"\r\n", b"c\n"]


def test_splitter_cuts_an_overlong_line_to_its_head_and_skips_the_rest():
    splitter = LineSplitter(limit=10)
    lines = splitter.feed(b"short\n" + b"x" * 25)
    lines += splitter.feed(b"y" * 25 + b"\nnext\n")
    assert lines == [b"short\n", b"x" * 10, b"next\n"]
    # A long line arriving whole is cut the same way.
    assert LineSplitter(limit=10).feed(b"z" * 30 + b"\n") == [b"z" * 10]
    # The head of a line cut by the connection's end is not repeated as its tail.
    splitter = LineSplitter(limit=10)
    splitter.feed(b"w" * 12)
    assert splitter.tail() == b""


def test_backoff_doubles_up_to_the_cap_and_resets():
    backoff = Backoff(first=0.5, cap=4)
    assert [backoff.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.reset()
    assert backoff.next() == 0.5


RECORDS = [
    ("vk-pbx-1", "2012-08-30 14:29:21", "2345", "84951234567", "A2345", "C0100517", 130, 107, "16",
     "", '{"cgpn_out": "2345", "cdpn_out": "4951234567"}'),
    ("gw", "2009-10-06 10:15:33", "", "", "", "", 0, 0, "", "id", None),
    # Awkward text: TAB, newline, backslashes, a literal \N, non-ASCII.
    ("a\tb", "2009-10-06 10:15:33", "c\nd", "\\N", "\\", "\\t", 1, 2, "Москва", "x\\\n\t", '{"k": "\\u0001"}'),
]


def test_encoding_round_trip():
    for record in RECORDS:
        line = encode_record(record)
        assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.count(b"\t") == 10
        assert decode_record(line[:-1]) == record


def test_encoding_round_trip_random():
    rng = random.Random(7)
    alphabet = "ab\t\n\\N é"
    for _ in range(500):
        text = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(6))) for _ in range(9)]
        record = (*text[:6], rng.randrange(10**6), rng.randrange(10**6), *text[6:8],
                  rng.choice([None, text[8]]))
        assert decode_record(encode_record(record)[:-1]) == record


def test_damaged_spool_line_is_an_error():
    line = encode_record(RECORDS[0])
    with pytest.raises(ValueError, match="damaged"):
        decode_record(line[:40])
    data = line + line + line[:40]
    assert [len(x) for _, x in decode_lines(data)] == [len(line) - 1, len(line) - 1, 40]
    assert [end for end, _ in decode_lines(data, limit=2)] == [len(line), 2 * len(line)]


def test_callbuilder_record_is_compact():
    # SPEC 12: at most 150 bytes per buffered call (the benchmark measures the whole buffer).
    assert len(encode_record(RECORDS[0])) <= 120


def test_spool_segments_append_seal_replay(tmp_path):
    stem = spool_stem("callbuilder", "pbx host/1", "10211")
    assert stem == "callbuilder-pbx_host_1-10211"
    buffer = PortBuffer(tmp_path / "spool", stem)
    buffer.lock()
    data = [encode_record(r) for r in RECORDS]
    buffer.append(data[0] + data[1], 2)
    first = buffer.seal()
    assert first.count == 2 and first.data == data[0] + data[1] and first.spooled
    assert first.segment.read_bytes() == first.data
    buffer.append(data[2], 1)
    assert buffer.seal().segment != first.segment
    assert buffer.seal() is None  # nothing new
    buffer.unlock()
    # A later run finds both segments, oldest first, and numbers new ones after them.
    again = PortBuffer(tmp_path / "spool", stem)
    again.lock()
    batches = again.replay_batches()
    assert [b.count for b in batches] == [2, 1]
    assert b"".join(b.data for b in batches) == b"".join(data)
    again.append(data[0], 1)
    newest = again.seal().segment
    assert newest.name > batches[-1].segment.name


def test_spool_lock_refuses_a_second_collector(tmp_path):
    first = PortBuffer(tmp_path, "tacacs-h-1881")
    first.lock()
    with pytest.raises(InputError, match="already running"):
        PortBuffer(tmp_path, "tacacs-h-1881").lock()
    first.unlock()
    PortBuffer(tmp_path, "tacacs-h-1881").lock()


def test_spool_write_failure_keeps_records_in_memory(tmp_path):
    spool = tmp_path / "spool"
    buffer = PortBuffer(spool, "x")
    spool.mkdir()
    spool.chmod(0o500)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the spool folder should be")
    buffer.spool_dir = blocked  # any write under it fails, even as root
    buffer.append(encode_record(RECORDS[0]), 1)
    assert buffer.spool_error
    batch = buffer.seal()
    assert batch.count == 1 and not batch.spooled and batch.data == encode_record(RECORDS[0])
    buffer.spool_dir = spool
    spool.chmod(0o700)
    assert buffer.respool(batch) and batch.spooled
    assert batch.segment.read_bytes() == encode_record(RECORDS[0])
