import subprocess
import sys

from workbench.cli import COMMANDS, build_parser, main


def test_every_command_has_help_from_its_docstring():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices  # argparse keeps subparsers here
    assert set(COMMANDS) <= set(sub)
    for name, command in sub.items():
        assert command.description, f"workbench {name} has no docstring"
        flags = {a.dest: a.help for a in command._actions if a.dest != "help"}
        assert all(flags.values()), f"workbench {name}: flags without help: {flags}"


def test_console_script_is_installed_and_lists_the_stages():
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("demo", "intake", "train", "generate", "eval"):
        assert name in out


def test_bad_input_prints_the_reason_and_exits_2(capsys):
    assert main(["train", "--subject", "bad id!"]) == 2
    assert "Subject id 'bad id!' is not valid" in capsys.readouterr().err
