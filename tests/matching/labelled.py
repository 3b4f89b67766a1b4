"""The labelled query set: queries built from a generated dataset with realistic corruptions.

:func:`build` makes the original kinds; :func:`build_written` the ways people write that
the matcher learnt later: traditional characters in a name or an address, a surname with
a place and no given name (姓王 天河区, 王先生 广州, 姓诸葛，襄阳的) and the numbers of an
address in Chinese numerals, full-width or mixed. It has its own random generator, so
adding it left :func:`build`'s queries as they were.

Each query names the customer it must find. A query whose information cannot tell the
target from another customer (two 王芳 in the same district, initials shared in a
district, a shared family number without a name) is left out, because no matcher
could rank it first; ambiguity itself is tested in ``test_customers_api``.

A wrong character is what an agent mishears or mistypes: another real name character
in its place, at the first, a middle or the last position. The surname is replaced by
another surname of the generator's list (``SURNAMES``), a given-name character by
another of its given-name characters (``GIVEN``), and never by one that reads the same
(that is the homophone kind), so the wrong reading is usually far from the right one
(李伟明 heard as 蒋伟明). Such a query is left out when another customer of the district
is as close to it as the target: one character away from it (or its exact name), or
with a pinyin within two edits of its pinyin, because then the query itself does not
say which of the two the caller is.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opencc import OpenCC
from rapidfuzz.distance import OSA
from sqlalchemy import Engine, Row, text

from hotline.customers.cli import import_file
from hotline.customers.gen import GIVEN, SURNAMES, generate, write_jsonl
from hotline.matching.address import parse_address
from hotline.matching.keys import name_keys, split_surname, syllables
from hotline.matching.places import short_name

SEED = 7
CUSTOMERS = 3000

HOMOPHONES = ["伟玮炜维", "明铭鸣", "敏民", "林琳", "静晶", "红宏", "丽莉", "芳方", "华桦", "杰洁"]
_HOMOPHONE_OF = {ch: group for group in HOMOPHONES for ch in group}
_CN = "零一二三四五六七八九"


@dataclass(frozen=True)
class Labelled:
    query: str
    target: int
    kind: str


def load(engine: Engine, tmp: Path) -> None:
    data = tmp / "labelled.jsonl"
    with data.open("w", encoding="utf-8") as out:
        write_jsonl(generate(CUSTOMERS, SEED), out)
    report = import_file(engine, data, report_path=tmp / "rejected.tsv", show_progress=False)
    assert report.rejected == 0


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def _phone_forms(e164: str, rng: random.Random) -> str:
    n = e164[3:]
    if n[0] != "1":  # landline
        area = n[:2] if n[0] in "12" else n[:3]
        return rng.choice([f"0{area}-{n[len(area) :]}", f"(0{area}) {n[len(area) :]}", f"+86 {n}"])
    return rng.choice(
        [
            n,
            f"+86 {n[:3]} {n[3:7]} {n[7:]}",
            f"0086{n}",
            f"86-{n}",
            f"0{n}",
            f"{n[:3]}-{n[3:7]}-{n[7:]}",
        ]
    )


def _address_variant(raw: str, rng: random.Random) -> str:
    out = raw
    for old in ("广东省", "北京市", "上海市", "江苏省", "浙江省", "福建省", "四川省"):
        out = out.replace(old, "", 1) if rng.random() < 0.5 else out
    out = out.replace("号楼", rng.choice(["栋", "幢", "号楼"])).replace("大街", "街")
    if rng.random() < 0.4:
        out = out.replace("室", "")
    if rng.random() < 0.3:
        out = _full_width(out)
    if rng.random() < 0.3:  # building number in Chinese numerals
        out = re.sub(r"(\d)(栋|幢|座)", lambda m: _CN[int(m.group(1))] + m.group(2), out, count=1)
    return out


_WRONG_POSITION = {
    "wrong-first-char+district": "first",
    "wrong-middle-char+district": "middle",
    "wrong-last-char+district": "last",
}


def _wrong_char(name: str, position: str, rng: random.Random) -> str | None:
    """``name`` with the character at ``position`` replaced by another real name
    character that reads differently, or None when the name has no such position
    (a compound surname is not replaced, nor is a surname character in the middle)."""
    surname = split_surname(name)[0]
    if len(name) < 3 or (position == "first" and len(surname) != 1):
        return None
    if position == "first":
        at, pool = 0, SURNAMES
    elif position == "last":
        at, pool = len(name) - 1, GIVEN
    else:
        middle = range(len(surname), len(name) - 1)  # given-name characters, not the last
        if not middle:
            return None
        at, pool = rng.choice(middle), GIVEN
    reading = syllables(name)[at]
    choices = sorted({ch for ch in pool if len(ch) == 1 and ch != name[at]})
    for _ in range(20):
        wrong = name[:at] + rng.choice(choices) + name[at + 1 :]
        parts = syllables(wrong)
        if len(parts) == len(wrong) and parts[at] != reading:
            return wrong
    return None


def _answerable(wrong: str, target: int, district: list[tuple[int, str, str]]) -> bool:
    """True when no other customer of the district is as close to ``wrong`` as the
    target (one character away) is: none one character or less away, none whose
    pinyin is within two edits of the query's."""
    pinyin = name_keys(wrong).pinyin
    for cid, name, name_pinyin in district:
        if cid == target:
            continue
        if len(name) == len(wrong) and sum(a != b for a, b in zip(name, wrong, strict=True)) <= 1:
            return False
        if OSA.distance(name_pinyin, pinyin, score_cutoff=2) <= 2:
            return False
    return True


