import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scenes import tiny_config


@pytest.fixture
def tiny():
    return tiny_config
