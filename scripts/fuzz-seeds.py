#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/seed-*) from the repository's
own examples: scenario event lines, Meta webhook envelopes found in the tests, the bundled
and fixture CSVs, the billing set-ups and traffic examples. Run from the repository root;
the seeds are committed, and what the fuzzer adds later goes beside them."""
import glob, hashlib, json, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


# Event lines: every distinct line shape of the scenarios (by kind and key set), and the
# Meta envelopes the tests and fixtures use, one per line.
shapes = {}
for scn in sorted(glob.glob(os.path.join(ROOT, "tests", "scenarios", "*.scn"))):
    events = open(scn, encoding="utf-8").read().split("--- events", 1)[-1].split("--- expect")[0]
    for line in events.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        key = (obj.get("kind"), tuple(sorted(obj)), obj.get("category"), obj.get("type"))
        shapes.setdefault(key, line)
for line in shapes.values():
    put("event_line", line)

envelopes = [read("crates/server/tests/fixtures/webhook_inbound.json").strip()]
for src in glob.glob(os.path.join(ROOT, "crates", "*", "src", "*.rs")) + glob.glob(
    os.path.join(ROOT, "crates", "*", "tests", "*.rs")
):
    text = open(src, encoding="utf-8").read()
    for m in re.finditer(r'r#"(\{"object":"whatsapp_business_account".*?)"#', text):
        envelopes.append(m.group(1))
for env in envelopes:
    put("meta_envelope", env)
    put("event_line", env)
# A batch of several envelopes and lines, as a webhook body never is but a file may be.
put("event_line", "\n".join(list(shapes.values())[:5]))

# Meta's cards: the fixtures whole, and their first rows.
for card in sorted(glob.glob(os.path.join(ROOT, "crates", "formats", "tests", "fixtures", "meta", "*.csv"))):
    text = open(card, encoding="utf-8").read()
    put("meta_cards", text)
    put("meta_cards", "\n".join(text.splitlines()[:8]) + "\n")

# wabill's tariff CSVs: markets \0 rates, cut to a few markets so a run stays fast.
markets = read("data/markets.csv").splitlines()
rates = read("data/rates.csv").splitlines()
put("tariff_csv", "\n".join(markets[:40]) + "\n\0" + "\n".join(rates[:60]) + "\n")
put("tariff_csv", "\n".join(rates[:120]) + "\n")
put("tariff_csv", read("data/tier_thresholds.csv"))

# The calculator's traffic, CSV and JSON.
put("estimate_traffic", 'market,category,messages\nBrazil,marketing,"100,000"\nRest of Africa,utility,20\n')
put("estimate_traffic", "country,category,messages\nin,authentication,5\nDE,service,12\n")
put("estimate_traffic", '[{"market":"Brazil","category":"service","messages":3},{"country":"IN","category":"authentication","messages":"1,000"}]')
put("estimate_traffic", '{"traffic":[{"market":"Brazil","category":"utility","messages":3}]}')

# Tenant set-ups of the billing scenarios.
for path in sorted(glob.glob(os.path.join(ROOT, "tests", "billing", "*.json"))):
    doc = json.load(open(path, encoding="utf-8"))
    if "setup" in doc:
        put("tenant_setup", json.dumps(doc["setup"], ensure_ascii=False))

# The service's configuration file.
put("config", "{}")
put("config", json.dumps({"db": "sqlite:wabill.db", "listen": "127.0.0.1:8080"}))
put("config", json.dumps({"db": "postgres://localhost/test", "listen": "0.0.0.0:9000", "app-secret": "a, b", "verify-token": "tok", "max-body-bytes": 1048576, "rerate-memory-mb": 256, "rates": "rates.csv"}))

for target in sorted(os.listdir(OUT)):
    print(target, len(os.listdir(os.path.join(OUT, target))), file=sys.stderr)
