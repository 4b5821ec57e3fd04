"""Fixtures of the lake writer's broker tests (helpers live in ``lake_writer_support``)."""

from collections.abc import Callable

import pytest
from lake_writer_support import Source, make_source


@pytest.fixture
def source(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> Source:
    """Fresh prefixed lake topics on the session broker."""
    return make_source(kafka_bootstrap, unique_name("lw") + "-")
