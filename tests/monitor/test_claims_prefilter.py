"""The whole-text checks that let most texts skip the claim patterns never change what
the patterns find."""

from __future__ import annotations

import re

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
PUNCTUATION = [" ", " ", " ", ", ", ". ", "; ", "! ", "\n", "'", "’"]
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


def everything(text: str) -> tuple[object, ...]:
    return (denials(text), compliance_claims(text), action_claims(text, ACTIONS))


@settings(max_examples=400, deadline=None)
@given(texts())
def test_prefilters_change_nothing(text: str) -> None:
    filtered = everything(text)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("_MAYBE_DENIAL", "_MAYBE_COMPLIANCE", "_FIRST_PERSON"):
            patch.setattr(claims, name, MATCH_ALL)
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
        for name in ("_MAYBE_DENIAL", "_MAYBE_COMPLIANCE", "_FIRST_PERSON"):
            patch.setattr(claims, name, MATCH_ALL)
        unfiltered = [everything(text) for text in cases]
    assert filtered == unfiltered
    assert all(claims.may_claim(text) for text, found in zip(cases, filtered, strict=True)
               if any(found))
    assert sum(1 for found in filtered if found[0]) > 50  # many of them are denials
