"""The tau-bench airline rule packs (monitors/taubench-airline*.yaml): each rule on
hand-made runs in the imported span shape (docs/importers.md), the excerpt in
tests/data/taubench, and, when the shared data set is present, the measured numbers on all
200 GPT-4o runs as a floor."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SHARED

from driftwatch.core import FrozenClock, SequentialIds, SpanRecord
from driftwatch.core import semconv as sc
from driftwatch.monitor import RulePackMonitor, load_rule_pack
from driftwatch.testing import RecordFactory

ROOT = Path(__file__).resolve().parents[2]
PACKS = [ROOT / "monitors" / "taubench-airline.yaml",
         ROOT / "monitors" / "taubench-airline-style.yaml"]
EXCERPT = ROOT / "tests" / "data" / "taubench" / "gpt-4o-airline-excerpt.json"
# runs of the shared set cut for this test: one or more per rule that fires on real data
CASES = ROOT / "tests" / "data" / "taubench" / "airline-pack-cases.json"
FULL = SHARED / "tau-bench" / "gpt-4o-airline.json"
SCENARIO = "taubench-airline"

RESERVATION = {
    "reservation_id": "R1",
    "user_id": "mia_1",
    "origin": "JFK",
    "destination": "SEA",
    "flight_type": "one_way",
    "cabin": "economy",
    "flights": [{"origin": "JFK", "destination": "SEA", "flight_number": "HAT1",
                 "date": "2024-05-20", "price": 100}],
    "passengers": [{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
    "payment_history": [{"payment_id": "credit_card_1", "amount": 100}],
    "created_at": "2024-05-01T10:00:00",
    "total_baggages": 2,
    "nonfree_baggages": 0,
    "insurance": "no",
}
PROFILE = {
    "name": {"first_name": "Mia", "last_name": "Li"},
    "payment_methods": {
        "credit_card_1": {"source": "credit_card", "id": "credit_card_1"},
        "gift_card_2": {"source": "gift_card", "id": "gift_card_2", "amount": 50},
        "certificate_3": {"source": "certificate", "id": "certificate_3", "amount": 250},
    },
    "membership": "regular",
}


_run_numbers = iter(range(1_000_000))  # the module's monitor sees every run: ids differ


class Run:
    """A conversation in the imported span shape: a turn is one assistant message, with the
    user messages before it, its chat span, then one tool span per call."""

    def __init__(self) -> None:
        self.factory = RecordFactory(run_id=f"run-{next(_run_numbers)}", scenario_id=SCENARIO)
        self.spans: list[SpanRecord] = []
        self.turn = 0
        self._pending_user: list[str] = []

    def user(self, text: str) -> Run:
        self._pending_user.append(text)
        return self

    def agent(self, text: str | None = None, *calls: tuple[str, dict[str, Any], Any]) -> Run:
        """One assistant message: ``text`` and ``calls`` of (tool, arguments, result)."""
        self.turn += 1
        f, turn = self.factory, self.turn
        for content in self._pending_user:
            self.spans.append(f.event("user_message", content, turn))
        self._pending_user = []
        tool_calls = [
            {"id": f"c{turn}.{n}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(arguments)}}
            for n, (name, arguments, _) in enumerate(calls)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls:
            message["tool_calls"] = tool_calls
        self.spans.append(f.record(
            "chat openai/gpt-4o", turn, kind="CLIENT",
            attributes={sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
                        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps([message]),
                        "driftwatch.reply.tool_calls": len(tool_calls),
                        "driftwatch.reply.has_text": bool(text and text.strip())},
        ))
        for n, (name, arguments, result) in enumerate(calls):
            text_result = result if isinstance(result, str) else json.dumps(result)
            self.spans.append(f.tool_call(name, arguments, turn, result=text_result,
                                          call_id=f"c{turn}.{n}"))
        return self

    def call(self, name: str, arguments: dict[str, Any], result: Any = "ok") -> Run:
        return self.agent(None, (name, arguments, result))


@pytest.fixture(scope="module")
def monitor() -> Iterator[RulePackMonitor]:
    made = RulePackMonitor([load_rule_pack(path) for path in PACKS])
    made.bind(ids=SequentialIds(), clock=FrozenClock())
    yield made
    made.close()


def rules_fired(monitor: RulePackMonitor, run: Run) -> list[str]:
    """Rule ids of the findings on the run (observed in one go, then ended)."""
    run_id = run.factory.run_id
    findings = [*monitor.observe(run_id, run.spans), *monitor.end_run(run_id, None)]
    return [finding.rule_id for finding in findings]


def _reservation(**changes: Any) -> dict[str, Any]:
    return {**RESERVATION, **changes}


def _profile(**changes: Any) -> dict[str, Any]:
    return {**PROFILE, **changes}


def _change_flights(run: Run, confirmation: str, payment: str = "credit_card_1") -> Run:
    new = {"reservation_id": "R1", "cabin": "economy", "payment_id": payment,
           "flights": [{"flight_number": "HAT9", "date": "2024-05-21"}]}
    return (run.user("Change R1 to HAT9 on May 21.")
            .call("get_reservation_details", {"reservation_id": "R1"}, RESERVATION)
            .agent("I will change R1 to HAT9 on 2024-05-21, paid by card. Proceed?")
            .user(confirmation)
            .call("update_reservation_flights", new, _reservation()))


# --- confirmation ---------------------------------------------------------------------


def test_a_booking_change_right_after_a_yes_is_fine(monitor: RulePackMonitor) -> None:
    assert rules_fired(monitor, _change_flights(Run(), "Yes, please go ahead.")) == []


def test_a_booking_change_without_a_yes_right_before_it_fires(monitor: RulePackMonitor) -> None:
    run = _change_flights(Run(), "Hmm, what does it cost?")
    assert rules_fired(monitor, run) == ["booking-change-without-yes"]


def test_an_older_yes_does_not_confirm_a_change_after_another_user_message(
    monitor: RulePackMonitor,
) -> None:
    run = Run().user("Baggage for R1.")
    run.call("get_reservation_details", {"reservation_id": "R1"}, RESERVATION)
    run.agent("Add 1 bag to R1, total 3?").user("yes").agent("Noted.").user("And a 4th?")
    run.call("update_reservation_baggages", {"reservation_id": "R1", "total_baggages": 4,
                                             "nonfree_baggages": 2, "payment_id": "credit_card_1"})
    assert rules_fired(monitor, run) == ["booking-change-without-yes"]


# --- one tool call at a time, no reply with a call -----------------------------------


def test_several_tool_calls_in_one_message_fire(monitor: RulePackMonitor) -> None:
    run = Run().user("Hi, I am mia_1").agent(
        None,
        ("get_user_details", {"user_id": "mia_1"}, PROFILE),
        ("get_reservation_details", {"reservation_id": "R1"}, RESERVATION),
    )
    assert rules_fired(monitor, run) == ["several-tool-calls-at-once"]
    one = Run().user("Hi, I am mia_1").call("get_user_details", {"user_id": "mia_1"}, PROFILE)
    assert rules_fired(monitor, one) == []


def test_a_booking_change_announced_in_the_same_message_fires(monitor: RulePackMonitor) -> None:
    run = Run().user("Cancel R1 please.")
    run.call("get_reservation_details", {"reservation_id": "R1"}, _reservation(cabin="business"))
    run.user("yes").agent(
        "Cancelling R1 now.", ("cancel_reservation", {"reservation_id": "R1"}, RESERVATION))
    assert rules_fired(monitor, run) == ["booking-change-with-user-reply"]


def test_a_look_up_announced_in_the_same_message_is_the_style_rule(
    monitor: RulePackMonitor,
) -> None:
    run = Run().user("I am mia_1").agent(
        "Let me look that up.", ("get_user_details", {"user_id": "mia_1"}, PROFILE))
    assert rules_fired(monitor, run) == ["tool-call-with-user-reply"]
    silent = Run().user("I am mia_1").call("get_user_details", {"user_id": "mia_1"}, PROFILE)
    assert rules_fired(monitor, silent) == []


# --- basic economy --------------------------------------------------------------------


def test_new_flights_on_a_basic_economy_reservation_fire(monitor: RulePackMonitor) -> None:
    run = Run().user("Change R1.").call(
        "get_reservation_details", {"reservation_id": "R1"}, _reservation(cabin="basic_economy"))
    run.user("yes").call("update_reservation_flights", {
        "reservation_id": "R1", "cabin": "basic_economy", "payment_id": "credit_card_1",
        "flights": [{"flight_number": "HAT9", "date": "2024-05-21"}]})
    assert rules_fired(monitor, run) == ["basic-economy-flights-changed"]


def test_a_cabin_change_of_basic_economy_with_the_same_flights_is_fine(
    monitor: RulePackMonitor,
) -> None:
    run = Run().user("Upgrade R1.").call(
        "get_reservation_details", {"reservation_id": "R1"}, _reservation(cabin="basic_economy"))
    run.user("yes").call("update_reservation_flights", {
        "reservation_id": "R1", "cabin": "economy", "payment_id": "credit_card_1",
        "flights": [{"flight_number": "HAT1", "date": "2024-05-20"}]})
    assert rules_fired(monitor, run) == []


def _flight_change_result(flights: list[tuple[str, str]], **changes: Any) -> dict[str, Any]:
    legs = [{"flight_number": f"HAT{n}", "date": "2024-05-21", "origin": origin,
             "destination": destination} for n, (origin, destination) in enumerate(flights)]
    return _reservation(flights=legs, **changes)


@pytest.mark.parametrize(
    ("flight_type", "flights", "fires"),
    [
        pytest.param("one_way", [("JFK", "ORD"), ("ORD", "SEA")], False, id="one-way-same-ends"),
        pytest.param("one_way", [("JFK", "ORD"), ("ORD", "PDX")], True, id="other-destination"),
        pytest.param("one_way", [("EWR", "SEA")], True, id="other-origin"),
        pytest.param("round_trip", [("JFK", "SEA"), ("SEA", "JFK")], False, id="round-trip"),
        pytest.param("round_trip", [("JFK", "SEA")], True, id="return-dropped"),
        pytest.param("round_trip", [("JFK", "LAX"), ("LAX", "JFK")], True, id="elsewhere"),
    ],
)
def test_a_flight_change_must_keep_origin_destination_and_trip_type(
    monitor: RulePackMonitor, flight_type: str, flights: list[tuple[str, str]], fires: bool
) -> None:
    run = Run().user("Change R1.")
    run.call("get_reservation_details", {"reservation_id": "R1"}, _reservation(
        flight_type=flight_type))
    run.user("yes").call(
        "update_reservation_flights",
        {"reservation_id": "R1", "cabin": "economy", "payment_id": "credit_card_1",
         "flights": [{"flight_number": f"HAT{n}", "date": "2024-05-21"}
                     for n in range(len(flights))]},
        _flight_change_result(flights, flight_type=flight_type))
    assert rules_fired(monitor, run) == (["trip-changed-by-flight-change"] if fires else [])


def test_a_change_to_a_reservation_never_looked_up_fires(monitor: RulePackMonitor) -> None:
    run = Run().user("Cancel R1, I booked it an hour ago. Yes, do it.")
    run.call("cancel_reservation", {"reservation_id": "R1"}, RESERVATION)
    assert rules_fired(monitor, run) == ["change-without-looking-up-reservation"]
    other = Run().user("Cancel R1.")
    other.call("get_reservation_details", {"reservation_id": "R2"}, _reservation(
        reservation_id="R2", cabin="business"))
    other.user("yes").call("cancel_reservation", {"reservation_id": "R1"}, RESERVATION)
    assert rules_fired(monitor, other) == ["change-without-looking-up-reservation"]


# --- cancellation ---------------------------------------------------------------------


def _cancel(reservation: dict[str, Any], reason: str = "change of plan") -> Run:
    run = Run().user(f"Cancel R1, {reason}.")
    run.call("get_reservation_details", {"reservation_id": "R1"}, reservation)
    return run.user("yes").call("cancel_reservation", {"reservation_id": "R1"}, reservation)


def test_cancelling_an_old_uninsured_economy_booking_fires(monitor: RulePackMonitor) -> None:
    assert rules_fired(monitor, _cancel(_reservation())) == ["cancellation-not-allowed"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"created_at": "2024-05-15T09:00:00"}, id="within-24-hours"),
        pytest.param({"cabin": "business"}, id="business"),
        pytest.param({"insurance": "yes"}, id="insured"),
    ],
)
def test_cancelling_an_eligible_booking_is_fine(
    monitor: RulePackMonitor, changes: dict[str, Any]
) -> None:
    run = _cancel(_reservation(**changes), reason="I have a bad flu and a doctor's note: ill")
    assert rules_fired(monitor, run) == []


def _insured_cancel(reason: str) -> Run:
    insured = _reservation(insurance="yes")
    run = Run().user(f"Cancel R1. {reason}")
    run.call("get_reservation_details", {"reservation_id": "R1"}, insured)
    return run.user("yes").call("cancel_reservation", {"reservation_id": "R1"}, insured)


def test_an_insured_cancellation_needs_a_health_or_weather_reason(
    monitor: RulePackMonitor,
) -> None:
    fired = rules_fired(monitor, _insured_cancel("It is a change of plan."))
    assert fired == ["insured-cancellation-without-covered-reason"]
    assert rules_fired(monitor, _insured_cancel("I am sick and cannot travel.")) == []
    assert rules_fired(monitor, _insured_cancel("A hurricane is coming.")) == []


# --- payment --------------------------------------------------------------------------


def _book(**arguments: Any) -> Run:
    booking = {"user_id": "mia_1", "origin": "JFK", "destination": "SEA",
               "flight_type": "one_way", "cabin": "economy",
               "flights": [{"flight_number": "HAT1", "date": "2024-05-20"}],
               "passengers": [{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
               "payment_methods": [{"payment_id": "credit_card_1", "amount": 100}],
               "total_baggages": 1, "nonfree_baggages": 0, "insurance": "no", **arguments}
    run = Run().user("Book JFK-SEA, I am mia_1.")
    run.call("get_user_details", {"user_id": "mia_1"}, PROFILE)
    return run.user("yes").call("book_reservation", booking, {"reservation_id": "NEW"})


def test_a_plain_booking_is_fine(monitor: RulePackMonitor) -> None:
    assert rules_fired(monitor, _book()) == []


def test_paying_with_a_method_outside_the_profile_fires(monitor: RulePackMonitor) -> None:
    run = _book(payment_methods=[{"payment_id": "credit_card_999", "amount": 100}])
    assert rules_fired(monitor, run) == ["payment-not-in-profile"]


def test_two_certificates_in_one_booking_fire(monitor: RulePackMonitor) -> None:
    run = _book(payment_methods=[{"payment_id": "certificate_3", "amount": 50},
                                 {"payment_id": "certificate_4", "amount": 50}])
    assert "payment-method-limits" in rules_fired(monitor, run)


def test_three_gift_cards_and_one_card_are_within_the_limits(monitor: RulePackMonitor) -> None:
    methods = {f"gift_card_{n}": {} for n in range(3)} | {"credit_card_1": {}}
    run = Run().user("Book, I am mia_1.")
    run.call("get_user_details", {"user_id": "mia_1"}, _profile(payment_methods=methods))
    run.user("yes").call("book_reservation", {
        "user_id": "mia_1", "cabin": "economy", "total_baggages": 0, "nonfree_baggages": 0,
        "passengers": [{}], "payment_methods": [{"payment_id": key} for key in methods]})
    assert rules_fired(monitor, run) == []


def test_a_flight_change_paid_by_certificate_fires(monitor: RulePackMonitor) -> None:
    run = _change_flights(Run(), "yes", payment="certificate_3")
    assert rules_fired(monitor, run) == ["flight-change-paid-by-certificate"]


# --- passengers and bags --------------------------------------------------------------


def test_six_passengers_fire(monitor: RulePackMonitor) -> None:
    run = _book(passengers=[{"first_name": f"P{n}"} for n in range(6)], total_baggages=0)
    assert rules_fired(monitor, run) == ["too-many-passengers"]


@pytest.mark.parametrize(
    ("membership", "cabin", "total", "nonfree", "fires"),
    [
        pytest.param("regular", "economy", 3, 2, False, id="regular-economy-1-free"),
        pytest.param("regular", "economy", 3, 3, True, id="regular-charged-the-free-bag"),
        pytest.param("gold", "basic_economy", 2, 0, False, id="gold-basic-2-free"),
        pytest.param("silver", "business", 4, 0, True, id="silver-business-only-3-free"),
    ],
)
def test_nonfree_bags_follow_the_membership_allowance(
    monitor: RulePackMonitor, membership: str, cabin: str, total: int, nonfree: int, fires: bool
) -> None:
    run = Run().user("Book, I am mia_1.")
    run.call("get_user_details", {"user_id": "mia_1"}, _profile(membership=membership))
    run.user("yes").call("book_reservation", {
        "user_id": "mia_1", "cabin": cabin, "passengers": [{"first_name": "Mia"}],
        "payment_methods": [{"payment_id": "credit_card_1"}],
        "total_baggages": total, "nonfree_baggages": nonfree})
    assert rules_fired(monitor, run) == (["free-bags-miscounted"] if fires else [])


def _bags(total: int) -> Run:
    run = Run().user("Bags for R1.")
    run.call("get_reservation_details", {"reservation_id": "R1"}, RESERVATION)
    return run.user("yes").call("update_reservation_baggages", {
        "reservation_id": "R1", "total_baggages": total, "nonfree_baggages": 0,
        "payment_id": "credit_card_1"})


def test_removing_checked_bags_fires_and_adding_them_does_not(monitor: RulePackMonitor) -> None:
    assert rules_fired(monitor, _bags(1)) == ["checked-bags-removed"]
    assert rules_fired(monitor, _bags(3)) == []


def _passengers(count: int) -> Run:
    run = Run().user("Passengers of R1.")
    run.call("get_reservation_details", {"reservation_id": "R1"}, RESERVATION)
    return run.user("yes").call("update_reservation_passengers", {
        "reservation_id": "R1", "passengers": [{"first_name": f"P{n}"} for n in range(count)]})


def test_changing_the_number_of_passengers_fires_and_renaming_does_not(
    monitor: RulePackMonitor,
) -> None:
    assert rules_fired(monitor, _passengers(2)) == ["passenger-count-changed"]
    assert rules_fired(monitor, _passengers(1)) == []


# --- compensation ---------------------------------------------------------------------


def _certificate(complaint: str) -> Run:
    run = Run().user(complaint).call("get_user_details", {"user_id": "mia_1"}, PROFILE)
    return run.user("yes").call("send_certificate", {"user_id": "mia_1", "amount": 100})


def test_a_certificate_nobody_asked_for_fires(monitor: RulePackMonitor) -> None:
    run = _certificate("My flight was delayed, that was annoying.")
    assert rules_fired(monitor, run) == ["compensation-not-requested"]


def test_a_certificate_after_a_request_for_compensation_is_fine(monitor: RulePackMonitor) -> None:
    run = _certificate("My flight was cancelled. I want some compensation for this.")
    assert rules_fired(monitor, run) == []


@pytest.mark.parametrize(("amount", "fires"), [(200, False), (100, False), (150, True)])
def test_a_certificate_is_100_or_50_dollars_per_passenger(
    monitor: RulePackMonitor, amount: int, fires: bool
) -> None:
    two = _reservation(passengers=[{"first_name": "A"}, {"first_name": "B"}])
    run = Run().user("My flight was cancelled, I want compensation.")
    run.call("get_reservation_details", {"reservation_id": "R1"}, two)
    run.user("yes").call("send_certificate", {"user_id": "mia_1", "amount": amount})
    assert rules_fired(monitor, run) == (["compensation-amount-not-per-passenger"] if fires else [])


# --- imported runs --------------------------------------------------------------------


def _imported(path: Path) -> list[tuple[str, bool, list[SpanRecord]]]:
    """(run id, failed, spans) of every run of a tau-bench file, through the importer."""
    from driftwatch.importers import conversation_spans
    from driftwatch.importers.taubench import read_taubench

    runs = [conversation_spans(c, n) for n, c in enumerate(read_taubench(path))]
    return [(run.info.run_id, run.info.attributes["reward"] != 1, run.spans) for run in runs]


def _flagged(monitor: RulePackMonitor, runs: Sequence[tuple[str, bool, list[SpanRecord]]],
             skip: frozenset[str] = frozenset()) -> dict[str, set[str]]:
    observed = monitor.observe_batch({run_id: spans for run_id, _, spans in runs})
    flagged: dict[str, set[str]] = {}
    for run_id, _, _ in runs:
        findings = [*observed.get(run_id, ()), *monitor.end_run(run_id, None)]
        rules = {finding.rule_id for finding in findings} - skip
        if rules:
            flagged[run_id] = rules
    return flagged


def test_the_excerpt_is_flagged_where_the_policy_is_broken(monitor: RulePackMonitor) -> None:
    runs = _imported(EXCERPT)
    flagged = _flagged(monitor, runs)
    stem = "taubench-gpt-4o-airline-excerpt"
    assert flagged == {
        f"{stem}-32-2": {"booking-change-without-yes"},  # booked after "I'll go with ..."
        f"{stem}-38-2": {"tool-call-with-user-reply"},
        f"{stem}-39-2": {"tool-call-with-user-reply",
                         "insured-cancellation-without-covered-reason"},
        f"{stem}-39-1": {"insured-cancellation-without-covered-reason"},  # "change of plans"
        f"{stem}-37-3": {"tool-call-with-user-reply"},
        f"{stem}-41-2": {"change-without-looking-up-reservation"},  # cancelled on the user's word
    }
    failed = {run_id for run_id, is_failure, _ in runs if is_failure}
    assert len(failed) == 6
    style_only = {"tool-call-with-user-reply"}
    assert {run_id for run_id, rules in flagged.items() if rules != style_only} < failed


def test_real_runs_that_break_the_policy_are_flagged_by_the_right_rules(
    monitor: RulePackMonitor,
) -> None:
    stem = "taubench-airline-pack-cases"
    flagged = _flagged(monitor, _imported(CASES), skip=frozenset({"tool-call-with-user-reply"}))
    assert flagged == {
        # failed runs
        f"{stem}-0-0": {"free-bags-miscounted"},  # regular economy: 1 of 3 bags free, 0 charged
        f"{stem}-22-0": {"basic-economy-flights-changed"},
        f"{stem}-7-0": {"trip-changed-by-flight-change"},  # ATL-PHL became ATL-EWR
        f"{stem}-28-0": {"insured-cancellation-without-covered-reason",  # "release my seat"
                         "booking-change-without-yes"},
        f"{stem}-25-0": {"booking-change-with-user-reply", "cancellation-not-allowed"},
        # reward 1, yet the policy was broken (the API refused, or the grader does not look)
        f"{stem}-13-2": {"basic-economy-flights-changed", "booking-change-without-yes"},
        f"{stem}-34-1": {"cancellation-not-allowed",  # economy, no insurance, booked 05-01
                         "insured-cancellation-without-covered-reason"},  # "no reasons"
        f"{stem}-20-1": {"booking-change-without-yes", "flight-change-paid-by-certificate"},
        f"{stem}-46-2": {"compensation-not-requested"},  # offered before the user asked
        f"{stem}-31-0": {"insured-cancellation-without-covered-reason"},  # "change of plan"
    }  # 32-3 (failed) and 26-0 (succeeded) break no checkable rule


@pytest.mark.skipif(not FULL.exists(), reason="shared tau-bench data not present")
def test_the_airline_pack_keeps_its_precision_and_recall_on_all_200_runs(
    monitor: RulePackMonitor,
) -> None:
    runs = _imported(FULL)
    failed = {run_id for run_id, is_failure, _ in runs if is_failure}
    flagged = set(_flagged(monitor, runs, skip=frozenset({"tool-call-with-user-reply"})))
    precision = len(flagged & failed) / len(flagged)
    recall = len(flagged & failed) / len(failed)
    # measured: 75 runs flagged, 64 of them failed (precision 0.853, recall 0.552)
    assert (len(runs), len(failed)) == (200, 116)
    assert precision >= 0.83
    assert recall >= 0.53
