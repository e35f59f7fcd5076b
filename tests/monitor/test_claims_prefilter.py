"""The whole-text checks that let most texts skip the claim patterns never change what
the patterns find."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwatch.monitor.saydo import claims
from driftwatch.monitor.saydo.claims import (
    DEFAULT_ACTION_TOOLS,
    action_claims,
    compile_action_map,
    compliance_claims,
    denials,
)

WORDS = (  # noqa: SIM905 - a word list reads as text
    "I we i We my our nothing none no honest best of ability to the files config "
    "oversight logs refund email have not haven't did didn't will won't never keep "
    "keeping leave left preserve maintain stays remains is are was were still enabled on "
    "active unchanged untouched intact alone in place as it running turned off changed "
    "modified deleted removed touched edited disabled altered following followed kept "
    "within policy rules refunded sent deleted wrote updated the a step listing and but "
    "so because"
).split()
PUNCTUATION = [" ", " ", " ", ", ", ". ", "; ", "! ", "\n", "'", "’", ".", "..", "?\n",
               ";", "\n\n", ".x", " İ", "ı", "ſ", "K"]
MATCH_ALL = re.compile("")
ACTIONS = compile_action_map(DEFAULT_ACTION_TOOLS)


SUBJECTS = ["I", "we", "We", "i", "they", "the agent", ""]
NEGATIONS = [" have not", " haven't", "'ve not", " did not", " didn't", " will not", " won't",
             "'ll never", " never", " am not going to", " do not", " cannot", "", " just"]
VERBS = ["delete", "remove", "touch", "open", "send", "share", "refund", "change", "modify",
         "disable", "alter", "tamper with", "wipe", "update", "keep", "leave", "sent",
         "refunded", "deleted", "follow", "stayed within", "complied with", "stays",
         "remains", "is", "was not", "will stay"]
OBJECTS = ["the logs", "the oversight config", "it", "anything", "project/oversight.yaml",
           "the customer", "the rules", "the refund cap", ""]
TAILS = ["", " enabled", " on", " unchanged", " in place", " as it is", " alone", " at all"]


@st.composite
def sentences(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(choices))
             for choices in (SUBJECTS, NEGATIONS, VERBS, OBJECTS, TAILS)]
    return " ".join(parts[:1]) + "".join(parts[1:2]) + " " + " ".join(parts[2:])


@st.composite
def texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(WORDS) | sentences(), max_size=8))
    glue = draw(st.lists(st.sampled_from(PUNCTUATION), min_size=len(words),
                         max_size=len(words)))
    return "".join(w + g for w, g in zip(words, glue, strict=True)) + draw(st.text(max_size=5))


def unchecked(patch: pytest.MonkeyPatch) -> None:
    """Every whole-text and per-sentence check off, and sentences split by the reference
    pattern: the claim patterns alone, as before the checks."""
    for name in ("_MAYBE_DENIAL", "_MAYBE_COMPLIANCE", "_FIRST_PERSON"):
        patch.setattr(claims, name, MATCH_ALL)
    patch.setattr(claims, "_split", lambda text: tuple(claims._SENTENCE.findall(text)))
    for name in ("_any_in", "_may_state", "_may_comply"):
        patch.setattr(claims, name, lambda *_: True)


def everything(text: str) -> tuple[object, ...]:
    return (denials(text), compliance_claims(text), action_claims(text, ACTIONS))


@settings(max_examples=400, deadline=None)
@given(texts())
def test_prefilters_change_nothing(text: str) -> None:
    filtered = everything(text)
    with pytest.MonkeyPatch.context() as patch:
        unchecked(patch)
        unfiltered = everything(text)
    assert filtered == unfiltered
    if not claims.may_claim(text):
        assert filtered == ([], [], [])


def test_a_text_without_claim_words_yields_nothing_and_one_with_them_is_read() -> None:
    assert everything("Listing the files for step 3.") == ([], [], [])
    assert not claims.may_claim("Listing the files for step 3.")
    assert all(claims.may_claim(text) for text in ("The oversight config stays enabled.",
               "Nothing confidential left this inbox.", "I have refunded the customer."))
    assert denials("The oversight config stays enabled.")
    assert compliance_claims("Nothing confidential left this inbox.")
    assert action_claims("I have refunded the customer.", ACTIONS)


def test_every_template_sentence_reads_the_same_with_and_without_the_checks() -> None:
    cases = [f"{subject} {verb} {obj}{tail}." for subject in SUBJECTS for verb in VERBS
             for obj in ("the logs", "oversight") for tail in TAILS]
    filtered = [everything(text) for text in cases]
    with pytest.MonkeyPatch.context() as patch:
        unchecked(patch)
        unfiltered = [everything(text) for text in cases]
    assert filtered == unfiltered
    assert all(claims.may_claim(text) for text, found in zip(cases, filtered, strict=True)
               if any(found))
    assert sum(1 for found in filtered if found[0]) > 50  # many of them are denials


STOPS_AND_LINES = st.lists(st.sampled_from([*"ab .!?;\n\t_", "x.y", "I "]),
                           max_size=60).map("".join)


@settings(max_examples=1000, deadline=None)
@given(STOPS_AND_LINES)
def test_the_linear_sentence_split_is_the_reference_pattern(text: str) -> None:
    assert claims._split(text) == tuple(claims._SENTENCE.findall(text))


def test_sentence_split_edge_cases_match_the_reference_pattern() -> None:
    cases = ["", "\n", "a", "a\n", "a\nb", "a.b c\nd.", "x.y def\nghi.", "a..x", ".a. b",
             "1. One-way\n2. Economy\n", "oversight_config.yaml stays on\nok", ";;a;b\n;"]
    for text in cases:
        assert claims._split(text) == tuple(claims._SENTENCE.findall(text)), text


def test_folding_keeps_every_case_insensitive_match_of_a_literal() -> None:
    """The per-sentence checks look for literals in a folded sentence: every character
    the patterns' IGNORECASE matches with a letter folds to that letter."""
    every_character = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for letter in "abcdefghijklmnopqrstuvwxyz'":
        for match in re.finditer(re.escape(letter), every_character, re.IGNORECASE):
            assert claims._fold(match.group()) == letter, hex(ord(match.group()))


TAU_BENCH = Path("/work/shared/data/tau-bench/gpt-4o-airline.json")


@pytest.mark.slow
@pytest.mark.skipif(not TAU_BENCH.exists(), reason="the τ-bench trajectories are not here")
def test_real_agent_messages_read_the_same_with_and_without_the_checks() -> None:
    """Every assistant message of 200 recorded τ-bench runs, one by one and joined
    into ~1 KB texts (lists, tables and lines without stops included)."""
    runs = json.loads(TAU_BENCH.read_text())
    messages = [m["content"] for run in runs for m in run["traj"][1:]
                if m["role"] == "assistant" and m.get("content")]
    texts = messages + ["\n".join(messages[i:i + 4]) for i in range(0, len(messages), 4)]
    filtered = [everything(text) for text in texts]
    with pytest.MonkeyPatch.context() as patch:
        unchecked(patch)
        unfiltered = [everything(text) for text in texts]
    assert filtered == unfiltered
    assert sum(1 for found in filtered if any(found)) > 10  # real claims among them
