"""Command-line errors: one line and exit 2 for the user's mistakes, the traceback only with --debug."""
from __future__ import annotations

import pytest

from padet_sdk import cli, cli_errors
from padet_sdk.cli import main


@pytest.fixture(autouse=True)
def _no_debug_env(monkeypatch):
    monkeypatch.setenv(cli_errors.DEBUG_ENV, "0")  # and restored afterwards, also when --debug set it


def test_a_user_error_is_one_line_with_exit_2_and_no_traceback(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.xml")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("padet info: ") and "Traceback" not in err, err


def test_debug_anywhere_on_the_line_adds_the_traceback_and_reaches_delegated_commands(tmp_path, capsys, monkeypatch):
    assert main(["info", str(tmp_path / "missing.xml"), "--debug"]) == 2  # not an unknown option
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().splitlines()[-1].startswith("padet info: ")
    import os

    assert os.environ[cli_errors.DEBUG_ENV] == "1"  # delegated subcommands run in this process/env


def test_an_unexpected_exception_is_one_line_exit_1_and_raises_with_debug(monkeypatch, capsys):
    def broken(argv):
        raise KeyError("boom")

    monkeypatch.setattr(cli, "_info", broken)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "unexpected KeyError" in err and "--debug" in err, err
    with pytest.raises(KeyError):
        main(["--debug", "info"])


def test_ctrl_c_outside_a_stream_exits_130_with_a_note(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_info", interrupted)
    assert main(["info"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_first_ctrl_c_asks_the_stream_to_stop_and_a_second_one_interrupts():
    import os
    import signal

    from padet_sdk.cli_errors import GracefulInterrupt

    class Target:
        stops = 0

        def stop(self):
            self.stops += 1

    # as in a terminal, even if the suite runs in the background (SIGINT ignored)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    target = Target()
    try:
        with GracefulInterrupt(target) as g:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):  # the handler runs at the next bytecode boundary of the main thread
                if g.requested:
                    break
            assert g.requested and target.stops == 1
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(100):
                    pass
        assert target.stops == 1 and signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    finally:
        signal.signal(signal.SIGINT, outer)
