"""The test suite is one package, so shared helpers import by their full name from any test
(``from tests.app import apptest_utils``, ``from tests.core.training.scenes import ...``) with no
``sys.path`` edits. pytest puts the checkout root first on ``sys.path`` (the folder above the
top-most ``__init__.py``), which also keeps tf2onnx's stray top-level ``tests`` package out of the
way. The helpers stay test code: users get nothing from them, so they are not part of the library.
"""
