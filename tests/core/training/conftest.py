import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scenes import tiny_config  # noqa: E402  (a uniquely named module: every test folder has a conftest)


@pytest.fixture
def tiny():
    return tiny_config
