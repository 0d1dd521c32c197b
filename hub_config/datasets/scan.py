"""The de-identification gate: a bounded scan of every CSV and Parquet file of a
dataset for direct identifiers, and k-anonymity over its declared quasi-identifiers.

Direct identifiers are found in a sample of each file (the first ``sample_rows``
rows, at most about ``sample_bytes`` read) with well-kept libraries where they exist:

- Chinese resident identity numbers: python-stdnum ``cn.ric``'s check digit (GB 11643),
  birth date (1890 to today) and the province of the region code. Not ``ric.is_valid``'s
  rule that the county code existed in the birth year: people keep the code of where
  they were registered, and stdnum's table dates all but about 500 of the 3,500 current
  county codes from 1983 or later (Chongqing's from 1997). Numbers that would be one
  but for the check digit are counted apart and do not fail;
- telephone numbers: Google's libphonenumber (``phonenumbers``), region CN, its
  ``PhoneNumberMatcher`` at leniency ``VALID`` (numbers valid for their region); a
  fixed-line number counts only with its trunk 0 or a country code (``010-65529988``,
  ``+86 10 6552 9988``, not ``1065529988``);
- e-mail addresses: ``email-validator`` (syntax, no DNS);
- dates of birth: full dates in columns whose name says birth (dob, birth_date, 出生日期);
- names: columns named as names (name, patient_name, 姓名, ...) holding name-like
  text, and in any text column, Chinese names (a common surname and one or two
  characters) making up a good part of the values.

Identity numbers, telephone numbers and e-mail addresses count only as whole tokens
(``whole_token``): the character just before and just after the match is not a Latin
letter, a digit or ``_``, nor a ``.`` with a digit on its far side (a decimal point or
a dotted number), except a trailing ``.0``/``.00`` (a number written out as a float).
Whitespace, other punctuation, CJK characters and the ends of the value delimit, so
``SN138001380001234``, ``20261101138001380009`` and ``2026.13800138000`` hold no
telephone number, while ``13800138000``, ``138-0013-8000``, ``电话13800138000`` and
``13800138000/13912345678`` do.

k-anonymity is computed over all rows of each file, reading only the
quasi-identifier columns: every combination of their values must occur at least
``min_k`` times. Each finding gives the number of sampled values of its column that
hold it and their share of the column's non-null sampled values. Reports never
contain an identifier: examples are masked.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from email_validator import EmailNotValidError, validate_email
from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from . import files

FAILING = ("cn_resident_id", "phone", "email", "date_of_birth", "name")

RIC_CANDIDATE = re.compile(r"(?<![0-9A-Za-z_])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z_])")
PHONE_CANDIDATE = re.compile(r"[+＋]?\d[\d ()\-]{5,18}\d")  # \d: fullwidth digits too
EMAIL_CANDIDATE = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,24}")
DATE_VALUE = re.compile(
    r"^\s*(19|20)[0-9]{2}"
    r"(([-/.])(0?[1-9]|1[0-2])\3(0?[1-9]|[12][0-9]|3[01])"  # 1980-01-02, 1975/3/4, 1990.05.06
    r"|\s*年\s*(0?[1-9]|1[0-2])\s*月\s*(0?[1-9]|[12][0-9]|3[01])\s*日?"  # 1990年5月6日
    r"|(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01]))"  # 19900506
    r"(\s|T|$)")
BIRTH_COLUMN = re.compile(r"(^|[_\s-])(dob|birth|birthdate|birthday|date_?of_?birth|born)([_\s-]|$)|出生|生日", re.I)
NAME_COLUMN = re.compile(
    r"^(patient_?|full_?|first_?|last_?|given_?|family_?|sur|middle_?|contact_?|emergency_?contact_?)?name$"
    r"|^(forename|surname)$|姓名|名字", re.I)
NAME_VALUE = re.compile(r"^[A-Z][a-z'\-]+( [A-Z]\.?)?( [A-Z][a-z'\-]+)+$|^[A-Z][a-z'\-]+, [A-Z][a-z'\-]+$")
# The most common Chinese surnames (covering most of the population), and compound ones.
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪"
    "范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜"
    "倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲"
    "房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商"
    "刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "令狐",
)
CJK_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
NAME_SHARE = 0.3  # a column is flagged when this share of its sampled values look like names
VALUE_CHARS = 2000


@dataclass
class ScanSettings:
    sample_rows: int = 10_000
    sample_bytes: int = 16 << 20
    max_files: int = 1000
    min_k: int = 5


def mask(text: str) -> str:
    """``11010519491231002X`` -> ``1101************2X``: enough to recognise the kind, not the person."""
    text = str(text)
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(text) <= 4:
        return "*" * len(text)
    keep = 2 if len(text) < 10 else 4
    return text[:keep] + "*" * (len(text) - keep - 2) + text[-2:]


def is_chinese_name(value: str) -> bool:
    if not CJK_NAME.match(value):
        return False
    if value[:2] in COMPOUND_SURNAMES:
        return len(value) in (3, 4)
    return value[0] in SURNAMES and len(value) in (2, 3)


def _joins(ch: str) -> bool:
    """Whether ``ch`` continues a token: a Latin letter (ASCII or fullwidth), a digit of any script, ``_``."""
    return (ch == "_" or ch.isdecimal() or "a" <= ch <= "z" or "A" <= ch <= "Z"
            or "\uff21" <= ch <= "\uff3a" or "\uff41" <= ch <= "\uff5a")


def whole_token(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` stands as a token of its own, not a part of a longer
    letter-and-digit run (``SN13800138000``, ``138001380001234``) or of a dotted or decimal
    number (``2026.13800138000``, ``13800138000.5``); ``13800138000.0`` stands (a float's ``.0``)."""
    if start > 0:
        before = text[start - 1]
        if _joins(before) or (before == "." and start > 1 and text[start - 2].isdecimal()):
            return False
    if end < len(text):
        after = text[end]
        if _joins(after):
            return False
        if after == "." and end + 1 < len(text) and text[end + 1].isdecimal():
            tail = end + 1
            while tail < len(text) and text[tail] == "0":
                tail += 1
            if tail == end + 1 or (tail < len(text) and (_joins(text[tail]) or text[tail] == ".")):
                return False
    return True


