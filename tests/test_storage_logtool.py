"""The log reader: prints a flash image's log, verifies it, and pinpoints every edited byte."""

import binascii
import json
import pathlib

import pytest

from fsm import records as R
from host_sim import logtool
from host_sim.flash import LfsFlash, SimFlash
from interlock import record
from storage.log import FlashLog

SEG = 8


def _image(n=30, blocks=32):
    """A littlefs image holding a log of n records in segments of SEG, and the records appended."""
    fl = LfsFlash.fresh(blocks)
    log = FlashLog(fl, seg_records=SEG, retention=0)
    want = []
    for i in range(n):
        rtype = (R.IGNITION, R.TEST_REQUEST, R.RESULT, R.ENGINE, R.RETEST, R.LOCKOUT)[i % 6]
        seq = log.append(1000000 + 60 * i, rtype, i, -i, 7 * i, i % 4)
        want.append((seq, 1000000 + 60 * i, rtype, i, -i, 7 * i, i % 4))
    log.acknowledge(9)  # frees the first segment (1..8): the image starts at seq 9
    return fl.dev.image(), [w for w in want if w[0] >= log.first_seq()], log


def _write(tmp_path, data, name="img.bin"):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_table_lists_every_record_with_type_names(tmp_path, capsys):
    """The table shows every record with its type name and says the chain verifies."""
    image, want, _ = _image()
    assert logtool.main([_write(tmp_path, image)]) == 0
    out = capsys.readouterr().out
    assert "RESULT" in out and "LOCKOUT" in out and "chain verifies" in out
    assert f"{len(want)} records, seq 9..30, acknowledged up to 9" in out


