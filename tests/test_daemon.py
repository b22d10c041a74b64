"""Daemon mode (SPEC 6.2) with real sockets on 127.0.0.1, real agent processes, real signals."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mbg.spool import encode_record, spool_stem
from tests.collectors_helpers import reject_lines
from tests.conftest import command, log_rows
from tests.daemon_helpers import (
    Agent,
    LineServer,
    callbuilder_line,
    count_rows,
    free_port,
    hold_exclusive,
    release,
    spool_files,
    wait_for,
    wait_rows,
)


@pytest.fixture
def server():
    srv = LineServer()
    yield srv
    srv.close()


def aug(tmp_path):
    return tmp_path / "dataset" / "2012-08-01.db"


def test_lines_in_pieces_are_stored_once_each(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        data = b"".join(callbuilder_line(i) for i in range(300))
        # Cut anywhere, even between \r and \n: lines must come out whole.
        for start in range(0, len(data), 97):
            server.send(data[start : start + 97])
        wait_rows(aug(tmp_path), 300)
        # The same lines again (a tail -F restarted after a reconnect): no duplicates.
        server.send(data)
        time.sleep(1.5)
        assert agent.alive()
    finally:
        assert agent.stop() == 0
    rows = log_rows(aug(tmp_path))
    assert len(rows) == 300
    first = rows[0][1:12]
    assert first == ("vk-pbx-1", "2012-08-30 14:00:00", "2345", "84950000000", "A2345", "C0100517",
                     130, 107, "16", "", '{"cgpn_out": "2345", "cdpn_out": "4951234567"}')
    assert spool_files(tmp_path / "dataset") == []
    log = agent.log()
    assert "connected" in log and "Traceback" not in log


def test_bad_lines_are_rejected_and_kept_agent_goes_on(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        server.send(callbuilder_line(1) + b"this is not a cdr\r\n" + b"\x00\xff bad\r\n"
                    + b"x" * 70000 + b"\r\n" + callbuilder_line(2))
        wait_rows(aug(tmp_path), 2)
        assert agent.alive()
    finally:
        assert agent.stop() == 0
    rejects = list((tmp_path / "dataset" / "reject").glob("callbuilder-*.txt"))
    assert len(rejects) == 1
    lines = rejects[0].read_text().splitlines()
    assert len(lines) == 3
    assert "\tthis is not a cdr" in lines[0]
    assert "longer than 65536" in lines[2]
    assert agent.log().count(" rejected: ") == 3


def test_server_drops_and_comes_back(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        server.send(b"".join(callbuilder_line(i) for i in range(50)) + callbuilder_line(50)[:20])
        wait_rows(aug(tmp_path), 50)
        server.close()  # drop, and refuse connections for a while
        time.sleep(2)
        server.open()
        server.wait_client(15)
        # Like tail -F after a reconnect: the last lines again, then new ones.
        server.send(b"".join(callbuilder_line(i) for i in range(40, 100)))
        wait_rows(aug(tmp_path), 100)
    finally:
        assert agent.stop() == 0
    assert count_rows(aug(tmp_path)) == 100
    log = agent.log()
    assert log.count("cannot connect") == 1, log  # one line per change of state, not per try
    assert log.count(": connected") == 2
    # The half line cut by the drop is rejected and kept, not stored nor lost.
    reject = next((tmp_path / "dataset" / "reject").glob("*.txt")).read_text()
    assert "truncated" in reject and callbuilder_line(50)[:20].decode() in reject


def test_dead_port_beside_a_live_one(tmp_path, server):
    dead = free_port()
    agent = Agent(tmp_path, f"{dead} dead-pbx {server.port} vk-pbx-1")
    try:
        server.send(b"".join(callbuilder_line(i) for i in range(20)))
        wait_rows(aug(tmp_path), 20)
        time.sleep(2)  # several attempts on the dead port
        assert agent.alive()
    finally:
        assert agent.stop() == 0
    log = agent.log()
    assert log.count(f"127.0.0.1:{dead} (dead-pbx): cannot connect") == 1, log
    assert {r[1] for r in log_rows(aug(tmp_path))} == {"vk-pbx-1"}


def test_store_waits_out_an_exclusive_lock(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        server.send(callbuilder_line(0))
        wait_rows(aug(tmp_path), 1)
        holder = hold_exclusive(aug(tmp_path), 60)
        for i in range(1, 200):
            server.send(callbuilder_line(i))
            time.sleep(0.01)
        agent.wait_log("cannot store", 10)
        assert holder.poll() is None and count_rows(aug(tmp_path)) in (0, 1)  # still locked
        release(holder)
        wait_rows(aug(tmp_path), 200)
        assert agent.alive()
    finally:
        assert agent.stop() == 0
    assert count_rows(aug(tmp_path)) == 200
    log = agent.log()
    assert log.count("cannot store") == 1 and "storing again" in log
    assert "Traceback" not in log


def test_sigterm_stores_what_is_buffered(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1", interval=3600)
    server.send(b"".join(callbuilder_line(i) for i in range(500)))
    wait_for(lambda: len(spool_files(tmp_path / "dataset")) == 1, 10, "a spool file")
    time.sleep(0.5)
    assert count_rows(aug(tmp_path)) == 0  # nothing stored before the interval
    assert agent.stop(signal.SIGTERM) == 0
    assert count_rows(aug(tmp_path)) == 500
    assert spool_files(tmp_path / "dataset") == []


def test_sigint_while_locked_leaves_the_spool_for_next_start(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    server.send(callbuilder_line(0))
    wait_rows(aug(tmp_path), 1)
    holder = hold_exclusive(aug(tmp_path), 60)
    server.send(b"".join(callbuilder_line(i) for i in range(1, 100)))
    agent.wait_log("cannot store", 10)
    assert agent.stop(signal.SIGINT) == 0
    assert "left in the spool" in agent.log()
    assert spool_files(tmp_path / "dataset")
    release(holder)
    server.drop()
    again = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        wait_rows(aug(tmp_path), 100)
    finally:
        assert again.stop() == 0
    assert count_rows(aug(tmp_path)) == 100
    assert spool_files(tmp_path / "dataset") == []


def test_sigkill_then_restart_replays_the_spool(tmp_path, server):
    dataset = tmp_path / "dataset"
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1", interval=3600)
    server.send(b"".join(callbuilder_line(i) for i in range(1000)))
    time.sleep(1.5)  # SIGKILL may lose the last second, no more
    agent.kill()
    assert count_rows(aug(tmp_path)) == 0
    assert sum(f.read_bytes().count(b"\n") for f in spool_files(dataset)) == 1000
    server.close()  # the PBX is away: the spool is stored anyway, at once
    again = Agent(tmp_path, f"{server.port} vk-pbx-1", interval=3600)
    try:
        wait_rows(aug(tmp_path), 1000, timeout=10)
        wait_for(lambda: spool_files(dataset) == [], 5, "the spool emptied")
    finally:
        assert again.stop() == 0
    assert count_rows(aug(tmp_path)) == 1000
    assert "1000 records left by an earlier run" in again.log()


def test_month_rollover_while_running(tmp_path, server):
    dataset = tmp_path / "dataset"
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        server.send(b"".join(callbuilder_line(3599 - i, "31-08-12", 23) for i in range(30)))
        wait_rows(aug(tmp_path), 30)
        server.send(b"".join(callbuilder_line(i, "01-09-12", 0) for i in range(30)))
        wait_rows(dataset / "2012-09-01.db", 30)
    finally:
        assert agent.stop() == 0
    assert count_rows(aug(tmp_path)) == 30
    assert count_rows(dataset / "2012-09-01.db") == 30
    assert {r[2][:10] for r in log_rows(dataset / "2012-09-01.db")} == {"2012-09-01"}


def test_dataset_file_removed_while_running(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        server.send(b"".join(callbuilder_line(i) for i in range(10)))
        wait_rows(aug(tmp_path), 10)
        shutil.rmtree(tmp_path / "dataset")
        server.send(b"".join(callbuilder_line(i) for i in range(10, 30)))
        wait_rows(aug(tmp_path), 20)
    finally:
        assert agent.stop() == 0
    assert [r[4] for r in log_rows(aug(tmp_path))] == [f"8495{i:07d}" for i in range(10, 30)]


def test_second_agent_on_the_same_port_and_dataset_is_refused(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        server.wait_client()
        second = Agent(tmp_path, f"{server.port} vk-pbx-1")
        assert second.proc.wait(10) == 2
        assert "another collector is already running" in second.log()
        assert "Traceback" not in second.log()
    finally:
        assert agent.stop() == 0


TACACS_STOP = (
    "Tue Oct  6 10:18:43 2009\t10.20.0.1\t84951234567\tSerial1/0:21\t4957391100/84951234567\t"
    "stop\ttask_id=102\tstart_time=1254809733\ttimezone=MSK\tservice=connection\tprotocol=h323\t"
    "h323-gw-id=gw-msk-1\th323-conf-id=1A2B3C4D 11D6F08E 8058C840 5D76F8B3\t"
    "h323-call-origin=originate\th323-call-type=Telephony\t"
    "h323-setup-time=10:15:33.120 UTC Tue Oct 6 2009\t"
    "h323-connect-time=10:15:39.120 UTC Tue Oct 6 2009\t"
    "h323-disconnect-time=10:18:43.490 UTC Tue Oct 6 2009\th323-disconnect-cause=10\t"
    "elapsed_time=184\n"
)


def test_tacacs_daemon_does_not_hold_the_last_record(tmp_path, server):
    agent = Agent(tmp_path, str(server.port), agent="tacacs")
    path = tmp_path / "dataset" / "2009-10-01.db"
    try:
        server.send(TACACS_STOP.encode())  # the only line: nothing after it shows it is complete
        wait_rows(path, 1)
    finally:
        assert agent.stop() == 0
    (row,) = log_rows(path)
    assert row[1:4] == ("gw-msk-1", "2009-10-06 14:15:33", "4957391100")  # UTC+4 (MSD)
    assert row[10].endswith("/originate/Telephony")


def test_tacacs_record_held_for_a_continuation_survives_sigkill(tmp_path, server):
    dataset = tmp_path / "dataset"
    agent = Agent(tmp_path, str(server.port), agent="tacacs", interval=3600)
    server.send(TACACS_STOP.encode())
    # The assembler lets it go to the spool once the port is quiet for a second.
    wait_for(lambda: spool_files(dataset) and spool_files(dataset)[0].stat().st_size, 5, "spool")
    agent.kill()
    server.close()
    again = Agent(tmp_path, str(server.port), agent="tacacs", interval=3600)
    try:
        wait_rows(dataset / "2009-10-01.db", 1)
    finally:
        assert again.stop() == 0


def test_bad_options_exit_2_without_traceback(tmp_path):
    base = [command("telephony-agent-callbuilder"), "-demon", "1", "-dataset", str(tmp_path)]
    for extra in (["-ports", "10211"], ["-ports", "stdin pbx"], ["-ports", "99999 pbx"]):
        done = subprocess.run(base + extra, capture_output=True, text=True, timeout=10)
        assert done.returncode == 2, (extra, done.stderr)
        assert "Traceback" not in done.stderr and done.stderr.strip()


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (.ci/run installs it)")
def test_socat_serving_tail_of_a_growing_log(tmp_path):
    """SPEC 1's deployment for real: socat on the PBX side serves `tail -F` of the CDR log."""
    import os

    cdr_log = tmp_path / "cdr_log.log"
    cdr_log.write_bytes(b"".join(callbuilder_line(i) for i in range(5)))
    port = free_port()

    def start_socat():
        return subprocess.Popen(
            ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"EXEC:tail -F {cdr_log}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: socat and the tails it forks
        )

    def stop_socat(proc):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)

    socat = start_socat()
    agent = None
    try:
        agent = Agent(tmp_path, f"{port} vk-pbx-1")
        wait_rows(aug(tmp_path), 5)
        with open(cdr_log, "ab") as f:  # the PBX appends, sometimes half a line at a time
            for i in range(5, 50):
                line = callbuilder_line(i)
                f.write(line[:30])
                f.flush()
                if i % 10 == 0:
                    time.sleep(0.3)
                f.write(line[30:])
                f.flush()
        wait_rows(aug(tmp_path), 50)
        # The log is rotated: tail -F follows the new file.
        cdr_log.rename(tmp_path / "cdr_log.log.1")
        cdr_log.write_bytes(b"".join(callbuilder_line(i) for i in range(50, 60)))
        wait_rows(aug(tmp_path), 60)
        # socat restarts: the new tail -F sends the last 10 lines again, then new ones.
        stop_socat(socat)
        socat = start_socat()
        wait_for(lambda: agent.log().count(": connected") == 2, 10, "a second connection")
        with open(cdr_log, "ab") as f:
            f.write(b"".join(callbuilder_line(i) for i in range(60, 70)))
        wait_rows(aug(tmp_path), 70)
        time.sleep(1.5)
    finally:
        stop_socat(socat)
        stopped = agent.stop() if agent is not None else None
    assert stopped == 0
    assert [r[4] for r in log_rows(aug(tmp_path))] == [f"8495{i:07d}" for i in range(70)]


