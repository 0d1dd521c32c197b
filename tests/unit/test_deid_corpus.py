"""The de-identification gate against a labelled corpus: files that must fail (``leaky/``)
and look-alikes that must pass (``clean/``), in ``tests/unit/data/deid_corpus/``.

Every value is synthetic. The corpus is written by ``write_corpus`` below (seeded, so the
same files each time): resident identity numbers get their check digits computed here per
GB 11643-1999 and are checked against python-stdnum, mobile and landline numbers are
drawn until phonenumbers accepts them for region CN. To change the corpus, edit
``corpus_cases`` and run ``python tests/unit/test_deid_corpus.py``; a test checks that the
committed files are what it writes.
"""

from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import io
import json
import random
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from stdnum.cn import ric

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hub_config.datasets import scan  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "data" / "deid_corpus"
SEED = 11643

# --------------------------------------------------------------------------- synthetic identifiers

# GB 11643-1999: the weight of position i (from the left, 0-based) is 2^(17-i) mod 11, and the
# check digit is the one that makes the weighted sum of all 18 characters 1 mod 11 (X stands for 10).
WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
CHECK = "10X98765432"
REGIONS = ["110105", "310104", "440305", "510107", "330106", "420106", "320102", "370202", "610113", "500103"]


def ric_check_digit(first17: str) -> str:
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def _ric_body(rng: random.Random, region: str | None = None, years: tuple[int, int] = (1940, 2005)) -> str:
    born = datetime.date(years[0], 1, 1) + datetime.timedelta(days=rng.randrange(365 * (years[1] - years[0])))
    return f"{region or rng.choice(REGIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"


def make_ric(rng: random.Random, *, ending: str | None = None) -> str:
    """A valid 18-character number, one python-stdnum's ``is_valid`` accepts too (its county
    code existed in the birth year); ``ending="X"`` draws until the check digit is X."""
    while True:
        body = _ric_body(rng)
        number = body + ric_check_digit(body)
        if (ending is None or number.endswith(ending)) and ric.is_valid(number):
            return number


def make_ric_older_than_its_county(rng: random.Random) -> str:
    """A valid number whose district code is younger than its holder: right check digit, a
    real birth date and province, which stdnum's ``is_valid`` refuses all the same."""
    region, before = rng.choice([("500103", 1997), ("440106", 1985), ("510107", 1990), ("440305", 1983)])
    body = _ric_body(rng, region, (1935, before - 1))
    number = body + ric_check_digit(body)
    assert not ric.is_valid(number) and ric.calc_check_digit(number) == number[-1], number
    return number


def make_bad_ric(rng: random.Random) -> str:
    """Region and birth date fine, the check digit wrong (an X where none belongs, now and then)."""
    body = _ric_body(rng)
    right = ric_check_digit(body)
    number = body + rng.choice([c for c in "0123456789X" if c != right])
    assert not ric.is_valid(number) and ric.calc_check_digit(number) == right, number
    return number


MOBILE_PREFIXES = ["130", "131", "133", "135", "136", "137", "138", "139", "150", "152", "157", "158", "159",
                   "166", "177", "180", "181", "185", "186", "187", "189", "191", "198", "199"]


def _valid_cn(number: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(number, "CN"))


def make_mobile(rng: random.Random) -> str:
    while True:
        number = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if _valid_cn(number):
            return number


def make_landline(rng: random.Random) -> tuple[str, str]:
    """(area code, subscriber number) of a valid fixed-line number."""
    while True:
        area = rng.choice(["010", "021", "020", "0755", "0571", "028"])
        local = f"{rng.randrange(5, 9)}{rng.randrange(10**7):07d}"
        if _valid_cn(area + local):
            return area, local


def phone_formats(m: str) -> list[str]:
    return [f"+86 {m[:3]} {m[3:7]} {m[7:]}", f"+86-{m[:3]}-{m[3:7]}-{m[7:]}", f"0086 {m[:3]} {m[3:7]} {m[7:]}",
            f"(+86){m}", f"+86{m}", f"+86 {m}", f"{m[:3]}-{m[3:7]}-{m[7:]}", f"{m[:3]} {m[3:7]} {m[7:]}"]


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐韩冯邓曹彭曾肖田董潘蒋蔡余杜叶程苏魏吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华玲桂兰红云飞鹏辉欣怡"
FIRST = ["Alice", "Brian", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Irene", "James", "Karen", "Louis"]
LAST = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Evans", "Walker", "Wright", "Green", "Hughes", "Moore"]


def chinese_name(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(["欧阳", "司马", "上官", "诸葛"]) + rng.choice(GIVEN)
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))


