"""Caller-matching benchmark on PostgreSQL: import rate, then phone / name / address latency.

    python -m bench.matching load  --customers 1000000 --db hotline_bench_1m
    python -m bench.matching query --db hotline_bench_1m
    python -m bench.matching all   --customers 1000000 --db hotline_bench_1m

``load`` writes the synthetic file under /var/lib/hotline/bench (never into the repo),
creates the database from template0 with LC_CTYPE C.UTF-8 (pg_trgm needs a UTF-8 ctype
to see Hanzi: under ``C`` it finds no trigrams in 张伟), migrates it and times ``hotline
import`` on it. ``query`` times the same search code the API runs
(:mod:`hotline.matching.search`), one query at a time,
and writes JSON results next to the data (``--label`` suffixes the file, e.g. ``before``
when run from an older checkout). The corrupted kinds (a wrong last, first or middle
character, swapped pinyin letters) time the typo fallbacks, which only run when the
exact keys find nobody; the wrong first / middle character is another real surname /
given-name character that reads differently, as in the labelled set, so some of those
queries name another real customer of the district and take the exact path.
The importer ends a bulk load with ``VACUUM (ANALYZE)``, inside the timed import: the
first version's ``ANALYZE`` here ran in a rolled-back transaction, so the old figures
were taken without planner statistics. Targets: phone p99 < 1 ms, name/pinyin/address
top-10 p99 < 50 ms at 10 M customers (docs/benchmarks-matching.md has the figures).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

DATA = Path("/var/lib/hotline/bench")
ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _url(db: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


def load(customers: int, db: str, seed: int, label: str = "", baseline: str = "") -> dict[str, Any]:
    from hotline.customers.cli import import_file
    from hotline.customers.gen import write_file
    from hotline.db.session import make_engine, upgrade

    DATA.mkdir(parents=True, exist_ok=True)
    data = DATA / f"customers-{customers}-seed{seed}.jsonl"
    if not data.exists():
        started = time.perf_counter()
        write_file(data, customers, seed)
        print(f"generated {customers:,} in {time.perf_counter() - started:.0f}s → {data}")
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        conn.execute(
            text(
                f"CREATE DATABASE \"{db}\" TEMPLATE template0 ENCODING 'UTF8' "
                "LC_CTYPE 'C.UTF-8' LC_COLLATE 'C.UTF-8'"
            )
        )
    admin.dispose()
    engine = make_engine(_url(db))
    upgrade(engine)
    report = import_file(engine, data, report_path=DATA / f"{db}.rejected.tsv", show_progress=False)
    with engine.connect() as conn:
        sizes = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("customers", "customer_phones", "addresses", "products")
        }
    engine.dispose()
    result = {
        "customers_requested": customers,
        "rows": report.rows,
        "import_seconds": round(report.seconds, 1),
        "import_rows_per_second": round(report.rows_per_second),
        "load_seconds": round(report.load_seconds, 1),
        "index_seconds": round(report.index_seconds, 1),
        "vacuum_seconds": round(report.vacuum_seconds, 1),
        "rejected": report.rejected,
        "workers": report.workers,
        "merged": report.merged,
        "tables": sizes,
    }
    print(json.dumps(result, ensure_ascii=False))
    suffix = "." + label if label else ""
    (DATA / f"{db}.load{suffix}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    if baseline and (base := _baseline(DATA / f"{db}.load.{baseline}.json")):
        print(f"{'import':<22} {'baseline':>12} {'this run':>12} {'ratio':>7}")
        for key in ("import_seconds", "load_seconds", "index_seconds", "import_rows_per_second"):
            if key in base:
                print(
                    f"{key:<22} {base[key]:>12} {result[key]:>12} "
                    f"{result[key] / base[key] if base[key] else 0:>7.2f}"
                )
    return result


def _baseline(path: Path) -> dict[str, Any] | None:
    """An earlier run's results to print side by side (``--baseline LABEL``)."""
    if not path.exists():
        print(f"no baseline at {path}")
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "n": len(ordered),
    }


def _wrong_char(name: str, at: int, rng: random.Random) -> str | None:
    """``name`` with character ``at`` replaced the way the labelled set does it: by
    another surname (position 0) or given-name character of the generator's lists,
    never one that reads the same. None for a compound surname (a given name's first
    character is then not at position 1, and the surname is not one character)."""
    from hotline.customers.gen import GIVEN, SURNAMES
    from hotline.matching.keys import split_surname, syllables

    if len(split_surname(name)[0]) != 1:
        return None
    pool = [s for s in SURNAMES if len(s) == 1] if at == 0 else list(dict.fromkeys(GIVEN))
    reading = syllables(name)[at]
    for _ in range(20):
        wrong = name[:at] + rng.choice(pool) + name[at + 1 :]
        if syllables(wrong)[at] != reading:
            return wrong
    return None