def _record(engine: Engine) -> tuple[list[Row[Any]], list[Row[Any]], list[Row[Any]]]:
    """The customers, their phones and their addresses, in id order."""
    with engine.connect() as conn:
        customers = conn.execute(
            text(
                "SELECT id, name, name_pinyin, name_initials, city, district "
                "FROM customers ORDER BY id"
            )
        ).all()
        phones = conn.execute(
            text("SELECT customer_id, e164 FROM customer_phones ORDER BY id")
        ).all()
        addresses = conn.execute(
            text("SELECT customer_id, raw, district FROM addresses ORDER BY id")
        ).all()
    return list(customers), list(phones), list(addresses)


def build(engine: Engine, count: int = 440) -> list[Labelled]:
    rng = random.Random(SEED)
    customers, phones, addresses = _record(engine)
    owners = Counter(e164 for _, e164 in phones)
    phone_of = {}
    for cid, e164 in phones:
        phone_of.setdefault(cid, e164)
    address_of: dict[int, list[str]] = {}
    for cid, raw, _ in addresses:
        address_of.setdefault(cid, []).append(raw)
    by_name_district = Counter((c.name, c.district) for c in customers)
    by_py_district = Counter((c.name_pinyin, c.district) for c in customers)
    by_init_district = Counter((c.name_initials, c.district) for c in customers)
    by_district: dict[str, list[tuple[int, str, str]]] = {}
    for c in customers:
        by_district.setdefault(c.district, []).append((c.id, c.name, c.name_pinyin))
    out: list[Labelled] = []
    sample = rng.sample(customers, len(customers))
    kinds = [
        "phone",
        "phone+surname",
        "name+district",
        "homophone+district",
        "pinyin+district",
        "initials+district",
        "wrong-first-char+district",
        "wrong-middle-char+district",
        "wrong-last-char+district",
        "pinyin-typo+district",
        "address",
    ]
    for i, c in enumerate(sample):
        if len(out) >= count:
            break
        if c.district is None:
            continue
        kind = kinds[i % len(kinds)]
        e164 = phone_of.get(c.id)
        if kind == "phone" and e164 and owners[e164] == 1:
            out.append(Labelled(_phone_forms(e164, rng), c.id, kind))
        elif kind == "phone+surname" and e164 and owners[e164] >= 1:
            out.append(Labelled(f"{_phone_forms(e164, rng)} {c.name[0]}", c.id, kind))
        elif kind == "name+district" and by_name_district[(c.name, c.district)] == 1:
            out.append(Labelled(f"{c.name} {c.district}", c.id, kind))
        elif kind == "homophone+district" and by_py_district[(c.name_pinyin, c.district)] == 1:
            swapped = [
                rng.choice(_HOMOPHONE_OF[ch].replace(ch, "")) if ch in _HOMOPHONE_OF and j else ch
                for j, ch in enumerate(c.name)
            ]
            if "".join(swapped) != c.name:
                out.append(Labelled(f"{''.join(swapped)} {c.district}", c.id, kind))
        elif kind == "pinyin+district" and by_py_district[(c.name_pinyin, c.district)] == 1:
            typed = c.name_pinyin if rng.random() < 0.5 else c.name_pinyin.capitalize()
            out.append(Labelled(f"{typed} {c.district.removesuffix('区')}", c.id, kind))
        elif kind == "initials+district" and by_init_district[(c.name_initials, c.district)] == 1:
            out.append(Labelled(f"{c.name_initials} {c.district}", c.id, kind))
        elif kind in _WRONG_POSITION and (wrong := _wrong_char(c.name, _WRONG_POSITION[kind], rng)):
            if _answerable(wrong, c.id, by_district[c.district]):
                out.append(Labelled(f"{wrong} {c.district}", c.id, kind))
        elif (
            kind == "pinyin-typo+district"
            and len(c.name_pinyin) >= 6
            and by_py_district[(c.name_pinyin, c.district)] == 1
        ):
            k = rng.randrange(1, len(c.name_pinyin) - 1)
            py = c.name_pinyin
            typo = py[:k] + py[k + 1] + py[k] + py[k + 2 :]
            out.append(Labelled(f"{typo} {c.district}", c.id, kind))
        elif kind == "address" and c.id in address_of:
            out.append(Labelled(_address_variant(rng.choice(address_of[c.id]), rng), c.id, kind))
    return out


