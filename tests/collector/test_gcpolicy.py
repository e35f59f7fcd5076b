import gc

from driftwatch.collector.gcpolicy import YOUNG_THRESHOLD, long_lived_process


def test_long_lived_process_collects_in_large_steps_and_restores_the_defaults() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with long_lived_process():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > frozen_before  # start-up objects kept out of passes
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_long_lived_process_restores_the_defaults_when_the_body_raises() -> None:
    before = gc.get_threshold()
    try:
        with long_lived_process():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
