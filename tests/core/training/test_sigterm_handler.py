"""`pdl train` turns SIGTERM into a clean stop while it trains, and gives the process its previous
handler back afterwards (tests and the app's in-process runs outlive it)."""

import signal

import pytest

from panoptic_deeplab.commands.train import _stop_cleanly_on_sigterm


def test_sigterm_stops_training_cleanly_and_the_old_handler_comes_back():
    def mine(*_):
        pass

    old = signal.signal(signal.SIGTERM, mine)
    try:
        with _stop_cleanly_on_sigterm():
            with pytest.raises(SystemExit) as stopped:
                signal.raise_signal(signal.SIGTERM)
            assert stopped.value.code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)