# -- the ways people write (build_written) ------------------------------------------------

_TO_TRADITIONAL = OpenCC("s2t")
WRITTEN_KINDS = (
    "traditional-name+district",
    "traditional-address",
    "surname+place",
    "address-numerals",
)
_CN_READ = "零一二三四五六七八九"
_TITLES = ("先生", "女士", "小姐", "师傅")


def _traditional(text: str) -> str:
    return _TO_TRADITIONAL.convert(text)


def _cn_reading(value: int) -> str:
    """123 → 一百二十三, 10 → 十, 205 → 二百零五 (the way a number is said)."""
    if value < 10:
        return _CN_READ[value]
    out = ""
    gap = False
    for digit, unit in zip(str(value).rjust(4, "0"), ("千", "百", "十", ""), strict=True):
        if digit == "0":
            gap = bool(out)
            continue
        if gap:
            out += "零"
            gap = False
        out += ("" if unit == "十" and not out and digit == "1" else _CN_READ[int(digit)]) + unit
    return out


def _numerals(raw: str, rng: random.Random) -> str | None:
    """``raw`` with its numbers written as people write them: said in Chinese numerals
    (一百二十三号), read digit by digit (一五零二, 幺五零二), full-width, or mixed with
    digits (一23号); the room's 室 is sometimes left off. None when no number changed."""

    def rewrite(match: re.Match[str]) -> str:
        digits, unit = match.group(1), match.group(2)
        value = int(digits)
        if unit == "室":
            room = "".join(_CN_READ[int(d)] for d in digits)
            if rng.random() < 0.3:
                room = room.replace("一", "幺")
            return room + ("" if rng.random() < 0.5 else "室")
        form = rng.choice(("said", "digit by digit", "full-width", "mixed", "as is"))
        if form == "said":
            return _cn_reading(value) + unit
        if form == "digit by digit":
            return "".join(_CN_READ[int(d)] for d in digits) + unit
        if form == "full-width":
            return _full_width(digits) + unit
        if form == "mixed" and len(digits) > 1:
            return _CN_READ[int(digits[0])] + digits[1:] + unit
        return digits + unit

    out = re.sub(r"(\d+)(号楼|号|栋|幢|座|单元|室)", rewrite, raw)
    return out if out != raw else None


def build_written(engine: Engine, per_kind: int = 40) -> list[Labelled]:
    """Up to ``per_kind`` queries of each of :data:`WRITTEN_KINDS`, each naming a customer
    that nothing else in the query's place could be."""
    rng = random.Random(SEED + 1)
    customers, _phones, addresses = _record(engine)
    address_of: dict[int, list[str]] = {}
    for cid, raw, _ in addresses:
        address_of.setdefault(cid, []).append(raw)
    by_name_district = Counter((c.name, c.district) for c in customers)
    surname_of = {c.id: split_surname(c.name)[0] for c in customers}
    by_surname_district = Counter((surname_of[c.id], c.district) for c in customers)
    by_surname_city = Counter((surname_of[c.id], c.city) for c in customers)
    out: list[Labelled] = []
    made: Counter[str] = Counter()
    for i, c in enumerate(rng.sample(customers, len(customers))):
        kind = WRITTEN_KINDS[i % len(WRITTEN_KINDS)]
        if c.district is None or made[kind] >= per_kind:
            continue
        query = None
        if kind == "traditional-name+district" and by_name_district[(c.name, c.district)] == 1:
            name = _traditional(c.name)
            if name != c.name:
                query = f"{name} {_traditional(c.district)}"
        elif kind == "traditional-address" and c.id in address_of:
            raw = _address_variant(rng.choice(address_of[c.id]), rng)
            query = _traditional(raw) if _traditional(raw) != raw else None
        elif kind == "surname+place":
            query = _surname_and_place(
                c, surname_of[c.id], by_surname_district, by_surname_city, rng
            )
        elif kind == "address-numerals" and c.id in address_of:
            query = _numerals(rng.choice(address_of[c.id]), rng)
        if query is not None:
            out.append(Labelled(query, c.id, kind))
            made[kind] += 1
    return out


