import pytest

from tests.core.training.scenes import tiny_config


@pytest.fixture
def tiny():
    return tiny_config