def birth_date(rng: random.Random) -> datetime.date:
    return datetime.date(1940, 1, 1) + datetime.timedelta(days=rng.randrange(365 * 65))


# --------------------------------------------------------------------------- the cases


@dataclass
class Case:
    label: str             # "leaky" (must fail) or "clean" (must pass)
    file: str              # under leaky/ or clean/
    expect: str            # the finding that must fail it ("k_anonymity" included), or "pass"
    column: str            # the column that must hold the finding ("" for k-anonymity and clean files)
    about: str
    table: pa.Table
    quasi_identifiers: tuple[str, ...] = ()


def _ids(n: int, prefix: str = "V") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(1, n + 1)]


def corpus_cases() -> list[Case]:
    rng = random.Random(SEED)
    n = 30
    cases: list[Case] = []

    def leaky(file, expect, column, about, table, qis=()):
        cases.append(Case("leaky", file, expect, column, about, table, tuple(qis)))

    def clean(file, about, table, qis=()):
        cases.append(Case("clean", file, "pass", "", about, table, tuple(qis)))

    wards = [rng.choice(["ICU", "CCU", "ER", "Ward 3"]) for _ in range(n)]

    # ----------------------------------------------------------------- leaky: identity numbers
    leaky("ric_x_check_digit.csv", "cn_resident_id", "patient_ref",
          "valid 18-character resident identity numbers, every one ending in the check digit X",
          pa.table({"visit_id": _ids(n), "patient_ref": [make_ric(rng, ending="X") for _ in range(n)], "ward": wards}))
    notes = []
    for i in range(n):
        number = make_ric(rng, ending="X" if i % 3 == 0 else None)
        notes.append([f"患者身份证号{number.lower()}，已核对", f"ID: {number}; consent on file",
                      f"证件 {number} 复印件已归档"][i % 3])
    leaky("ric_in_notes.parquet", "cn_resident_id", "note",
          "identity numbers inside free text (Chinese and English, a lower-case x), no spaces around some",
          pa.table({"visit_id": _ids(n), "note": notes}))
    leaky("ric_county_newer_than_birth.csv", "cn_resident_id", "id_card",
          "valid numbers of people born before their district's code (Chongqing 500103, Guangzhou 440106, ...)",
          pa.table({"visit_id": _ids(n), "id_card": [make_ric_older_than_its_county(rng) for _ in range(n)]}))
    digits_only = []
    while len(digits_only) < n:
        number = make_ric(rng)
        if not number.endswith("X"):
            digits_only.append(int(number))
    leaky("ric_as_integers.parquet", "cn_resident_id", "id_no",
          "identity numbers stored as 64-bit integers",
          pa.table({"stay": list(range(n)), "id_no": pa.array(digits_only, pa.int64())}))

    # ----------------------------------------------------------------- leaky: telephone numbers
    leaky("phone_country_code.csv", "phone", "contact",
          "mobile numbers with +86 / 0086 and spaces, hyphens or brackets",
          pa.table({"visit_id": _ids(n), "contact": [phone_formats(make_mobile(rng))[i % 6] for i in range(n)]}))
    landlines = []
    for i in range(n):
        area, local = make_landline(rng)
        landlines.append([f"({area}) {local[:4]}-{local[4:]}", f"{area}-{local}", f"{area} {local[:4]} {local[4:]}",
                          f"+86 ({area[1:]}) {local[:4]} {local[4:]}", f"+86-{area[1:]}-{local}"][i % 5])
    leaky("phone_landline.csv", "phone", "clinic_phone",
          "fixed-line numbers with area codes, in brackets, with hyphens or spaces, or +86",
          pa.table({"visit_id": _ids(n), "clinic_phone": landlines}))
    texts = []
    for i in range(n):
        a, b = make_mobile(rng), make_mobile(rng)
        texts.append([f"联系电话{a}", f"call {a[:3]}-{a[3:7]}-{a[7:]} after 5pm", f"家属: {a}; 备用 {b[:3]} {b[3:7]} {b[7:]}",
                      f"{a}/{b}", f"Tel.{a}", f"电话：{a}。", f"{a}、{b}", f"mobile {a} (evenings)"][i % 8])
    leaky("phone_in_text.csv", "phone", "note",
          "mobile numbers as tokens of free text: after CJK, after punctuation, two to a value",
          pa.table({"visit_id": _ids(n), "note": texts}))
    leaky("phone_bare.csv", "phone", "mobile",
          "bare 11-digit mobile numbers, one a value (read back as integers)",
          pa.table({"visit_id": _ids(n), "mobile": [make_mobile(rng) for _ in range(n)]}))
    leaky("phone_integers.parquet", "phone", "tel",
          "mobile numbers stored as 64-bit integers",
          pa.table({"stay": list(range(n)), "tel": pa.array([int(make_mobile(rng)) for _ in range(n)], pa.int64())}))
    leaky("phone_floats_with_gaps.parquet", "phone", "guardian_tel",
          "mobile numbers in a float column with gaps, as pandas writes them",
          pa.table({"stay": list(range(n)),
                    "guardian_tel": pa.array([None if i % 4 == 0 else float(make_mobile(rng)) for i in range(n)],
                                             pa.float64())}))
    devices = [f"DEV{rng.randrange(10**10):010d}" for _ in range(39)] + [make_mobile(rng)]
    leaky("phone_one_in_forty.csv", "phone", "device_id",
          "a column of device IDs with one mobile number among them (share 1/40)",
          pa.table({"device_id": devices, "reading": [round(36 + rng.random() * 3, 1) for _ in range(40)]}))

    # ----------------------------------------------------------------- leaky: e-mail addresses
    domains = ["example.org", "example.com", "mail.example.net", "hospital.example.org"]
    leaky("email.csv", "email", "contact_email", "e-mail addresses, one a value",
          pa.table({"visit_id": _ids(n), "contact_email": [
              f"{rng.choice(['zhang.wei', 'li_na', 'wang-fang', 'chen88', 'liu+ward3'])}{i}@{rng.choice(domains)}"
              for i in range(n)]}))
    leaky("email_in_text.parquet", "email", "note", "e-mail addresses in free text, next to CJK and punctuation",
          pa.table({"visit_id": _ids(n), "note": [
              [f"邮箱zhao{i}@example.org，请回复", f"mailto:sun{i}@example.com", f"reply to <zhou{i}@example.net>",
               f"家属邮箱: wu.{i}@mail.example.org"][i % 4] for i in range(n)]}))

    # ----------------------------------------------------------------- leaky: names
    leaky("names_latin.csv", "name", "patient_name", "Latin-script names in a column named as names",
          pa.table({"visit_id": _ids(n), "patient_name": [
              [f"{rng.choice(FIRST)} {rng.choice(LAST)}", f"{rng.choice(LAST)}, {rng.choice(FIRST)}",
               f"{rng.choice(FIRST)} {rng.choice('ABCDJKM')}. {rng.choice(LAST)}"][i % 3] for i in range(n)]}))
    leaky("names_chinese_column.csv", "name", "姓名", "Chinese names in a 姓名 column",
          pa.table({"visit_id": _ids(n), "姓名": [chinese_name(rng) for _ in range(n)]}))
    leaky("names_chinese_any_column.parquet", "name", "contact",
          "Chinese names in a column not named as names (dictionary-encoded)",
          pa.table({"visit_id": _ids(n),
                    "contact": pa.array([chinese_name(rng) for _ in range(n)]).dictionary_encode()}))

    # ----------------------------------------------------------------- leaky: dates of birth
    leaky("dob_iso.csv", "date_of_birth", "birth_date", "ISO dates in birth_date (read back as dates)",
          pa.table({"visit_id": _ids(n), "birth_date": [birth_date(rng).isoformat() for _ in range(n)]}))
    leaky("dob_chinese.csv", "date_of_birth", "出生日期", "dates written 1990年5月6日 in 出生日期",
          pa.table({"visit_id": _ids(n), "出生日期": [
              f"{d.year}年{d.month}月{d.day}日" for d in (birth_date(rng) for _ in range(n))]}))
    leaky("dob_mixed_text.csv", "date_of_birth", "date_of_birth", "dates as 1975/3/4, 19800102 and 1990.05.06",
          pa.table({"visit_id": _ids(n), "date_of_birth": [
              [f"{d.year}/{d.month}/{d.day}", f"{d:%Y%m%d}", f"{d:%Y.%m.%d}"][i % 3]
              for i, d in enumerate(birth_date(rng) for _ in range(n))]}))
    leaky("dob_date32.parquet", "date_of_birth", "dob", "a date column named dob",
          pa.table({"stay": list(range(n)), "dob": pa.array([birth_date(rng) for _ in range(n)], pa.date32())}))

    # ----------------------------------------------------------------- leaky: k-anonymity
    bands = ["20-29", "30-39", "40-49", "50-59"]
    rows = [(b, s, z) for b in bands for s in "FM" for z in ("100", "200") for _ in range(5)]
    qi = lambda rows: {"age_band": [r[0] for r in rows], "sex": [r[1] for r in rows], "zip3": [r[2] for r in rows]}  # noqa: E731
    leaky("k_anonymity_unique_row.csv", "k_anonymity", "",
          "one row alone in its class over age_band, sex, zip3 (k=1 < 5)",
          pa.table({**qi(rows + [("90+", "M", "839")]), "hba1c": [7.0] * (len(rows) + 1)}),
          ("age_band", "sex", "zip3"))
    leaky("k_anonymity_small_class.parquet", "k_anonymity", "",
          "a class of two over age_band, sex (k=2 < 5)",
          pa.table({"age_band": [r[0] for r in rows] + ["80-89"] * 2, "sex": [r[1] for r in rows] + ["F"] * 2,
                    "los_days": list(range(len(rows) + 2))}),
          ("age_band", "sex"))

    # ----------------------------------------------------------------- clean: look-alikes
    clean("order_numbers.csv", "order numbers: dated serials, and 18-character ones with a wrong ID check digit",
          pa.table({"order_no": [f"ORD-2026{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}-{i:06d}"
                                 for i in range(n)],
                    "order_ref": [make_bad_ric(rng) for _ in range(n)],
                    "amount": [round(rng.random() * 900, 2) for _ in range(n)]}))
    clean("eighteen_digit_bad_checksum.parquet", "18-digit numbers (as integers and as text) that fail the ID check",
          pa.table({"batch": pa.array([int(x) for x in _bad_digit_rics(rng, n)], pa.int64()),
                    "batch_text": _bad_digit_rics(rng, n)}))
    serials = []
    for i in range(n):
        m = make_mobile(rng)
        serials.append([f"SN-{m}{rng.randrange(10000):04d}", f"2026{rng.randrange(1, 13):02d}01{m}{i % 10}",
                        f"SN{m}", f"{m}A", f"LOT2026_{m}", f"{m}_01", f"2026.{m}", f"fw {m}.{i % 9 + 1}",
                        f"{m[:7]}{m}", f"SN{m}-{i:02d}"][i % 10])
    clean("serial_numbers.csv", "serial numbers holding a mobile number's digits inside a longer run",
          pa.table({"serial": serials, "qty": [rng.randrange(1, 9) for _ in range(n)]}))
    imeis = [f"86{make_mobile(rng)}{rng.randrange(100):02d}" for _ in range(n)]
    clean("device_ids.parquet", "device IDs: IMEIs, hex, UUIDs, MAC addresses, prefixed numbers",
          pa.table({"imei": pa.array([int(x) for x in imeis], pa.int64()),
                    "device": [[f"IMEI{imeis[i]}", f"0x{make_mobile(rng)}", f"DEV{make_mobile(rng)}X",
                                f"{make_mobile(rng)[:8]}-{rng.randrange(10**4):04d}-4a2b-9c3d-{make_mobile(rng)}0",
                                "MAC 00:1A:2B:%02X:%02X:%02X" % (i, rng.randrange(256), rng.randrange(256))][i % 5]
                               for i in range(n)]}))
    base = datetime.datetime(2013, 9, 1)
    stamps = [base + datetime.timedelta(seconds=rng.randrange(13 * 365 * 86400)) for _ in range(n)]
    clean("timestamps.csv", "timestamps: ISO, compact, with time zones, epoch seconds and milliseconds",
          pa.table({"event_time": [t.strftime("%Y-%m-%d %H:%M:%S") for t in stamps],
                    "compact": [t.strftime("%Y%m%d%H%M%S") for t in stamps],
                    "with_tz": [t.strftime("%Y-%m-%dT%H:%M:%S+08:00") for t in stamps],
                    "epoch_s": [int(t.timestamp()) for t in stamps],
                    "epoch_ms": [int(t.timestamp() * 1000) + rng.randrange(1000) for t in stamps],
                    "admitted": [t.date().isoformat() for t in stamps]}))
    tests = [("Na", "mmol/L", 135, 145), ("K", "mmol/L", 3.5, 5.1), ("WBC", "10^9/L", 4, 11),
             ("PLT", "10^9/L", 150, 400), ("HbA1c", "%", 5, 9), ("CRP", "mg/L", 0, 50)]
    picks = [rng.choice(tests) for _ in range(n)]
    clean("lab_values.csv", "lab results: values, units, ranges, blood pressures, counts per litre",
          pa.table({"test": [p[0] for p in picks], "value": [round(rng.uniform(p[2], p[3]), 1) for p in picks],
                    "unit": [p[1] for p in picks], "range": [f"{p[2]}-{p[3]}" for p in picks],
                    "bp": [f"{rng.randrange(100, 160)}/{rng.randrange(60, 100)} mmHg" for _ in range(n)],
                    "cells_per_l": [float(rng.randrange(10**9, 10**10)) for _ in range(n)]}))
    icd = ["E11.900", "I10.x00", "J18.900", "C34.901", "I21.000x001", "Z00.000", "O80.x00", "K35.800", "N18.500",
           "36.0601", "E11.9", "I10"]
    clean("icd_codes.csv", "ICD-10 (national extension) and procedure codes",
          pa.table({"dx_code": [icd[i % len(icd)] for i in range(n)], "seq": list(range(n))}))
    digests = [hashlib.sha256(f"record-{i}".encode()).digest() for i in range(n)]
    clean("hashes.csv", "hashes: SHA-256 and MD5 in hex, SHA-256 in base64",
          pa.table({"sha256": [d.hex() for d in digests],
                    "md5": [hashlib.md5(f"record-{i}".encode()).hexdigest() for i in range(n)],
                    "b64": [base64.b64encode(d).decode() for d in digests]}))
    clean("clinical_text.csv", "notes with numbers: pressures, rates, dates, bed numbers, doses",
          pa.table({"note": [[f"血压 {rng.randrange(100, 160)}/{rng.randrange(60, 100)} mmHg，心率 {rng.randrange(55, 110)}",
                              f"WBC {rng.uniform(3, 15):.1f} x10^9/L, CRP {rng.uniform(0, 80):.1f} mg/L",
                              f"随访 2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}，床号 {rng.randrange(1, 40)}",
                              f"术后第 {rng.randrange(1, 10)} 天，头孢曲松 2 g qd",
                              "stable, discharged home"][i % 5] for i in range(n)]}))
    clean("invalid_mobiles.csv", "11-digit numbers on prefixes no mobile network uses (10, 11, 12)",
          pa.table({"code": [f"{rng.choice(['100', '110', '112', '120', '123'])}{rng.randrange(10**8):08d}"
                             for _ in range(n)]}))
    clean("k_anonymity_ok.parquet", "every class of age_band, sex, zip3 holds at least five rows",
          pa.table({**qi(rows), "los_days": [rng.randrange(1, 30) for _ in rows]}), ("age_band", "sex", "zip3"))
    return cases