def test_json_lines_round_trip_the_records(tmp_path, capsys):
    """--json prints one JSON object per record with the values appended, then a summary."""
    image, want, _ = _image()
    assert logtool.main([_write(tmp_path, image), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    recs = [x for x in lines if "seq" in x and "problem" not in x]
    assert [(r["seq"], r["wall"], r["type"], r["a"], r["b"], r["c"], r["photo"]) for r in recs] == want
    assert lines[-1]["summary"]["chain_ok"] is True and lines[-1]["summary"]["problems"] == 0


def _locate(image, log, seq):
    """Image offset of record seq (its segment file's data found in the raw image)."""
    first = log._segs[log._find(seq)]
    data = log.flash.read(f"/log/{first:08x}")
    assert image.count(data) == 1
    return image.find(data) + record.HEADER_SIZE + (seq - first) * record.SIZE


@pytest.mark.parametrize("seq", [12, 16, 30], ids=["mid-segment", "segment-end", "newest"])
def test_every_byte_of_a_record_edited_is_reported_at_its_position(tmp_path, seq):
    """Changing any one byte of a record is reported with that byte's image offset, record and field."""
    image, want, log = _image()
    at = _locate(image, log, seq)
    for pos in range(record.SIZE):
        for pattern in (0x01, 0xFF):
            bad = bytearray(image)
            bad[at + pos] ^= pattern
            rd, _ = logtool.read_log(bytes(bad), raw=False)
            assert len(rd.problems) == 1, (pos, rd.problems)
            p = rd.problems[0]
            assert p["image_offset"] == at + pos and p["seq"] == seq
            assert p["problem"] == "edited byte" and p["field"] == logtool.field_of(pos)
            assert p["found"] == bad[at + pos] and p["expected"] == image[at + pos]
            assert len(rd.records) == len(want)


def test_edit_exits_nonzero_and_names_the_position(tmp_path, capsys):
    """The command exits 1 and prints the edited byte's image offset."""
    image, _want, log = _image()
    at = _locate(image, log, 20) + 9
    bad = bytearray(image)
    bad[at] ^= 0x10
    assert logtool.main([_write(tmp_path, bytes(bad))]) == 1
    err = capsys.readouterr().err
    assert "seq 20" in err and f"image offset {at}" in err and "(a)" in err


def test_rewritten_record_with_fixed_crc_breaks_the_chain(tmp_path):
    """A record rewritten with a correct CRC is caught by the next record's link."""
    image, _want, log = _image()
    at = _locate(image, log, 11)
    forged = bytearray(image[at:at + record.SIZE])
    forged[8:12] = (0).to_bytes(4, "little")  # a = 0: the BrAC of a failed test rewritten
    forged[36:40] = (binascii.crc32(forged[:36]) & 0xFFFFFFFF).to_bytes(4, "little")
    assert record.check(forged) == record.OK
    bad = bytearray(image)
    bad[at:at + record.SIZE] = forged
    rd, _ = logtool.read_log(bytes(bad), raw=False)
    assert rd.problems and rd.problems[0]["seq"] == 12
    assert rd.problems[0]["problem"] == "hash chain broken"


def test_raw_export_reads_and_locates_edits(tmp_path, capsys):
    """--raw reads a service-port export and reports an edited byte at its offset in the file."""
    _image_bytes, want, log = _image()
    size = log.export_size()
    data = log.export_read(0, size)
    assert len(data) == size
    path = _write(tmp_path, data, "export.bin")
    assert logtool.main([path, "--raw", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["seq"] for x in lines if "seq" in x] == [w[0] for w in want]
    bad = bytearray(data)
    off = record.HEADER_SIZE + 3 * record.SIZE + 30
    bad[off] ^= 0x80
    rd, _ = logtool.read_log(bytes(bad), raw=True)
    assert len(rd.problems) == 1 and rd.problems[0]["offset"] == off and rd.problems[0]["field"] == "link"


def test_removed_record_is_a_sequence_and_chain_break(tmp_path):
    """Cutting a record out of an export is reported where the gap is."""
    _image_bytes, _want, log = _image()
    data = log.export_read(0, log.export_size())
    cut = record.HEADER_SIZE + 5 * record.SIZE
    rd, _ = logtool.read_log(data[:cut] + data[cut + record.SIZE:], raw=True)
    assert rd.problems and rd.problems[0]["offset"] == cut


def test_unreadable_inputs_exit_2_with_a_message(tmp_path, capsys):
    """A missing file or a file that is no flash image gives exit 2 and a clear message."""
    assert logtool.main([str(tmp_path / "nope.bin")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert logtool.main([_write(tmp_path, b"\x00" * 5000, "odd.bin")]) == 2
    assert "not a readable flash image" in capsys.readouterr().err
    assert logtool.main([_write(tmp_path, b"\x00" * 8192, "blank.bin")]) == 2


def test_image_from_the_simulator_chip_class_is_read(tmp_path):
    """An image written through SimFlash reads back with the same head hash the log reports."""
    image, _want, log = _image()
    rd, acked = logtool.read_log(image, raw=False)
    assert rd.hash == log.head()[1] and acked == 9 and not rd.problems
    assert LfsFlash(SimFlash(image=image)).listdir("/log")


def test_simulator_run_on_a_flash_image_reads_back(tmp_path, capsys):
    """A scenario run by the simulator on a flash image file is read back whole by `log IMAGE`."""
    from host_sim import scenario
    from host_sim.flash import FlashImage
    from host_sim.handset import SimHandset

    path = str(tmp_path / "handset.img")
    img = FlashImage(path)
    log, state = img.storage()

    class OnFlash(scenario.Scenario):
        def handset(self):
            if self.sim is None:
                self.sim = SimHandset(seed=self.seed, start_wall=self.start_wall, log=log, state=state)
            return self.sim

    sc = OnFlash("clear_by_code")
    sc.run_text((pathlib.Path(__file__).parent / "scenarios" / "clear_by_code.scn").read_text())
    assert not sc.failures
    img.save()
    assert logtool.main([path, "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    recs = [(r["seq"], r["wall"], r["type"], r["a"], r["b"], r["c"], r["photo"]) for r in lines if "seq" in r]
    assert recs == [log.read(s) for s in range(1, log.next_seq())]
    assert any(r["name"] == "CLEAR" for r in lines if "name" in r)
    again = FlashImage(path).storage()[0]
    assert again.head() == log.head()
