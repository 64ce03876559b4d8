"""Job states: one list, one rule for which are final, used by the jobs, the server page and the views."""
from __future__ import annotations

import json

import physviz.jobs as pj
from physviz.jobs.states import STATES, TERMINAL, is_terminal


def test_terminal_states_are_states_and_final():
    assert STATES == ("pending", "running", "completed", "failed", "cancelled", "unknown")
    assert TERMINAL == ("completed", "failed", "cancelled")
    assert set(TERMINAL) <= set(STATES)
    assert [s for s in STATES if is_terminal(s)] == list(TERMINAL)
    assert not is_terminal(None) and not is_terminal("unknown")


def test_the_package_names_the_same_objects():
    assert pj.STATES is STATES and pj.TERMINAL is TERMINAL and pj.is_terminal is is_terminal


def test_the_jobs_page_disables_cancel_for_the_terminal_states():
    from physviz.server.page import PAGE

    assert f"{json.dumps(list(TERMINAL))}.indexOf(status)" in PAGE