def _bad_digit_rics(rng: random.Random, n: int) -> list[str]:
    out = []
    while len(out) < n:
        number = make_bad_ric(rng)
        if not number.endswith("X"):
            out.append(number)
    return out


# --------------------------------------------------------------------------- writing and reading


def _csv_text(table: pa.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in zip(*(table.column(c).to_pylist() for c in table.column_names)):
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def _cases_text(cases: list[Case]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "expect", "column", "quasi_identifiers", "about"])
    for c in cases:
        writer.writerow([f"{c.label}/{c.file}", c.expect, c.column, " ".join(c.quasi_identifiers), c.about])
    return out.getvalue()


def write_corpus(root: Path) -> list[Case]:
    cases = corpus_cases()
    for label in ("leaky", "clean"):
        shutil.rmtree(root / label, ignore_errors=True)
        (root / label).mkdir(parents=True)
    for c in cases:
        path = root / c.label / c.file
        if c.file.endswith(".parquet"):
            pq.write_table(c.table, str(path))
        else:
            path.write_text(_csv_text(c.table), encoding="utf-8")
    (root / "cases.csv").write_text(_cases_text(cases), encoding="utf-8")
    return cases


def read_cases(root: Path) -> list[dict]:
    with open(root / "cases.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- tests


def test_check_digits_are_computed_per_gb_11643():
    # the standard's own example, and python-stdnum's computation over many drawn numbers
    assert ric_check_digit("11010519491231002") == "X"
    rng = random.Random(1)
    for _ in range(500):
        body = _ric_body(rng)
        assert ric_check_digit(body) == ric.calc_check_digit(body + "0")


def test_the_committed_corpus_is_what_the_generator_writes(tmp_path):
    cases = write_corpus(tmp_path)
    committed = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file())
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert committed == written, "run: python tests/unit/test_deid_corpus.py"
    assert (CORPUS / "cases.csv").read_text(encoding="utf-8") == (tmp_path / "cases.csv").read_text(encoding="utf-8")
    for c in cases:
        rel = f"{c.label}/{c.file}"
        if c.file.endswith(".parquet"):
            assert pq.read_table(CORPUS / rel).equals(pq.read_table(tmp_path / rel)), rel
        else:
            assert (CORPUS / rel).read_text(encoding="utf-8") == (tmp_path / rel).read_text(encoding="utf-8"), rel


