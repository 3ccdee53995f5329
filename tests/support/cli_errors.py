"""The one-line error a ``larq-bamsprod`` command gives for bad input, read from capsys."""


def one_error_line(capsys, prog="larq-bamsprod compare"):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]