def query(db: str, samples: int, seed: int, label: str = "", baseline: str = "") -> dict[str, Any]:
    from hotline.db.session import make_engine
    from hotline.matching.keys import split_surname
    from hotline.matching.search import CustomerSearch

    # the API's engine (pool_pre_ping included), so the figure is what an agent sees
    engine = make_engine(_url(db))
    rng = random.Random(seed)
    with engine.connect() as conn:
        top = conn.execute(text("SELECT max(id) FROM customers")).scalar() or 1
        ids = [rng.randint(1, top) for _ in range(samples)]
        rows = conn.execute(
            text(
                "SELECT c.id, c.name, c.name_pinyin, c.name_initials, c.district, "
                "(SELECT e164 FROM customer_phones p WHERE p.customer_id = c.id LIMIT 1), "
                "(SELECT raw FROM addresses a WHERE a.customer_id = c.id LIMIT 1) "
                "FROM customers c WHERE c.id = ANY(:ids)"
            ),
            {"ids": ids},
        ).all()
    search = CustomerSearch(engine)
    cases: dict[str, list[str]] = {
        "phone": [],
        "name+district": [],
        "pinyin+district": [],
        "initials+district": [],
        "name": [],
        "address": [],
        "wrong-char+district": [],
        "wrong-first-char+district": [],
        "wrong-middle-char+district": [],
        "pinyin-typo+district": [],
        # a surname and a place, no given name: every customer of that surname there
        "surname+district": [],
    }
    # the customer each corrupted query means, for its recall at this scale
    targets: dict[str, list[int]] = defaultdict(list)
    # its own generator, so the other kinds' queries stay those of earlier runs
    wrong_rng = random.Random(seed + 1)
    for cid, name, pinyin, initials, district, e164, raw in rows:
        if e164:
            cases["phone"].append(e164[3:] if rng.random() < 0.5 else e164)
        place = district or ""
        cases["name+district"].append(f"{name} {place}")
        cases["pinyin+district"].append(f"{pinyin} {place}")
        cases["initials+district"].append(f"{initials} {place}")
        cases["name"].append(name)
        if raw:
            cases["address"].append(raw)
        # the typo fallbacks' cost (they run only when the exact keys find nobody)
        if len(name) >= 3:
            cases["wrong-char+district"].append(f"{name[:-1]}{rng.choice('一二三的是了')} {place}")
            targets["wrong-char+district"].append(cid)
            for kind, at in (("wrong-first-char+district", 0), ("wrong-middle-char+district", 1)):
                if (wrong := _wrong_char(name, at, wrong_rng)) is not None:
                    cases[kind].append(f"{wrong} {place}")
                    targets[kind].append(cid)
        if district:
            cases["surname+district"].append(f"姓{split_surname(name)[0]} {district}")
        if len(pinyin) >= 6:
            k = rng.randrange(1, len(pinyin) - 1)
            typo = pinyin[:k] + pinyin[k + 1] + pinyin[k] + pinyin[k + 2 :]
            cases["pinyin-typo+district"].append(f"{typo} {place}")
            targets["pinyin-typo+district"].append(cid)
    results: dict[str, Any] = {}
    if hasattr(search, "key_index"):  # load the typo index outside the timings, as a
        search.key_index()  # running API has it loaded after its first typo query
    for kind, queries in cases.items():
        for q in queries[:20]:  # warm the caches the way a running API is warm
            search.search(q, limit=10)
        timings = []
        ranks: list[int | None] = []
        for i, q in enumerate(queries):
            started = time.perf_counter()
            found = search.search(q, limit=10)
            timings.append(time.perf_counter() - started)
            if kind in targets:
                shown = [c.customer_id for c in found]
                ranks.append(
                    shown.index(targets[kind][i]) + 1 if targets[kind][i] in shown else None
                )
        results[kind] = _percentiles(timings)
        if ranks:  # at national scale a far-off wrong character can tie with neighbours
            results[kind]["at1"] = round(sum(r == 1 for r in ranks) / len(ranks), 3)
            results[kind]["at3"] = round(
                sum(r is not None and r <= 3 for r in ranks) / len(ranks), 3
            )
        print(kind, results[kind])
    engine.dispose()
    out = DATA / f"{db}.query{'.' + label if label else ''}.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    if baseline and (base := _baseline(DATA / f"{db}.query.{baseline}.json")):
        head = ("p50 base", "p50 now", "ratio", "p99 base", "p99 now", "ratio")
        print(f"{'kind':<27}", *(f"{h:>9}" for h in head))
        for kind, now in results.items():
            if then := base.get(kind):
                print(
                    f"{kind:<27} {then['p50_ms']:>9} {now['p50_ms']:>9} "
                    f"{now['p50_ms'] / then['p50_ms']:>9.2f} {then['p99_ms']:>9} "
                    f"{now['p99_ms']:>9} {now['p99_ms'] / then['p99_ms']:>9.2f}"
                )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("load", "query", "all"))
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", default="hotline_bench")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--label", default="", help="suffix of the results file (e.g. before)")
    parser.add_argument(
        "--baseline", default="", help="label of an earlier run to print side by side with ratios"
    )
    args = parser.parse_args(argv)
    print(
        "command:", "python -m bench.matching", shlex.join(sys.argv[1:] if argv is None else argv)
    )
    if args.step in ("load", "all"):
        load(args.customers, args.db, args.seed, args.label, args.baseline)
    if args.step in ("query", "all"):
        query(args.db, args.samples, args.seed, args.label, args.baseline)


if __name__ == "__main__":
    main()
