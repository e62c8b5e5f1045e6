"""`GET /v1/select/batch` over real HTTP: every session of a batch gets the answer `/v1/select` gives
the same key (same decision code: residency re-check, admission, stickiness), each one is counted in
the per-region metrics, and a malformed batch is refused whole with the field named."""

from __future__ import annotations

from collections import Counter

import httpx

from tests.selector.test_http_server import LOCAL, metric, selector, write_state  # noqa: F401 (fixture)


def test_a_batch_answers_each_session_as_the_single_route_does_and_counts_each(selector):  # noqa: F811
    server, path = selector(LOCAL)
    # DE split, ID capped below 1 (capacity refusals), FR forged onto sin (outside its jurisdictions).
    write_state(path, LOCAL, 3, {"DE": {"fra": 0.6, "dub": 0.4}, "ID": {"cgk": 0.7}, "FR": {"sin": 1.0}})
    server.start()
    with httpx.Client(base_url=server.url) as client:
        groups = "DE:one_to_one:100:300,ID:live_show:0:200,FR:live_show:5:50"
        reply = client.get("/v1/select/batch", params={"session_prefix": "t-", "groups": groups})
        assert reply.status_code == 200
        body = reply.json()
        assert body["revision"] == 3
        assert [(g["market"], g["scenario"]) for g in body["groups"]] == [
            ("DE", "one_to_one"),
            ("ID", "live_show"),
            ("FR", "live_show"),
        ]

        def singles(market: str, scenario: str, first: int, count: int) -> tuple[Counter, Counter]:
            answers, refusals = Counter(), Counter()
            for i in range(first, first + count):
                key = f"t-{market}:{scenario}:{i}"
                one = client.get("/v1/select", params={"market": market, "scenario": scenario, "session": key})
                if one.status_code == 200:
                    answers[one.json()["region"]] += 1
                else:
                    refusals[one.json()["code"]] += 1
            return answers, refusals

        for group, asked in zip(body["groups"], [("DE", "one_to_one", 100, 300), ("ID", "live_show", 0, 200),
                                                   ("FR", "live_show", 5, 50)], strict=True):  # fmt: skip
            answers, refusals = singles(*asked)
            assert group["answers"] == dict(answers) and group["refusals"] == dict(refusals)
        de, id_, fr = body["groups"]
        assert set(de["answers"]) == {"fra", "dub"} and 120 < de["answers"]["fra"] < 240
        assert set(id_["answers"]) == {"cgk"} and 20 < id_["refusals"]["capacity_exhausted"] < 100
        assert fr == {"market": "FR", "scenario": "live_show", "answers": {}, "refusals": {"no_compliant_region": 50}}

        text = client.get("/metrics").text
        # every session counted twice: once in the batch, once asked alone
        assert metric(text, "edgeplane_selector_answers_total", market="DE", region="fra") == 2 * de["answers"]["fra"]
        assert metric(text, "edgeplane_selector_refusals_total", market="FR", code="no_compliant_region") == 100


def test_a_batch_before_any_state_is_refused_per_session_and_bad_batches_are_400(selector):  # noqa: F811
    server, _ = selector(LOCAL)
    server.start()
    with httpx.Client(base_url=server.url) as client:
        body = client.get("/v1/select/batch", params={"groups": "DE:live_show:0:7"}).json()
        assert body["revision"] is None and body["groups"][0]["refusals"] == {"no_steering_state": 7}
        for groups, field in [
            ("", "groups"),
            ("DE:live_show:0", "groups[0]"),
            ("DE:live_show:0:5,FR;x", "groups[1]"),
            ("DE:live_show:0:20001", "groups"),
            (",".join(["DE:live_show:0:1"] * 65), "groups"),
        ]:
            refused = client.get("/v1/select/batch", params={"groups": groups})
            assert refused.status_code == 400 and refused.json()["error"].startswith(field + ":"), groups
        assert (
            client.get("/v1/select/batch", params={"groups": "DE:a:0:1", "session_prefix": "p" * 65}).status_code == 400
        )
        text = client.get("/metrics").text
        assert metric(text, "edgeplane_selector_refusals_total", market="DE", code="no_steering_state") == 7