def test_spool_of_a_port_no_longer_configured_is_stored_too(tmp_path, server):
    dataset = tmp_path / "dataset"
    old = Agent(tmp_path, f"{server.port} vk-pbx-1", interval=3600)
    server.send(b"".join(callbuilder_line(i) for i in range(10)))
    wait_for(lambda: spool_files(dataset) and spool_files(dataset)[0].stat().st_size > 0, 10, "spool")
    time.sleep(0.3)
    old.kill()
    # Restarted with other ports: the old port's spool is stored all the same.
    other = LineServer()
    agent = Agent(tmp_path, f"{other.port} nati-txe-1")
    try:
        wait_rows(aug(tmp_path), 10)
        other.send(callbuilder_line(11))
        wait_rows(aug(tmp_path), 11)
    finally:
        assert agent.stop() == 0
        other.close()
    assert {r[1] for r in log_rows(aug(tmp_path))} == {"vk-pbx-1", "nati-txe-1"}
    assert spool_files(dataset) == []
    assert "(not in -ports)" in agent.log()


LAUNCHERS = Path(__file__).resolve().parent.parent / "bin"


def test_launcher_script_runs_the_daemon_and_logs_to_its_file(tmp_path, server):
    import os

    log = tmp_path / "log" / "telephony_agent_callbuilder.log"
    env = dict(os.environ, HOST="127.0.0.1", PORTS=f"{server.port} vk-pbx-1", INTERVAL="1",
               DATASET=str(tmp_path / "dataset"), LOG=str(log),
               PATH=f"{Path(command('telephony_agent_callbuilder')).parent}:{os.environ['PATH']}")
    proc = subprocess.Popen([str(LAUNCHERS / "telephony_agent_callbuilder-demon")], env=env)
    try:
        server.send(b"".join(callbuilder_line(i) for i in range(5)))
        wait_rows(aug(tmp_path), 5)
    finally:
        proc.send_signal(signal.SIGTERM)  # exec'd: the signal reaches the collector itself
        assert proc.wait(15) == 0
    text = log.read_text()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d telephony-agent-callbuilder\[\d+\]: started", text)
    assert "stopped" in text


