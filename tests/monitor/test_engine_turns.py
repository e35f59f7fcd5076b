"""How monitors see a run as turns: when a turn is complete (turn span, higher turn,
steps without turn numbers), late records, and what was said and called in a turn."""

from __future__ import annotations

import json

from driftwatch.core import semconv as sc
from driftwatch.monitor.lexical import overlapping, stem, terms
from driftwatch.monitor.turns import Turn, TurnTracker, assistant_text, initial_instructions
from driftwatch.testing import RecordFactory


def turn_span(f: RecordFactory, n: int):
    return f.record(sc.SPAN_TURN, n, **{sc.GEN_AI_OPERATION_NAME: sc.OP_TURN})


def numbers(turns) -> list[int]:
    return [t.number for t in turns]


def test_a_turn_is_complete_when_its_turn_span_arrives() -> None:
    f, tracker = RecordFactory(), TurnTracker()
    assert tracker.add([f.chat("hi", 1), f.tool_call("read_file", {"path": "a"}, 1)]) == []
    done = tracker.add([turn_span(f, 1)])
    assert numbers(done) == [1]
    assert [r.name for r in done[0].records] == [
        "chat simulated/test",
        "execute_tool read_file",
        "driftwatch.turn",
    ]
    assert done[0].turn_span is not None
    assert not done[0].synthetic


def test_without_turn_spans_a_higher_turn_completes_the_lower_ones() -> None:
    f, tracker = RecordFactory(), TurnTracker()
    done = tracker.add([f.chat("a", 1), f.tool_call("x", {}, 1)])
    assert done == []
    assert numbers(tracker.add([f.chat("b", 2)])) == [1]
    assert numbers(tracker.add([f.chat("c", 4)])) == [2]
    assert numbers(tracker.finish()) == [4]


def test_once_turn_spans_are_seen_a_higher_turn_closes_only_two_turns_back() -> None:
    f, tracker = RecordFactory(), TurnTracker()
    tracker.add([f.chat("a", 1), turn_span(f, 1)])
    assert tracker.add([f.chat("b", 2)]) == []
    assert tracker.add([f.chat("c", 3)]) == []  # turn 2's span may still come
    assert numbers(tracker.add([f.chat("d", 4)])) == [2]  # … but not forever


def test_records_without_turn_numbers_are_cut_into_steps_at_each_chat() -> None:
    f = RecordFactory()
    tracker = TurnTracker()
    records = [f.chat("a", None), f.tool_call("x", {}, None), f.chat("b", None)]
    records[1] = f.record(
        "execute_tool x",
        None,
        **{sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: "x"},
    )
    done = tracker.add(records)
    assert numbers(done) == [1]
    assert done[0].synthetic
    assert done[0].finding_turn is None
    assert len(done[0].records) == 2
    assert numbers(tracker.finish()) == [2]


def test_a_late_record_joins_the_next_turn_and_the_root_span_no_turn() -> None:
    f, tracker = RecordFactory(), TurnTracker()
    tracker.add([f.chat("a", 1), turn_span(f, 1)])
    root = f.record("invoke_agent a", None, **{sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT})
    late = f.tool_call("late", {}, 1)
    tracker.add([late, root, f.chat("b", 2)])
    done = tracker.add([turn_span(f, 2)])
    assert numbers(done) == [2]
    assert late in done[0].records
    assert root not in done[0].records
    assert tracker.root is root
    assert tracker.turn_of_span(late.span_id) == 2


def test_open_turns_are_bounded() -> None:
    f, tracker = RecordFactory(), TurnTracker(max_open=3)
    tracker.add([f.chat("a", 1), turn_span(f, 1)])
    done = []
    for n in (10, 9, 8, 7):  # reordered far beyond anything sane
        done += tracker.add([f.chat("x", n)])
    assert numbers(done) == [7]


def test_turn_content_reads_openai_and_semconv_messages_and_executed_calls() -> None:
    f = RecordFactory()
    chat = f.chat(
        "Let me look.",
        1,
        tool_calls=[
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "read_file", "arguments": json.dumps({"path": "a.txt"})},
            }
        ],
    )
    semconv = f.record(
        "chat m",
        2,
        **{
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [
                            {"type": "text", "content": "Parts text."},
                            {"type": "tool_call", "name": "write_file", "arguments": {"path": "b"}},
                        ],
                    }
                ]
            ),
        },
    )
    tracker = TurnTracker()
    done = tracker.add([chat, f.tool_call("read_file", {"path": "a.txt"}, 1), semconv])
    first, second = [*done, *tracker.finish()]
    assert first.texts() == ["Let me look."]
    assert [c.canonical for c in first.tool_calls()] == ['read_file({"path":"a.txt"})']
    assert first.tool_calls()[0].record is not None  # the executed call, not the request
    assert assistant_text(semconv) == "Parts text."
    assert [(c.name, c.arguments, c.record) for c in second.tool_calls()] == [
        ("write_file", {"path": "b"}, None)
    ]


def test_initial_instructions_come_from_the_root_or_the_first_chat() -> None:
    f = RecordFactory()
    root = f.record(
        "invoke_agent a",
        None,
        **{
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_SYSTEM_INSTRUCTIONS: json.dumps([{"type": "text", "content": "Be good."}]),
        },
    )
    chat = f.record(
        "chat m",
        1,
        **{
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            sc.GEN_AI_INPUT_MESSAGES: json.dumps(
                [{"role": "system", "content": "Sys."}, {"role": "user", "content": "Task."}]
            ),
        },
    )
    user_only = f.record(
        "chat m",
        1,
        **{
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "content": "Task."}]),
        },
    )
    assert initial_instructions(root) == ("Be good.", "gen_ai.system_instructions")
    assert initial_instructions(chat) == ("Sys.", "system message")
    assert initial_instructions(user_only) == ("Task.", "first user message")
    assert initial_instructions(f.tool_call("x", {}, 1)) is None


def test_lexical_terms_split_paths_stem_and_match_abbreviations() -> None:
    assert terms("project/oversight_config.yaml") == ["project", "oversight", "config", "yaml"]
    assert stem("changed") == stem("changes") == stem("change") == "chang"
    assert overlapping(terms("the oversight configuration"), terms("oversight_config.yaml")) == {
        "oversight",
        "configuration",
    }
    assert overlapping(["con"], ["config"]) == set()  # too short to be an abbreviation


def test_what_a_turn_derives_is_computed_once_and_follows_new_records() -> None:
    f = RecordFactory()
    turn = Turn(1, [f.chat("hello", 1)])
    assert turn.said() is turn.said()
    assert turn.tool_calls() is turn.tool_calls()
    assert turn.tool_calls() == []
    turn.records.append(f.tool_call("read_file", {"path": "a"}, 1))
    assert [call.name for call in turn.tool_calls()] == ["read_file"]
    assert turn.texts() == ["hello"]
