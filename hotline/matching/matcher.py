"""The caller matcher's pure half: read a free-text query, score a customer against it.

A query is what an agent types or what the IVR knows: ``张伟 朝阳区``, ``138 0013 8000 王``,
``zhangwei``, ``zw 天河``, ``朝阳区建国路88号五号楼1502``, and the way a caller gives
a name without the given name: ``姓诸葛，襄阳的``, ``王先生 广州``. :func:`parse_query`
splits it into a phone, a name (Hanzi, a surname alone, or typed pinyin), a place and an
address, reading traditional characters as simplified; :func:`score` rates one customer
and names the fields that matched. The database half
(:mod:`hotline.matching.search`) only fetches candidates, so ranking is the same code, and
gives the same order, on SQLite and PostgreSQL.

Scores are additive points, not probabilities: a matching phone (100) outweighs any
name, a name + district beats a name alone, and several customers on one number all
keep the phone's points, so an ambiguous number comes back as several candidates and
the caller of this module decides (it must never link a call to one of them silently).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from rapidfuzz.distance import OSA
from rapidfuzz.fuzz import ratio

from hotline.matching.address import ParsedAddress, is_official_name, normalise, parse_address
from hotline.matching.keys import (
    COMMON_SURNAMES,
    COMPOUND_SURNAMES,
    is_hanzi,
    name_keys,
    normalise_typed_pinyin,
    split_surname,
    to_simplified,
)
from hotline.matching.phone import parse_phone

__all__ = ["Candidate", "CustomerView", "Query", "QueryError", "parse_query", "score"]

MAX_QUERY = 200
_PHONE_CHARS = re.compile(r"^[\d+\-()（）]+$")
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"^[A-Za-z'üÜ:]+$")
_GLUED = re.compile(
    r"^(?:(?P<n1>\+?\d[\d\-]{6,})(?P<h1>[\u3400-\u9fff]{1,4})|"
    r"(?P<h2>[\u3400-\u9fff]{1,4})(?P<n2>\+?\d[\d\-]{6,}))$"
)
_INITIAL_ONLY = re.compile(r"^[bcdfghjklmnpqrstwxyz]{1,4}$")
# "姓王", "我姓诸葛", "他姓欧阳，…": the surname said on its own (the next one or two
# Hanzi; which, :func:`_said_surname` decides)
_SURNAME_SAID = re.compile(r"(?:^|(?<=[\s,;.、。]))(?:我|他|她|客户|对方)?姓(?=[\u3400-\u9fff])")
# "王先生", "诸葛女士", "王伟先生": a name, or a surname alone, with a form of address
_TITLED = re.compile(
    r"^(?P<name>[\u3400-\u9fff]{1,4}?)(?:先生|女士|小姐|太太|师傅|阿姨|老师|大爷|大妈|经理)$"
)
# What a caller puts around a place: "襄阳的", "天河那边", "住在天河区"
_PLACE_BEFORE = ("住在", "家在", "在", "住")
_PLACE_AFTER = ("那边", "那里", "这边", "一带", "附近", "的", "人")

PHONE_POINTS = 100.0
NAME_EXACT, NAME_HOMOPHONE, NAME_FUZZY1, NAME_FUZZY2 = 60.0, 52.0, 42.0, 34.0
PINYIN_EXACT, INITIALS_EXACT, SURNAME = 55.0, 35.0, 20.0
DISTRICT, CITY, PROVINCE, WRONG_PLACE = 20.0, 12.0, 4.0, -40.0
ADDRESS_MAX = 70.0


class QueryError(ValueError):
    """The query cannot be searched (empty, too long, nothing searchable in it)."""


@dataclass(frozen=True, slots=True)
class Query:
    raw: str
    phones: tuple[str, ...] = ()
    phone_kind: str | None = None
    hanzi_name: str | None = None
    # a surname alone: a single Hanzi with a number ("138… 王") or a place ("王 天河区"),
    # or one said as a surname ("姓诸葛", "王先生")
    surname: str | None = None
    typed: str | None = None  # typed pinyin or initials, normalised
    province: str | None = None
    city: str | None = None
    district: str | None = None
    address: ParsedAddress | None = None
    # the same query with a name-like place token (高明) read as the place instead
    alternative: Query | None = None

    @property
    def has_name(self) -> bool:
        return bool(self.hanzi_name or self.typed or self.surname)


@dataclass(slots=True)
class CustomerView:
    """What scoring needs of a customer (loaded by :mod:`hotline.matching.search`)."""

    id: int
    name: str
    name_pinyin: str
    name_initials: str
    city: str | None = None
    district: str | None = None
    phones: set[str] = field(default_factory=set)
    addresses: list[tuple[str | None, str | None, str | None, str]] = field(
        default_factory=list
    )  # (province, city, district, detail)


@dataclass(frozen=True, slots=True)
class Candidate:
    customer_id: int
    score: float
    matched: tuple[str, ...]  # fields that earned points: "phone", "name", "address"…


def _tokens(text: str) -> list[str]:
    """Whitespace tokens, with a number glued to a short name split off (王13800138000)."""
    out: list[str] = []
    for token in text.split():
        glued = _GLUED.match(token)
        if glued is None:
            out.append(token)
        elif glued.group("n1"):
            out.extend((glued.group("n1"), glued.group("h1")))
        else:
            out.extend((glued.group("h2"), glued.group("n2")))
    return out


def parse_query(text: str) -> Query:
    """Split a query into its parts. Raises :class:`QueryError` when nothing is searchable.

    Consecutive digit groups form one number (``138 0013 8000``); a Hanzi token that
    names only places (``朝阳区``, ``广州天河``, ``襄阳的``) is the place; one with a road
    or house number is an address; a short one (≤ 4 Hanzi) is a name, or a surname
    alone when it is one character or a compound surname and a number or a place comes
    with it; ``姓王`` and ``王先生`` are a surname, ``王伟先生`` a name; Latin letters
    are pinyin. Traditional characters are read as simplified first.
    """
    if text is None:
        raise QueryError("empty query")
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        raise QueryError("empty query")
    if len(text) > MAX_QUERY:
        raise QueryError(f"query longer than {MAX_QUERY} characters")
    surname, searched = _said_surname(to_simplified(text))
    digits: list[str] = []
    rest: list[str] = []
    for token in _tokens(searched):
        is_number = _PHONE_CHARS.match(token) and any(ch.isdigit() for ch in token)
        (digits if is_number else rest).append(token)
    phones: tuple[str, ...] = ()
    phone_kind = None
    if digits:
        parsed = parse_phone(" ".join(digits))
        if parsed is None:
            raise QueryError("not a valid phone number")
        phones, phone_kind = parsed.candidates, parsed.kind
    hanzi_name = typed = lone_surname = None
    address = None
    latin: list[str] = []
    places: list[tuple[str | None, ParsedAddress]] = []  # (the token if it could be a name, …)
    for token in rest:
        if _LATIN.match(token):
            latin.append(token)
            continue
        if not _HAN.search(token):
            continue  # punctuation, emoji, symbols: nothing to search on
        han = "".join(ch for ch in token if _HAN.match(ch) or ch.isalnum())
        if titled := _TITLED.match(han):
            name = titled.group("name")
            if _is_surname_alone(name):
                surname = surname or name
            elif hanzi_name is None:
                hanzi_name = name
            continue
        parsed_place = _place(han)
        if parsed_place.detail == "" and (parsed_place.district or parsed_place.city):
            places.append((han if _could_be_a_name(han) else None, parsed_place))
        elif is_hanzi(han) and len(han) <= 4 and hanzi_name is None:
            if _is_surname_alone(han) and lone_surname is None:
                lone_surname = han
            else:
                hanzi_name = han
        else:
            address = parse_address(han)
            places.append((None, address))
    if lone_surname is not None:
        if surname is None and (phones or places):
            surname = lone_surname  # 王 with a number or a place: nobody is named just 王
        elif hanzi_name is None:
            hanzi_name = lone_surname
    every_place = [parsed for _, parsed in places]
    if hanzi_name is None and not latin and surname is None:
        # 高明 天河区: 高明 is the person; alone, 高明 may still be the place, which the
        # search tries (``Query.alternative``) when nobody has that name
        for i, (maybe_name, _parsed) in enumerate(places):
            if maybe_name is not None:
                hanzi_name = maybe_name
                del places[i]
                break
    if latin:
        typed = normalise_typed_pinyin("".join(latin)) or None
    province, city, district = _first_place(parsed for _, parsed in places)
    query = Query(
        raw=text,
        phones=phones,
        phone_kind=phone_kind,
        hanzi_name=hanzi_name,
        surname=surname,
        typed=typed,
        province=province,
        city=city,
        district=district,
        address=address,
    )
    if len(every_place) > len(places) and not places:
        # the token read as a name was the query's only place: 罗湖 alone may mean 罗湖区
        province, city, district = _first_place(every_place)
        alternative = replace(
            query, hanzi_name=None, province=province, city=city, district=district
        )
        if alternative.district or alternative.city:
            query = replace(query, alternative=alternative)
    if not (query.phones or query.has_name or query.address or query.district or query.city):
        raise QueryError("nothing searchable in the query")
    return query


def _said_surname(text: str) -> tuple[str | None, str]:
    """The surname of ``姓王`` / ``我姓诸葛`` in ``text``, and the text without it.

    A compound surname is taken whole (姓欧阳 is 欧阳, not 欧); ``姓名`` is the form's
    label, not the surname 名.
    """
    said = _SURNAME_SAID.search(text)
    if said is None or text[said.end()] == "名":
        return None, text
    after = text[said.end() :]
    size = 2 if after[:2] in COMPOUND_SURNAMES else 1
    return after[:size], f"{text[: said.start()]} {after[size:]}"


def _is_surname_alone(token: str) -> bool:
    """One Hanzi, or a compound surname: nobody's whole name, so a surname."""
    return len(token) == 1 or token in COMPOUND_SURNAMES