@pytest.mark.parametrize("agent", ["tacacs", "callbuilder", "asterisk"])
def test_systemd_unit_examples(agent):
    import configparser
    import shlex

    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str
    unit.read(LAUNCHERS.parent / "examples" / "systemd" / f"telephony-agent-{agent}.service")
    service = unit["Service"]
    assert service["Restart"] == "always" and service["KillSignal"] == "SIGTERM"
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == f"telephony-agent-{agent}"
    command(f"telephony-agent-{agent}")  # installed under that name
    assert argv[argv.index("-demon") + 1] == "1" and "-ports" in argv and "-dataset" in argv
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_dataset_folder_that_cannot_be_created_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = subprocess.run(
        [command("telephony-agent-callbuilder"), "-demon", "1", "-host", "127.0.0.1",
         "-ports", f"{free_port()} pbx", "-dataset", str(blocker / "dataset")],
        capture_output=True, text=True, timeout=10)
    assert done.returncode == 2 and "cannot use the dataset folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_line_sent_is_stored_once_through_drops_locks_and_kills(tmp_path, server):
    """A fault scenario end to end: a steady stream of lines; the connection dropped; the
    dataset held under BEGIN EXCLUSIVE; the agent SIGKILLed and restarted; SIGTERM."""
    import threading

    go, quit_, sent = threading.Event(), threading.Event(), []

    def sender():
        i = 0
        while not quit_.is_set() and i < 3600:
            if not go.wait(0.1):
                continue
            try:
                server.send(callbuilder_line(i))
            except OSError:  # the agent went away: wait for the next connection
                server.drop()
                continue
            sent.append(i)
            i += 1
            time.sleep(0.002)

    feeder = threading.Thread(target=sender, daemon=True)
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    go.set()
    feeder.start()
    try:
        wait_rows(aug(tmp_path), 100)
        server.drop()  # the PBX side drops the connection
        time.sleep(1)
        holder = hold_exclusive(aug(tmp_path), 60)
        agent.wait_log("cannot store", 10)
        release(holder)
        time.sleep(0.5)
        go.clear()  # SIGKILL loses at most the last second: nothing sent in that second
        time.sleep(1.2)
        agent.kill()
        server.drop()
        agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
        go.set()
        time.sleep(1.5)
        go.clear()
        time.sleep(0.3)
    finally:
        quit_.set()
        feeder.join(5)
        assert agent.stop() == 0
    assert len(sent) > 300
    assert [r[4] for r in log_rows(aug(tmp_path))] == [f"8495{i:07d}" for i in sent]