# Residence permits of Hong Kong, Macao and Taiwan residents (810000, 820000, 830000) take the
# same form; stdnum's table knows 81 and 82 as provinces but not 83.
PERMIT_PROVINCES = {"81", "82", "83"}


@functools.lru_cache(maxsize=4096)
def _province_known(region: str) -> bool:
    if region[:2] in PERMIT_PROVINCES:
        return True
    return any("province" in props for _, props in numdb.get("cn/loc").info(region))


def ric_kind(candidate: str) -> str | None:
    """``"valid"`` for a resident identity number, ``"bad_check_digit"`` for one but for
    its check digit, else None (the birth date or province does not fit)."""
    number = candidate.upper()
    try:
        born = ric.get_birth_date(number)
    except ValidationError:
        return None
    if not (1890 <= born.year and born <= datetime.date.today()) or not _province_known(number[:6]):
        return None
    return "valid" if number[-1] == ric.calc_check_digit(number) else "bad_check_digit"


def find_ric(value: str) -> tuple[list[str], int]:
    """Resident identity numbers in ``value``, and how many were one but for the check digit."""
    valid, invalid = [], 0
    for m in RIC_CANDIDATE.finditer(value):
        if not whole_token(value, m.start(), m.end()):
            continue
        kind = ric_kind(m.group(0))
        if kind == "valid":
            valid.append(m.group(0))
        elif kind:
            invalid += 1
    return valid, invalid


def find_phones(value: str) -> list[str]:
    if sum(ch.isdigit() for ch in value) < 7 or not PHONE_CANDIDATE.search(value):
        return []
    out = []
    # VALID: a number valid for its region, not next to a Latin letter. STRICT_GROUPING and
    # EXACT_GROUPING would also drop numbers grouped unlike the national format (1380 013 8000),
    # which are still someone's number; the whole-token rule is what keeps serials out.
    for match in phonenumbers.PhoneNumberMatcher(value, "CN", leniency=phonenumbers.Leniency.VALID):
        if whole_token(value, match.start, match.end) and not _bare_fixed_line(match):
            out.append(match.raw_string)
    return out


def _bare_fixed_line(match: phonenumbers.PhoneNumberMatch) -> bool:
    """A fixed-line number written without its trunk 0 or country code (``2012345678`` for
    020-12345678): how counts and measurements look, not how anyone writes a number."""
    number = match.number
    return (phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE
            and phonenumbers.normalize_digits_only(match.raw_string) == phonenumbers.national_significant_number(number))


