"""A compact table of real Chinese administrative areas for parsing and synthetic data.

Why our own table rather than cpca or jionlp (research §3.3): cpca's data is stale and
guesses ambiguous districts wrongly (朝阳区 → 长春), and ``import jionlp`` pulls a
148 MB GPL dependency. The matcher only needs to recognise province, prefecture and
district names in a query and know which are ambiguous, so a table of the cities the
hotline serves most, with their real area codes, is enough and is 200× faster to use.
Extending coverage means adding rows here; nothing else changes.

Names are the official full forms (``广东省``, ``广州市``, ``天河区``); :func:`short_name`
gives the form people say (``广东``, ``广州``, ``天河``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CITIES", "PROVINCES", "City", "short_name"]


@dataclass(frozen=True, slots=True)
class City:
    province: str
    name: str
    area_code: str  # without the trunk 0: "10", "755"
    districts: tuple[str, ...]


def _c(province: str, name: str, area_code: str, districts: str) -> City:
    return City(province, name, area_code, tuple(districts.split()))


CITIES: tuple[City, ...] = (
    _c(
        "北京市", "北京市", "10", "东城区 西城区 朝阳区 海淀区 丰台区 石景山区 通州区 昌平区 大兴区"
    ),
    _c(
        "上海市", "上海市", "21", "黄浦区 徐汇区 长宁区 静安区 普陀区 虹口区 杨浦区 浦东新区 闵行区"
    ),
    _c("天津市", "天津市", "22", "和平区 河东区 河西区 南开区 河北区 红桥区 滨海新区"),
    _c("重庆市", "重庆市", "23", "渝中区 江北区 沙坪坝区 九龙坡区 南岸区 渝北区 巴南区"),
    _c("广东省", "广州市", "20", "天河区 越秀区 海珠区 荔湾区 白云区 番禺区 黄埔区 花都区"),
    _c("广东省", "深圳市", "755", "福田区 罗湖区 南山区 宝安区 龙岗区 龙华区"),
    _c("广东省", "佛山市", "757", "禅城区 南海区 顺德区 三水区 高明区"),
    _c("广东省", "东莞市", "769", "莞城街道 南城街道 东城街道 虎门镇 长安镇"),
    _c("广东省", "汕头市", "754", "金平区 龙湖区 濠江区 潮阳区 澄海区"),
    _c("广东省", "梅州市", "753", "梅江区 梅县区 兴宁市 大埔县"),
    _c("浙江省", "杭州市", "571", "上城区 拱墅区 西湖区 滨江区 萧山区 余杭区"),
    _c("浙江省", "宁波市", "574", "海曙区 江北区 北仑区 镇海区 鄞州区"),
    _c("浙江省", "温州市", "577", "鹿城区 龙湾区 瓯海区 瑞安市 乐清市"),
    _c("江苏省", "南京市", "25", "玄武区 秦淮区 建邺区 鼓楼区 栖霞区 雨花台区 江宁区"),
    _c("江苏省", "苏州市", "512", "姑苏区 虎丘区 吴中区 相城区 吴江区 昆山市"),
    _c("江苏省", "无锡市", "510", "梁溪区 锡山区 惠山区 滨湖区 新吴区"),
    _c("江苏省", "徐州市", "516", "鼓楼区 云龙区 贾汪区 泉山区 铜山区"),
    _c("福建省", "福州市", "591", "鼓楼区 台江区 仓山区 马尾区 晋安区"),
    _c("福建省", "厦门市", "592", "思明区 海沧区 湖里区 集美区 同安区 翔安区"),
    _c("福建省", "泉州市", "595", "鲤城区 丰泽区 洛江区 晋江市 石狮市"),
    _c("四川省", "成都市", "28", "锦江区 青羊区 金牛区 武侯区 成华区 双流区 郫都区"),
    _c("湖北省", "武汉市", "27", "江岸区 江汉区 硚口区 汉阳区 武昌区 洪山区 青山区"),
    _c("湖南省", "长沙市", "731", "芙蓉区 天心区 岳麓区 开福区 雨花区 望城区"),
    _c("江西省", "南昌市", "791", "东湖区 西湖区 青云谱区 青山湖区 新建区"),
    _c("江西省", "赣州市", "797", "章贡区 南康区 赣县区 于都县"),
    _c("河南省", "郑州市", "371", "中原区 二七区 金水区 惠济区 管城回族区"),
    _c("河南省", "开封市", "371", "龙亭区 顺河回族区 鼓楼区 禹王台区 祥符区"),
    _c("河北省", "石家庄市", "311", "长安区 桥西区 新华区 裕华区 井陉矿区"),
    _c("河北省", "唐山市", "315", "路南区 路北区 古冶区 开平区 丰南区"),
    _c("山东省", "济南市", "531", "历下区 市中区 槐荫区 天桥区 历城区"),
    _c("山东省", "青岛市", "532", "市南区 市北区 黄岛区 崂山区 李沧区 城阳区"),
    _c("山西省", "太原市", "351", "小店区 迎泽区 杏花岭区 尖草坪区 万柏林区"),
    _c("陕西省", "西安市", "29", "新城区 碑林区 莲湖区 雁塔区 未央区 长安区"),
    _c("辽宁省", "沈阳市", "24", "和平区 沈河区 大东区 皇姑区 铁西区 浑南区"),
    _c("辽宁省", "大连市", "411", "中山区 西岗区 沙河口区 甘井子区 金州区"),
    _c("吉林省", "长春市", "431", "南关区 宽城区 朝阳区 二道区 绿园区"),
    _c("黑龙江省", "哈尔滨市", "451", "道里区 南岗区 道外区 香坊区 松北区"),
    _c("安徽省", "合肥市", "551", "瑶海区 庐阳区 蜀山区 包河区"),
    _c("广西壮族自治区", "南宁市", "771", "兴宁区 青秀区 江南区 西乡塘区 良庆区"),
    _c("云南省", "昆明市", "871", "五华区 盘龙区 官渡区 西山区 呈贡区"),
    _c("贵州省", "贵阳市", "851", "南明区 云岩区 花溪区 乌当区 白云区 观山湖区"),
    _c("海南省", "海口市", "898", "秀英区 龙华区 琼山区 美兰区"),
    _c("甘肃省", "兰州市", "931", "城关区 七里河区 西固区 安宁区"),
    _c("内蒙古自治区", "呼和浩特市", "471", "新城区 回民区 玉泉区 赛罕区"),
    _c("新疆维吾尔自治区", "乌鲁木齐市", "991", "天山区 沙依巴克区 新市区 水磨沟区"),
)

PROVINCES: tuple[str, ...] = tuple(dict.fromkeys(c.province for c in CITIES))

_SUFFIXES = (
    "壮族自治区",
    "维吾尔自治区",
    "回族自治区",
    "自治区",
    "回族区",
    "新区",
    "省",
    "市",
    "区",
    "县",
)


def short_name(name: str) -> str:
    """The everyday form of an area name: 广东省 → 广东, 浦东新区 → 浦东, 梅县区 → 梅县.

    Two-character names keep their suffix (市中区 stays, 城关区 → 城关 is fine, but a
    one-character stem such as 新区 would match everything, so it is refused).
    """
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name