POISON = b"A1 1 2 C1 1 2 30-08-12 14:00:00 99999999999999999999 1 16\r\n"


def test_oversized_duration_rejected_and_collection_goes_on(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        server.send(callbuilder_line(1) + POISON + callbuilder_line(2))
        wait_rows(aug(tmp_path), 2)
        server.send(callbuilder_line(3))
        wait_rows(aug(tmp_path), 3)
        assert agent.alive()
    finally:
        assert agent.stop() == 0
    assert reject_lines(tmp_path / "dataset") == [
        "seizure duration 99999999999999999999 out of range (over 10000000 s)\t"
        "A1 1 2 C1 1 2 30-08-12 14:00:00 99999999999999999999 1 16"]
    assert "cannot store" not in agent.log()
    assert spool_files(tmp_path / "dataset") == []


def test_spooled_record_sqlite_refuses_is_rejected_not_retried_forever(tmp_path, server):
    # A spool written by an older version whose parser let a 20-digit duration through.
    dataset = tmp_path / "dataset"
    (dataset / "spool").mkdir(parents=True)
    good = ("vk-pbx-1", "2012-08-30 14:00:01", "2345", "84950000001", "A2345", "C0100517", 130,
            107, "16", "", None)
    bad = good[:1] + ("2012-08-30 14:00:02",) + good[2:6] + (10**20,) + good[7:]
    stem = spool_stem("callbuilder", "127.0.0.1", str(server.port))
    (dataset / "spool" / f"{stem}.000001.spool").write_bytes(encode_record(bad) + encode_record(good))
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        wait_rows(aug(tmp_path), 1)
        wait_for(lambda: spool_files(dataset) == [], 5, "the spool emptied")
        server.send(callbuilder_line(3))  # later records are not queued behind it
        wait_rows(aug(tmp_path), 2)
    finally:
        assert agent.stop() == 0
    assert [row[2] for row in log_rows(aug(tmp_path))] == ["2012-08-30 14:00:01",
                                                            "2012-08-30 14:00:03"]
    assert reject_lines(dataset) == [
        "record not storable (OverflowError: int too big to convert)\t"
        '["vk-pbx-1", "2012-08-30 14:00:02", "2345", "84950000001", "A2345", "C0100517", '
        '100000000000000000000, 107, "16", "", null]']
    log = agent.log()
    assert "cannot store" not in log and "rejected: record not storable" in log


def test_reject_file_not_writable_line_goes_to_the_log(tmp_path, server):
    agent = Agent(tmp_path, f"{server.port} vk-pbx-1")
    try:
        server.wait_client()
        reject = tmp_path / "dataset" / "reject"
        shutil.rmtree(reject)
        reject.write_text("in the way\n")  # replaced by a file while the agent runs
        server.send(callbuilder_line(1) + b"not a cdr\r\n" + callbuilder_line(2))
        wait_rows(aug(tmp_path), 2)
        agent.wait_log("not written")
        reject.unlink()  # the folder can be made again: the next line goes to the file
        server.send(b"again not a cdr\r\n")
        wait_for(lambda: reject_lines(tmp_path / "dataset") != [], 5, "a reject file")
        assert agent.alive()
    finally:
        assert agent.stop() == 0
    log = agent.log()
    assert "Traceback" not in log
    assert f"reject file {reject}/callbuilder-" in log
    assert "not written (File exists); rejected line: expected 11 space-separated fields, " \
           "found 3\tnot a cdr" in log
    assert reject_lines(tmp_path / "dataset") == [
        "expected 11 space-separated fields, found 4\tagain not a cdr"]