def _table(path: Path) -> pa.Table:
    return pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)


IDENTIFIER_TEXT = re.compile(r"[1-9][0-9]{16}[0-9Xx]|[\w.+\-]+@[\w\-]+(\.[\w\-]+)+|\+?\(?[0-9][0-9 ()\-]{6,}[0-9]")


def _identifier_strings(table: pa.Table, column: str) -> set[str]:
    """What must never appear in a report: the column's values, and the identifiers inside them."""
    out = set()
    col = table.column(column)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    for v in col.to_pylist():
        if v is None:
            continue
        if isinstance(v, float):
            v = int(v)
        text = v.isoformat() if isinstance(v, datetime.date) else str(v)
        out.add(text)
        for m in IDENTIFIER_TEXT.finditer(text):
            out.add(m.group(0))
            out.add(re.sub(r"[^0-9Xx]", "", m.group(0)))
    return {s for s in out if len(s) >= 2}


def _scan(case: dict, tmp_path: Path):
    folder = tmp_path / case["file"].replace("/", "__")
    folder.mkdir()
    shutil.copy(CORPUS / case["file"], folder)
    qis = case["quasi_identifiers"].split()
    return scan.scan_dataset(str(folder), quasi_identifiers=qis or None, min_k=5)[0]


def _failing(report: dict) -> dict[str, set[str]]:
    """{kind: columns} of what fails the report; k-anonymity as kind ``k_anonymity``."""
    out: dict[str, set[str]] = {}
    for f in report["files"]:
        for name, result in f["columns"].items():
            for kind in scan.FAILING:
                if result["counts"].get(kind):
                    out.setdefault(kind, set()).add(name)
        if not f.get("k_anonymity", {"passed": True})["passed"]:
            out.setdefault("k_anonymity", set())
    return out