def _surname_and_place(
    c: Row[Any],
    surname: str,
    by_district: Counter[tuple[str, str]],
    by_city: Counter[tuple[str, str]],
    rng: random.Random,
) -> str | None:
    """A surname with a place, as a caller says it, when nobody else of that surname
    lives there (counted over the district's name in every city, for 朝阳区)."""
    city_short = short_name(c.city) if c.city else None
    if city_short and parse_address(city_short).city != c.city:
        city_short = None  # a short name that reads as another place
    form = rng.randrange(5)
    if form < 4 and by_district[(surname, c.district)] == 1:
        district = c.district if rng.random() < 0.5 else short_name(c.district)
        if parse_address(district).district != c.district:
            district = c.district
        return (
            f"姓{surname} {district}",
            f"姓{surname}，{district}的",
            f"{surname}{rng.choice(_TITLES)} {district}",
            f"{surname} {district}",
        )[form]
    if city_short and by_city[(surname, c.city)] == 1:
        return rng.choice(
            (f"{surname}{rng.choice(_TITLES)} {city_short}", f"姓{surname}，{city_short}的")
        )
    return None


# Hand-written hard cases: (name, phone, address) created in the record, then queries.
HARD_RECORDS = [
    ("曾小贤", "19912345601", "上海市浦东新区世纪大道100号"),
    ("单田芳", "16612345602", "天津市河西区友谊路20号"),
    ("区志明", "17112345603", "广州市天河区体育西路103号维多利广场B座2001"),
    ("朴树", "13912345604", "北京市海淀区中关村大街27号"),
    ("覃海燕", "0771-5123456", "广西南宁市青秀区民族大道136号"),
    ("解缙", "19812345606", "南京市鼓楼区中山路1号"),
    ("欧阳娜娜", "13512345607", "深圳市南山区科苑路15号"),
    ("长孙无忌", "18612345608", "西安市雁塔区长安南路88号"),
    ("吕布", "13612345609", "成都市武侯区人民南路四段1号"),
    ("诸葛明", "13712345610", "湖北省襄阳市襄城区隆中路1号"),
    ("陳小春", "13812345611", "廣東省廣州市越秀區中山四路二百二十八號"),  # as a HK CRM writes
]
HARD_QUERIES = [
    ("zengxiaoxian", 0),
    ("zxx 浦东", 0),
    ("shantianfang", 1),
    ("stf 河西区", 1),
    ("ouzhiming", 2),
    ("区志明", 2),
    ("天河体育西路103号维多利广场Ｂ座２００１", 2),
    ("piaoshu", 3),
    ("中关村街27号", 3),
    ("qinhaiyan", 4),
    ("(0771)5123456", 4),
    ("0771 512 3456 覃", 4),
    ("xiejin 鼓楼区", 5),
    ("ouyangnana", 6),
    ("Ou Yang Na Na", 6),
    ("zhangsunwuji", 7),
    ("lvbu", 8),
    ("吕布 武侯区", 8),
    ("+86 136-1234-5609", 8),
    ("008613612345609", 8),
    ("姓诸葛，襄阳的", 9),
    ("诸葛先生 襄阳", 9),
    ("姓諸葛 襄城區", 9),
    ("陈小春 越秀区", 10),
    ("陳小春", 10),
    ("越秀区中山四路228号", 10),
    ("越秀區中山四路二百二十八號", 10),
    ("姓陈 越秀区", 10),
]


def add_hard_cases(engine: Engine) -> list[Labelled]:
    from sqlalchemy.orm import Session

    from hotline.customers.rows import address_row, with_name_keys
    from hotline.db.models import Customer, CustomerPhone
    from hotline.matching.address import parse_address
    from hotline.matching.phone import parse_phone

    ids = []
    with Session(engine) as session, session.begin():
        for name, number, raw in HARD_RECORDS:
            parsed = parse_address(raw)
            customer = with_name_keys(
                Customer(name=name, city=parsed.city, district=parsed.district)
            )
            keys = parse_phone(number)
            assert keys is not None
            customer.phones = [CustomerPhone(e164=keys.candidates[0], kind=keys.kind)]
            customer.addresses = [address_row(raw)]
            session.add(customer)
            session.flush()
            ids.append(customer.id)
    return [
        Labelled(unicodedata.normalize("NFC", q), ids[i], "hand-written") for q, i in HARD_QUERIES
    ]
