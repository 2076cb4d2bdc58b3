"""Seeds the fuzz corpora from the replayed IdP requests (server/tests/fixtures): the filters
of their list requests, their PATCH bodies, and their POST and PUT bodies. libFuzzer adds
what it finds next to these; seeds are named by content, so reseeding is idempotent."""

import hashlib
import json
import pathlib
import urllib.parse

root = pathlib.Path(__file__).resolve().parent
fixtures = root.parent / "server" / "tests" / "fixtures"


def put(target: str, data: bytes) -> None:
    folder = root / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ("seed-" + hashlib.sha1(data).hexdigest())).write_bytes(data)


for fixture in sorted(fixtures.glob("*.json")):
    for step in json.loads(fixture.read_text())["steps"]:
        query = urllib.parse.urlsplit(step["path"]).query
        for key, value in urllib.parse.parse_qsl(query):
            if key == "filter":
                put("filter", value.encode())
        body = step.get("body")
        if body is None:
            continue
        data = json.dumps(body).encode()
        put("patch" if step["method"] == "PATCH" else "bodies", data)