def test_corpus_no_leaks_and_no_false_refusals(tmp_path):
    cases = read_cases(CORPUS)
    assert {c["file"].split("/")[0] for c in cases} == {"leaky", "clean"}
    confusion = {("leaky", True): 0, ("leaky", False): 0, ("clean", True): 0, ("clean", False): 0}
    wrong, by_kind = [], {}
    for case in cases:
        label = case["file"].split("/")[0]
        report = _scan(case, tmp_path)
        refused = not report["passed"]
        confusion[(label, refused)] += 1
        failing = _failing(report)
        if label == "leaky":
            by_kind[case["expect"]] = by_kind.get(case["expect"], 0) + 1
            expected = {case["expect"]: {case["column"]} if case["column"] else set()}
            if not refused or failing != expected:
                wrong.append(f"LEAK {case['file']}: expected {expected}, got {failing}; {report['summary']}")
            if case["column"]:
                text = json.dumps(report, ensure_ascii=False)
                shown = [s for s in _identifier_strings(_table(CORPUS / case["file"]), case["column"]) if s in text]
                if shown:
                    wrong.append(f"UNMASKED {case['file']}: {len(shown)} identifiers appear in the report")
        elif refused:
            wrong.append(f"FALSE REFUSAL {case['file']}: {report['summary']}")
    leaky_n = confusion[("leaky", True)] + confusion[("leaky", False)]
    clean_n = confusion[("clean", True)] + confusion[("clean", False)]
    table = "\n".join([
        "",
        "de-identification corpus   refused   passed",
        f"  leaky ({leaky_n:>2} files)     {confusion[('leaky', True)]:>7}  {confusion[('leaky', False)]:>7}"
        "   passed: leaks",
        f"  clean ({clean_n:>2} files)     {confusion[('clean', True)]:>7}  {confusion[('clean', False)]:>7}"
        "   refused: false refusals",
        "  leaky files by expected finding: " + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())),
    ])
    print(table)
    assert not wrong, "\n".join(wrong) + table
    assert confusion[("leaky", False)] == 0 and confusion[("clean", True)] == 0


