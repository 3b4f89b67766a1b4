"""Deterministic synthetic national customer data, for benchmarks and matching tests.

Why synthetic and why this shape: real records cannot leave a customer's site, yet the
matcher must be measured on data with the hard parts of real data: surnames by real
frequency (so 张伟 repeats thousands of times at 10 M), homophone given names (伟/玮/
炜/维), surnames pypinyin misreads (曾, 单, 区…), addresses in every spelling, numbers
from the real mobile blocks of each city (so 归属地 lookups are meaningful), landlines
with real area codes, family lines shared by several customers, and duplicates the
importer must merge. The same seed gives byte-identical output.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TextIO

from hotline.matching.places import City, city_named, short_name
from hotline.routing.regions import default_table

__all__ = ["CSV_COLUMNS", "generate", "write_csv", "write_jsonl"]

# Top surnames with approximate shares (per mille) of the population; the tail carries
# the surnames that pypinyin misreads, so the override table is exercised.
_SURNAMES = [
    "王72",
    "李71",
    "张68",
    "刘54",
    "陈45",
    "杨31",
    "黄22",
    "赵21",
    "吴20",
    "周19",
    "徐17",
    "孙15",
    "马14",
    "朱13",
    "胡13",
    "郭12",
    "何12",
    "高11",
    "林11",
    "罗10",
    "郑9",
    "梁9",
    "谢8",
    "宋8",
    "唐8",
    "许7",
    "韩7",
    "冯7",
    "邓7",
    "曹7",
    "彭7",
    "曾6",
    "肖6",
    "田6",
    "董6",
    "袁5",
    "潘5",
    "于5",
    "蒋5",
    "蔡5",
    "余5",
    "杜5",
    "叶5",
    "程5",
    "苏5",
    "魏5",
    "吕4",
    "丁4",
    "任4",
    "沈4",
    "姚4",
    "卢4",
    "姜4",
    "崔4",
    "钟4",
    "谭4",
    "陆4",
    "汪3",
    "范3",
    "金3",
    "石3",
    "廖3",
    "贾3",
    "夏3",
    "韦3",
    "付3",
    "方3",
    "白3",
    "邹3",
    "孟3",
    "熊3",
    "秦3",
    "邱3",
    "江3",
    "尹3",
    "薛2",
    "闫2",
    "段2",
    "雷2",
    "侯2",
    "龙2",
    "史2",
    "陶2",
    "黎2",
    "贺2",
    "顾2",
    "毛2",
    "郝2",
    "龚2",
    "邵2",
    "万2",
    "钱2",
    "严2",
    "覃2",
    "武2",
    "戴2",
    "莫2",
    "孔2",
    "向2",
    "汤2",
    "章2",
    "单1",
    "解1",
    "仇1",
    "区1",
    "查1",
    "盖1",
    "缪1",
    "乐1",
    "翟1",
    "朴1",
    "冼1",
    "欧阳1",
    "司马1",
    "诸葛1",
    "上官1",
]
SURNAMES = tuple(s[:-1] if not s[-2].isdigit() else s[:-2] for s in _SURNAMES)
SURNAME_WEIGHTS = tuple(int("".join(ch for ch in s if ch.isdigit())) for s in _SURNAMES)
GIVEN = (
    "伟玮炜维芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉文辉鹏飞建国志海燕红梅春小"
    "晓东婷雪琳宇浩然子涵欣怡梓萱一诺俊博睿思佳嘉琪瑶颖晨阳鑫宁凯亮斌波帅龙翔峰林轩泽昊天"
    "瑞晴雨欢慧玲萍珍凤丹彤莉倩秀兵磊鸣铭民敏"
)
ROADS = tuple(
    [
        "中山",
        "人民",
        "解放",
        "建设",
        "和平",
        "新华",
        "长江",
        "黄河",
        "胜利",
        "文化",
        "光明",
        "幸福",
        "东风",
        "青年",
        "团结",
        "迎宾",
        "滨江",
        "学府",
        "科技",
        "建国",
        "工业",
        "花园",
        "体育",
        "复兴",
    ]
)
ROAD_SUFFIX = ("路", "路", "路", "街", "大街", "大道")
ESTATES = tuple(
    [
        "金碧",
        "万科",
        "华府",
        "御景",
        "龙湖",
        "保利",
        "绿地",
        "恒大",
        "碧水",
        "阳光",
        "名都",
        "锦绣",
        "翠苑",
        "怡景",
        "丽都",
        "君临",
        "海逸",
        "紫荆",
    ]
)
ESTATE_SUFFIX = ("小区", "花园", "公寓", "新村", "苑", "家园")
BUILDING = ("号楼", "栋", "幢", "座")
MODELS = (
    "JSQ25-13WH5",
    "JSQ30-16WT8",
    "ES60H-Q5",
    "ES80H-MV3",
    "RSJ-35/300",
    "LN1-28HA",
    "JZT-Q332",
)
DEALERS = ("苏宁", "国美", "京东自营", "天猫旗舰店", "本地经销商", "五星电器")
PROVIDERS = ("官方服务", "授权服务网点", "经销商自装")
DIALECT_BY_PROVINCE = {
    "广东省": "cantonese",
    "广西壮族自治区": "cantonese",
    "上海市": "wu",
    "浙江省": "wu",
    "福建省": "minnan",
    "四川省": "southwestern",
    "重庆市": "southwestern",
    "湖南省": "xiang",
}
CN_DIGITS = "零一二三四五六七八九"
CSV_COLUMNS = (
    "name",
    "tier",
    "preferred_dialect",
    "account_manager",
    "tags",
    "site",
    "phones",
    "addresses",
    "products",
)
# Where the synthetic customers live: 45 cities of every region of the country, with the
# districts their addresses use (a sample: the national table has 2,800 county-level
# areas; a test checks each row against it). The area code is the one the numbers get.
# Kept here rather than drawn from the national table so that a seed gives the same
# data it gave before the table grew (the recorded benchmark data stays reproducible).
_SAMPLE = (
    ("北京市", "10", "东城区 西城区 朝阳区 海淀区 丰台区 石景山区 通州区 昌平区 大兴区"),
    ("上海市", "21", "黄浦区 徐汇区 长宁区 静安区 普陀区 虹口区 杨浦区 浦东新区 闵行区"),
    ("天津市", "22", "和平区 河东区 河西区 南开区 河北区 红桥区 滨海新区"),
    ("重庆市", "23", "渝中区 江北区 沙坪坝区 九龙坡区 南岸区 渝北区 巴南区"),
    ("广州市", "20", "天河区 越秀区 海珠区 荔湾区 白云区 番禺区 黄埔区 花都区"),
    ("深圳市", "755", "福田区 罗湖区 南山区 宝安区 龙岗区 龙华区"),
    ("佛山市", "757", "禅城区 南海区 顺德区 三水区 高明区"),
    ("东莞市", "769", "莞城街道 南城街道 东城街道 虎门镇 长安镇"),
    ("汕头市", "754", "金平区 龙湖区 濠江区 潮阳区 澄海区"),
    ("梅州市", "753", "梅江区 梅县区 兴宁市 大埔县"),
    ("杭州市", "571", "上城区 拱墅区 西湖区 滨江区 萧山区 余杭区"),
    ("宁波市", "574", "海曙区 江北区 北仑区 镇海区 鄞州区"),
    ("温州市", "577", "鹿城区 龙湾区 瓯海区 瑞安市 乐清市"),
    ("南京市", "25", "玄武区 秦淮区 建邺区 鼓楼区 栖霞区 雨花台区 江宁区"),
    ("苏州市", "512", "姑苏区 虎丘区 吴中区 相城区 吴江区 昆山市"),
    ("无锡市", "510", "梁溪区 锡山区 惠山区 滨湖区 新吴区"),
    ("徐州市", "516", "鼓楼区 云龙区 贾汪区 泉山区 铜山区"),
    ("福州市", "591", "鼓楼区 台江区 仓山区 马尾区 晋安区"),
    ("厦门市", "592", "思明区 海沧区 湖里区 集美区 同安区 翔安区"),
    ("泉州市", "595", "鲤城区 丰泽区 洛江区 晋江市 石狮市"),
    ("成都市", "28", "锦江区 青羊区 金牛区 武侯区 成华区 双流区 郫都区"),
    ("武汉市", "27", "江岸区 江汉区 硚口区 汉阳区 武昌区 洪山区 青山区"),
    ("长沙市", "731", "芙蓉区 天心区 岳麓区 开福区 雨花区 望城区"),
    ("南昌市", "791", "东湖区 西湖区 青云谱区 青山湖区 新建区"),
    ("赣州市", "797", "章贡区 南康区 赣县区 于都县"),
    ("郑州市", "371", "中原区 二七区 金水区 惠济区 管城回族区"),
    ("开封市", "371", "龙亭区 顺河回族区 鼓楼区 禹王台区 祥符区"),
    ("石家庄市", "311", "长安区 桥西区 新华区 裕华区 井陉矿区"),
    ("唐山市", "315", "路南区 路北区 古冶区 开平区 丰南区"),
    ("济南市", "531", "历下区 市中区 槐荫区 天桥区 历城区"),
    ("青岛市", "532", "市南区 市北区 黄岛区 崂山区 李沧区 城阳区"),
    ("太原市", "351", "小店区 迎泽区 杏花岭区 尖草坪区 万柏林区"),
    ("西安市", "29", "新城区 碑林区 莲湖区 雁塔区 未央区 长安区"),
    ("沈阳市", "24", "和平区 沈河区 大东区 皇姑区 铁西区 浑南区"),
    ("大连市", "411", "中山区 西岗区 沙河口区 甘井子区 金州区"),
    ("长春市", "431", "南关区 宽城区 朝阳区 二道区 绿园区"),
    ("哈尔滨市", "451", "道里区 南岗区 道外区 香坊区 松北区"),
    ("合肥市", "551", "瑶海区 庐阳区 蜀山区 包河区"),
    ("南宁市", "771", "兴宁区 青秀区 江南区 西乡塘区 良庆区"),
    ("昆明市", "871", "五华区 盘龙区 官渡区 西山区 呈贡区"),
    ("贵阳市", "851", "南明区 云岩区 花溪区 乌当区 白云区 观山湖区"),
    ("海口市", "898", "秀英区 龙华区 琼山区 美兰区"),
    ("兰州市", "931", "城关区 七里河区 西固区 安宁区"),
    ("呼和浩特市", "471", "新城区 回民区 玉泉区 赛罕区"),
    ("乌鲁木齐市", "991", "天山区 沙依巴克区 新市区 水磨沟区"),
)


def _sample_city(name: str, area_code: str, districts: str) -> City:
    national = city_named(name)
    return City(national.province, name, (area_code,), tuple(districts.split()))


CITIES: tuple[City, ...] = tuple(_sample_city(*row) for row in _SAMPLE)

# City weights: the big four and provincial capitals carry more customers.
_CITY_WEIGHTS = tuple(
    6
    if c.name in ("北京市", "上海市", "广州市", "深圳市")
    else 3
    if c.area_code.isdigit() and len(c.area_code) == 2
    else 2
    for c in CITIES
)


@cache
def mobile_blocks() -> dict[str, tuple[int, ...]]:
    """Real 7-digit mobile blocks per sample city (``北京市`` → (1380013, …)).

    From routing's locator (:meth:`hotline.routing.regions.RegionTable.mobile_blocks`), so a
    generated number locates to the city it was made for, by the same data and names.
    """
    table = default_table()
    by_region = table.mobile_blocks()
    blocks: dict[str, tuple[int, ...]] = {}
    for city in CITIES:
        region = table.find(city.province, city.name)
        if region is not None and region in by_region:
            blocks[city.name] = tuple(sorted(by_region[region]))
    return blocks


def _cn_number(value: int) -> str:
    if value < 10:
        return CN_DIGITS[value]
    if value < 20:
        return "十" + (CN_DIGITS[value - 10] if value > 10 else "")
    if value < 100:
        return CN_DIGITS[value // 10] + "十" + (CN_DIGITS[value % 10] if value % 10 else "")
    return "".join(CN_DIGITS[int(d)] for d in str(value))


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.blocks = mobile_blocks()
        self.family: list[tuple[str, str]] = []  # (city, number) of recent lines to share
        self.recent: list[dict[str, Any]] = []  # for duplicates to merge

    def name(self) -> str:
        rng = self.rng
        surname = rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]
        size = 1 if rng.random() < 0.3 else 2
        return surname + "".join(rng.choice(GIVEN) for _ in range(size))

    def mobile(self, city: City) -> str:
        rng = self.rng
        blocks = self.blocks.get(city.name)
        if not blocks or rng.random() < 0.08:  # someone with a number from elsewhere
            blocks = self.blocks[rng.choice(tuple(self.blocks))]
        return f"{rng.choice(blocks)}{rng.randrange(10_000):04d}"

    def formatted(self, number: str) -> str:
        """The number the way a site typed it: most plain, some with noise."""
        roll = self.rng.random()
        if roll < 0.75:
            return number
        if number.startswith("0"):  # landline
            return number[:4] + "-" + number[4:] if roll < 0.9 else f"({number[:4]}){number[4:]}"
        if roll < 0.85:
            return f"{number[:3]} {number[3:7]} {number[7:]}"
        if roll < 0.93:
            return f"+86 {number}"
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"

    def address(self, city: City) -> tuple[str, str]:
        rng = self.rng
        district = rng.choice(city.districts)
        road = rng.choice(ROADS) + rng.choice(ROAD_SUFFIX)
        number = rng.randint(1, 300)
        estate = rng.choice(ESTATES) + rng.choice(ESTATE_SUFFIX)
        building = rng.randint(1, 30)
        unit = rng.randint(1, 6)
        room = rng.randint(1, 33) * 100 + rng.randint(1, 4)
        bld = f"{building}{rng.choice(BUILDING)}"
        roll = rng.random()
        head = (
            city.province + ("" if city.province == city.name else city.name)
            if roll < 0.6
            else city.name
            if roll < 0.9
            else short_name(city.name)
        )
        raw = f"{head}{district}{road}{number}号{estate}{bld}{unit}单元{room}室"
        return district, raw

    def landline(self, city: City) -> str:
        size = 8 if len(city.area_code) == 2 or self.rng.random() < 0.8 else 7
        first = self.rng.randint(2, 8)
        rest = self.rng.randrange(10 ** (size - 1))
        return f"0{city.area_code}{first}{rest:0{size - 1}d}"

    def products(self) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            bought = date(2015, 1, 1) + timedelta(days=rng.randrange(4000))
            installed = bought + timedelta(days=rng.randrange(20))
            serial = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(14))
            out.append(
                {
                    "model": rng.choice(MODELS),
                    "serial": serial,
                    "purchase_date": bought.isoformat(),
                    "install_date": installed.isoformat(),
                    "dealer": rng.choice(DEALERS),
                    "service_provider": rng.choice(PROVIDERS),
                    "warranty_end": bought.replace(
                        year=bought.year + rng.choice((3, 6, 8))
                    ).isoformat()
                    if not (bought.month == 2 and bought.day == 29)
                    else (bought + timedelta(days=365 * 3)).isoformat(),
                }
            )
        return out

    def record(self, index: int) -> dict[str, Any]:
        rng = self.rng
        if self.recent and rng.random() < 0.005:
            # the same customer entered again at another site: same name and phone
            original = rng.choice(self.recent)
            city = next(c for c in CITIES if c.name == original["_city"])
            return {
                "name": original["name"],
                "tier": "standard",
                "preferred_dialect": None,
                "account_manager": None,
                "tags": ["duplicate-entry"],
                "site": f"site-{rng.randint(1, 12):02d}",
                "phones": [original["phones"][0]],
                "addresses": [self.address(city)[1]],
                "products": self.products(),
                "_city": city.name,
            }
        city = rng.choices(CITIES, _CITY_WEIGHTS)[0]
        phones = []
        if self.family and rng.random() < 0.03:
            shared_city, shared = rng.choice(self.family)
            city = next(c for c in CITIES if c.name == shared_city)
            phones.append(shared)
        else:
            phones.append(self.formatted(self.mobile(city)))
        if rng.random() < 0.2:
            phones.append(self.formatted(self.landline(city)))
        if rng.random() < 0.1:
            phones.append(self.formatted(self.mobile(city)))
        if rng.random() < 0.05:
            self.family.append((city.name, phones[0]))
            del self.family[:-500]
        addresses = [self.address(city)[1] for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        tier_roll = rng.random()
        tier = (
            "vip3"
            if tier_roll < 0.005
            else "vip2"
            if tier_roll < 0.02
            else "vip1"
            if tier_roll < 0.06
            else "standard"
        )
        record = {
            "name": self.name(),
            "tier": tier,
            "preferred_dialect": DIALECT_BY_PROVINCE.get(city.province)
            if rng.random() < 0.3
            else None,
            "account_manager": f"{rng.randint(1001, 1200)}" if tier != "standard" else None,
            "tags": rng.sample(
                ("water-heater", "installer", "complaint", "elderly", "shop"), rng.randint(0, 2)
            ),
            "site": f"site-{rng.randint(1, 12):02d}",
            "phones": phones,
            "addresses": addresses,
            "products": self.products(),
            "_city": city.name,
        }
        self.recent.append(record)
        del self.recent[:-1000]
        return record


def generate(count: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Yield ``count`` import records (the JSONL shape), the same for the same seed.

    ``_city`` is the home city used to build the record; importers ignore keys that
    start with ``_``, tests use it to build realistic queries.
    """
    generator = _Generator(seed)
    for index in range(count):
        yield generator.record(index)


def write_jsonl(records: Iterator[dict[str, Any]], out: TextIO) -> int:
    written = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        written += 1
    return written


def write_csv(records: Iterator[dict[str, Any]], out: TextIO) -> int:
    """CSV with one row per customer; lists are ``;``-separated, products are JSON."""
    import csv

    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    written = 0
    for r in records:
        writer.writerow(
            [
                r["name"],
                r["tier"],
                r["preferred_dialect"] or "",
                r["account_manager"] or "",
                ";".join(r["tags"]),
                r["site"],
                ";".join(r["phones"]),
                ";".join(r["addresses"]),
                json.dumps(r["products"], ensure_ascii=False, separators=(",", ":")),
            ]
        )
        written += 1
    return written


def write_file(path: Path, count: int, seed: int = 1) -> int:
    """Write ``count`` records to ``path``; ``.csv`` gives CSV, anything else JSONL."""
    with path.open("w", encoding="utf-8", newline="") as out:
        records = generate(count, seed)
        return write_csv(records, out) if path.suffix == ".csv" else write_jsonl(records, out)