def _place(token: str) -> ParsedAddress:
    """The token parsed as an address; when that leaves words around a place (住在天河区,
    襄阳的, 天河那边), the place without them."""
    parsed = parse_address(token)
    if parsed.detail == "":
        return parsed
    core = token
    for before in _PLACE_BEFORE:
        if core.startswith(before) and len(core) > len(before):
            core = core[len(before) :]
            break
    stripped = True
    while stripped:  # 天河那边的: both
        stripped = False
        for after in _PLACE_AFTER:
            if core.endswith(after) and len(core) > len(after):
                core, stripped = core[: -len(after)], True
                break
    if core != token:
        place = parse_address(core)
        if place.detail == "" and (place.district or place.city):
            return place
    return parsed


def _first_place(places: Iterable[ParsedAddress]) -> tuple[str | None, str | None, str | None]:
    """Province, city and district of a query: each from the first token that names it."""
    province = city = district = None
    for place in places:
        province = province or place.province
        city = city or place.city
        district = district or place.district
    return province, city, district


def _could_be_a_name(token: str) -> bool:
    """A place token that is also a plausible person's name: 高明, 罗湖, 金平, 江南.

    Only short spellings qualify (高明区, with its suffix, is the district), and only
    when they start with a common surname; with national place names, two thousand
    county-level areas have a two-character short form, and some are everyday names.
    """
    if is_official_name(token) or not 2 <= len(token) <= 3:
        return False
    surname, _given = split_surname(token)
    return surname in COMMON_SURNAMES