def test_each_finding_gives_its_share_of_the_sampled_values(tmp_path):
    case = next(c for c in read_cases(CORPUS) if c["file"] == "leaky/phone_one_in_forty.csv")
    report = _scan(case, tmp_path)
    result = report["files"][0]["columns"]["device_id"]
    assert (result["sampled"], result["counts"], result["share"]) == (40, {"phone": 1}, {"phone": 0.025})
    assert report["summary"] == ["phone_one_in_forty.csv: column device_id: phone in 1 of 40 sampled values (2%)"]
    gaps = next(c for c in read_cases(CORPUS) if c["file"] == "leaky/phone_floats_with_gaps.parquet")
    result = _scan(gaps, tmp_path)["files"][0]["columns"]["guardian_tel"]
    assert (result["sampled"], result["counts"]["phone"], result["share"]["phone"]) == (22, 22, 1.0)


# the token rule, value by value: the examples and the edges of the rule

@pytest.mark.parametrize("value", [
    "+86 138 0013 8000", "(010) 6552-9988", "138-0013-8000", "13800138000", "a 13800138000 b", "id:13800138000;",
    "电话13800138000", "Tel.13800138000", "13800138000/13912345678", "13800138000.0", "SN-13800138000",
    "１３８００１３８０００",
])
def test_whole_token_phone_numbers_count(value):
    assert scan.find_phones(value), value