def find_emails(value: str) -> list[str]:
    if "@" not in value:
        return []
    out = []
    for m in EMAIL_CANDIDATE.finditer(value):
        if not whole_token(value, m.start(), m.end()):
            continue
        try:
            validate_email(m.group(0), check_deliverability=False)
        except EmailNotValidError:
            continue
        out.append(m.group(0))
    return out


class _ColumnFindings:
    """Per kind, how many sampled values of a column hold it (a value counts once), and masked examples."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}

    def add(self, kind: str, found: list[str] | int):
        """One value's matches (a list), or a number of values found at once (an int)."""
        n = found if isinstance(found, int) else int(bool(found))
        if not n:
            return
        self.counts[kind] = self.counts.get(kind, 0) + n
        if not isinstance(found, int):
            ex = self.examples.setdefault(kind, [])
            for item in found:
                if len(ex) < 3:
                    ex.append(mask(item))


def _number_texts(array: pa.Array, floating: bool) -> list[str]:
    """Integers (and integral floats, as pandas writes a number column with gaps) long enough
    to be a telephone or identity number, as text."""
    out = []
    for v in pc.drop_null(array).to_pylist():
        if floating:
            if v != v or v in (float("inf"), float("-inf")) or v != int(v):
                continue
            v = int(v)
        if abs(v) >= 10**6:
            out.append(str(v))
    return out


def scan_column(name: str, array: pa.Array) -> dict:
    """Findings of one sampled column: {kind: values holding it}, their share of the
    column's non-null sampled values, masked examples."""
    findings = _ColumnFindings()
    typ = array.type
    if pa.types.is_dictionary(typ):
        array = array.cast(typ.value_type)
        typ = array.type
    sampled = len(array) - array.null_count
    birth_column = bool(BIRTH_COLUMN.search(name))
    if birth_column and (pa.types.is_date(typ) or pa.types.is_timestamp(typ)):
        findings.add("date_of_birth", sampled)
        return _result(findings, sampled)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        values = _number_texts(array, pa.types.is_floating(typ))
        text_column = False
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        values = [v[:VALUE_CHARS] for v in pc.drop_null(array).to_pylist()]
        text_column = True
    else:
        return _result(findings, sampled)
    names_seen = 0
    cjk_names = 0
    dates = 0
    for value in values:
        valid, invalid = find_ric(value)
        findings.add("cn_resident_id", valid)
        findings.add("cn_resident_id_invalid_checksum", int(bool(invalid)))
        if not valid:
            findings.add("phone", find_phones(value))
        if text_column:
            findings.add("email", find_emails(value))
            stripped = value.strip()
            if is_chinese_name(stripped):
                cjk_names += 1
            elif NAME_VALUE.match(stripped):
                names_seen += 1
            if birth_column and DATE_VALUE.match(value):
                dates += 1
    nonnull = max(len(values), 1)
    if birth_column and dates:
        findings.add("date_of_birth", dates)
    if text_column and values:
        if cjk_names >= 3 and cjk_names / nonnull >= NAME_SHARE:
            findings.add("name", [v for v in values if is_chinese_name(v.strip())][:3])
            findings.counts["name"] = cjk_names
        elif NAME_COLUMN.search(name) and (names_seen + cjk_names) / nonnull >= NAME_SHARE:
            findings.add("name", [v for v in values if NAME_VALUE.match(v.strip()) or is_chinese_name(v.strip())][:3])
            findings.counts["name"] = names_seen + cjk_names
    return _result(findings, sampled)


def _result(findings: _ColumnFindings, sampled: int) -> dict:
    share = {kind: round(n / sampled, 4) for kind, n in findings.counts.items()} if sampled else {}
    return {"sampled": sampled, "counts": findings.counts, "share": share, "examples": findings.examples}


def _percent(share: float) -> str:
    return "<1%" if 0 < share < 0.01 else f"{share:.0%}"


def sample(path: str, settings: ScanSettings) -> pa.Table:
    """The first rows of a file, bounded by rows and bytes; CSV text columns stay text."""
    fmt = files.file_format(path)
    if fmt == "parquet":
        batches = files.parquet_batches(path, batch_size=min(settings.sample_rows, 8192))
    else:
        batches = files.csv_batches(path, block_size=min(settings.sample_bytes, 4 << 20))
    taken, rows, size = [], 0, 0
    for batch in batches:
        taken.append(batch.slice(0, settings.sample_rows - rows))
        rows += taken[-1].num_rows
        size += batch.nbytes
        if rows >= settings.sample_rows or size >= settings.sample_bytes:
            break
    batches.close()
    return pa.Table.from_batches(taken) if taken else pa.table({})


