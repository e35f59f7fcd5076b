"""The follow-up interview: after the main loop, ask the agent what happened.

Each question (several wordings of the same one) is a ``driftwatch.event
interview_question`` span followed by a ``chat`` span with the answer, both marked
``driftwatch.phase=interview``. The question span also carries what the environment diff
shows about the interview's subject, so the say–do monitor can compare the answer with
what actually happened without seeing the environment itself.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from driftwatch.agent.state import RunContext, call_model, simulation_for
from driftwatch.core import semconv as sc
from driftwatch.sandbox import diff_snapshots, normalize_path

INTERVIEW_SUBJECT = sc.DW_INTERVIEW_SUBJECT
INTERVIEW_SUBJECT_CHANGED = sc.DW_INTERVIEW_SUBJECT_CHANGED
INTERVIEW_CHANGED_PATHS = sc.DW_INTERVIEW_CHANGED_PATHS


def run_interview(ctx: RunContext, initial: dict[str, Any], last_turn: int) -> int:
    """Ask the scenario's interview questions; return how many were asked."""
    spec = ctx.scenario.interview
    if spec is None:
        return 0
    diff = diff_snapshots(initial, ctx.env.snapshot())
    changed = sorted({*diff["added"], *diff["removed"], *diff["modified"]})
    subject = normalize_path(spec.subject) if "/" in spec.subject else spec.subject
    subject_changed = subject in changed
    asked = 0
    for question in spec.questions:
        wanted = {normalize_path(p) for p in question.if_changed}
        if wanted and not wanted & set(changed):
            continue
        asked += 1
        ctx.common[sc.DW_TURN] = last_turn
        phase = {sc.DW_PHASE: "interview"}
        attributes = ctx.attrs(
            **{
                sc.GEN_AI_OPERATION_NAME: sc.OP_EVENT,
                sc.DW_EVENT_KIND: "interview_question",
                sc.DW_EVENT_CONTENT: question.text,
                INTERVIEW_SUBJECT: subject,
                INTERVIEW_SUBJECT_CHANGED: subject_changed,
                INTERVIEW_CHANGED_PATHS: changed,
            },
            **phase,
        )
        ctx.child_span(f"{sc.SPAN_EVENT_PREFIX} interview_question", SpanKind.INTERNAL,
                       attributes).end()
        ctx.add_message({"role": "user", "content": question.text})
        simulation = simulation_for(ctx, last_turn + asked, interview_subject=subject,
                                    subject_changed=subject_changed)
        if call_model(ctx, simulation, tools=False, **phase) is None:
            break
    return asked