@pytest.mark.parametrize("value", [
    "SN-138001380001234", "20261101138001380009", "SN138001380001234", "DEV13800138000", "13800138000X",
    "13800138000_01", "2026.13800138000", "13800138000.5", "13800138000.05", "0x13800138000", "ab13800138000cd",
])
def test_phone_digits_inside_a_longer_run_do_not_count(value):
    assert scan.find_phones(value) == [], value


def test_identity_numbers_and_emails_count_as_whole_tokens_only():
    number = "11010519491231002X"
    assert scan.find_ric(f"身份证{number}。")[0] == [number] and scan.find_ric(f"ID {number.lower()}")[0]
    assert scan.find_ric(f"SN{number}") == ([], 0) and scan.find_ric(f"{number}7") == ([], 0)
    assert scan.find_ric(f"A_{number}") == ([], 0) and scan.find_ric(f"9.{number}") == ([], 0)
    assert scan.find_emails("邮箱li.na@example.org，谢谢") == ["li.na@example.org"]
    assert scan.find_emails("mailto:li.na@example.org") == ["li.na@example.org"]
    assert scan.find_emails("li.na@example.org1") == [] and scan.find_emails("x" * 70 + "@example.org") == []


if __name__ == "__main__":
    written = write_corpus(CORPUS)
    print(f"wrote {len(written)} files under {CORPUS}")