def k_anonymity(path: str, quasi_identifiers: list[str], min_k: int) -> dict:
    """Smallest equivalence class over the quasi-identifiers across all rows of the file."""
    fmt = files.file_format(path)
    counts: dict[tuple, int] = {}
    batches = (files.parquet_batches(path, batch_size=65536, columns=quasi_identifiers) if fmt == "parquet"
               else files.csv_batches(path, block_size=4 << 20, columns=quasi_identifiers, as_strings=quasi_identifiers))
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        grouped = pa.Table.from_batches([batch]).group_by(quasi_identifiers, use_threads=False).aggregate([([], "count_all")])
        keys = [grouped.column(c).to_pylist() for c in quasi_identifiers]
        for i, n in enumerate(grouped.column("count_all").to_pylist()):
            key = tuple(str(k[i]) if k[i] is not None else None for k in keys)
            counts[key] = counts.get(key, 0) + n
    smallest = min(counts.values()) if counts else 0
    small = [n for n in counts.values() if n < min_k]
    return {
        "quasi_identifiers": quasi_identifiers, "min_k": min_k, "rows": rows, "classes": len(counts),
        "smallest_class": smallest, "classes_below_k": len(small), "rows_below_k": sum(small),
        "passed": rows == 0 or smallest >= min_k,
    }


def scan_dataset(root: str, *, quasi_identifiers: list[str] | None = None, min_k: int | None = None,
                 settings: ScanSettings | None = None) -> tuple[dict, dict]:
    """(report, facts) of the dataset at ``root``; ``report["passed"]`` is the gate's answer."""
    settings = settings or ScanSettings()
    min_k = min_k or settings.min_k
    qis = list(quasi_identifiers or [])
    facts = files.dataset_facts(root, settings.max_files)
    report_files, summary, totals = [], [], {}
    qi_seen = False
    problems = []
    if not facts["files"]:
        problems.append("no CSV or Parquet file found")
    for f in facts["files"]:
        path = files.resolve(root, f["path"])
        table = sample(path, settings)
        columns = {}
        for name in table.column_names:
            result = scan_column(name, table.column(name).combine_chunks())
            if result["counts"]:
                columns[name] = result
                for kind, n in result["counts"].items():
                    totals[kind] = totals.get(kind, 0) + n
        entry = {"path": f["path"], "sampled_rows": table.num_rows, "columns": columns}
        present = [c for c in qis if c in {col["name"] for col in f["columns"]}]
        if qis and present:
            qi_seen = True
            if len(present) < len(qis):
                missing = sorted(set(qis) - set(present))
                entry["k_anonymity"] = {"passed": False, "missing": missing}
                problems.append(f"{f['path']}: quasi-identifiers missing: {', '.join(missing)}")
            else:
                entry["k_anonymity"] = k_anonymity(path, qis, min_k)
                k = entry["k_anonymity"]
                if not k["passed"]:
                    problems.append(
                        f"{f['path']}: k-anonymity {k['smallest_class']} < {min_k} over {', '.join(qis)} "
                        f"({k['classes_below_k']} classes, {k['rows_below_k']} rows below k)")
        report_files.append(entry)
        for name, result in columns.items():
            for kind in FAILING:
                if result["counts"].get(kind):
                    summary.append(
                        f"{f['path']}: column {name}: {kind.replace('_', ' ')} in {result['counts'][kind]} of "
                        f"{result['sampled']} sampled values ({_percent(result['share'][kind])})")
    if qis and not qi_seen and facts["files"]:
        problems.append(f"declared quasi-identifiers ({', '.join(qis)}) are in no file")
    summary.extend(problems)
    passed = not problems and not any(totals.get(k) for k in FAILING)
    report = {
        "passed": passed, "summary": summary, "totals": totals, "files": report_files,
        "settings": {"sample_rows": settings.sample_rows, "sample_bytes": settings.sample_bytes, "min_k": min_k,
                     "quasi_identifiers": qis},
    }
    return report, facts