def _name_points(query: Query, customer: CustomerView) -> float:
    if query.hanzi_name:
        name = to_simplified(customer.name)  # the query is simplified; a record may not be
        if name == query.hanzi_name:
            return NAME_EXACT
        keys = name_keys(query.hanzi_name)
        if customer.name_pinyin == keys.pinyin:
            return NAME_HOMOPHONE
        distance = OSA.distance(customer.name_pinyin, keys.pinyin, score_cutoff=2)
        same_size = len(name) == len(query.hanzi_name)
        if distance <= 1:
            return NAME_FUZZY1 + (2 if same_size else 0)
        if distance == 2:
            return NAME_FUZZY2 + (2 if same_size else 0)
        if same_size and len(name) >= 3:
            wrong = sum(a != b for a, b in zip(name, query.hanzi_name, strict=True))
            if wrong == 1:
                return NAME_FUZZY2  # one wrong character whose reading is far off
        return 0.0
    if query.typed:
        if customer.name_pinyin == query.typed:
            return PINYIN_EXACT
        if customer.name_initials == query.typed:
            return INITIALS_EXACT
        if not _INITIAL_ONLY.match(query.typed):
            distance = OSA.distance(customer.name_pinyin, query.typed, score_cutoff=2)
            if distance <= 1:
                return NAME_FUZZY1
            if distance == 2:
                return NAME_FUZZY2
        return 0.0
    if query.surname and to_simplified(customer.name).startswith(query.surname):
        return SURNAME
    return 0.0


def _place_points(query: Query, customer: CustomerView) -> tuple[float, bool]:
    """Points for the place, and whether the place matched at all."""
    if not (query.district or query.city):
        return 0.0, False
    places = [(p, c, d) for p, c, d, _ in customer.addresses] or [
        (None, customer.city, customer.district)
    ]
    best = WRONG_PLACE
    for _province, city, district in places:
        points = 0.0
        if query.city and city and query.city != city:
            continue
        if query.district:
            if district != query.district:
                continue
            points += DISTRICT
        if query.city and city == query.city:
            points += CITY
        best = max(best, points)
    return best, best > 0


def _address_points(query: Query, customer: CustomerView) -> float:
    if query.address is None or not query.address.detail:
        return 0.0
    wanted = query.address.detail
    best = 0.0
    for _province, city, district, detail in customer.addresses:
        if query.address.city and city and city != query.address.city:
            continue
        if query.address.district and district and district != query.address.district:
            continue
        similarity = 100.0 if wanted in detail else ratio(wanted, detail)
        best = max(best, similarity)
    return ADDRESS_MAX * best / 100 if best >= 50 else 0.0


def score(query: Query, customer: CustomerView) -> Candidate:
    """Score one customer; a candidate with score ≤ 0 is not a match."""
    matched: list[str] = []
    total = 0.0
    if query.phones and customer.phones.intersection(query.phones):
        total += PHONE_POINTS
        matched.append("phone")
    name = _name_points(query, customer)
    if name:
        total += name
        matched.append(
            "name"
            if name in (NAME_EXACT, SURNAME)
            else "initials"
            if name == INITIALS_EXACT
            else "pinyin"
        )
    address = _address_points(query, customer)
    if address:
        total += address
        matched.append("address")
    place, place_matched = _place_points(query, customer)
    if place_matched:
        matched.append("district" if query.district else "city")
    total += place
    if query.phones and "phone" not in matched:
        total = min(total, 0.0)  # a number was given and this customer does not have it
    if (query.has_name and not name) and not ("phone" in matched or address):
        total = min(total, 0.0)
    return Candidate(customer.id, round(total, 2), tuple(matched))


def normalised_detail(text: str) -> str:
    """The normalised form used for address needles (exposed for tests)."""
    return normalise(text)
