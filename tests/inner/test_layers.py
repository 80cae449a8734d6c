import pytest

from innerpo.inner.layers import parse_layers


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("10", [10]),
        ("-2", [30]),
        ("0", [0]),
        ("0.5", [16]),
        ("1.0", [31]),
        ("0.0", [0]),
        (".25", [8]),
        ("4:12", list(range(4, 12))),
        ("4:12:2", [4, 6, 8, 10]),
        ("0.25:0.75", list(range(8, 24))),
        ("-4:", [28, 29, 30, 31]),
        (":3", [0, 1, 2]),
        ("::8", [0, 8, 16, 24]),
        ("5,10,-1", [5, 10, 31]),
        (" 5 , 10 ", [5, 10]),
        ("10,10,9:11", [9, 10]),
        (["5", "-1"], [5, 31]),
        ([3, "1,2"], [1, 2, 3]),
        (7, [7]),
        ("0:32", list(range(32))),
    ],
)
def test_valid_specs(spec, expected):
    assert parse_layers(spec, 32) == expected


@pytest.mark.parametrize(
    "spec, piece, why",
    [
        ("abc", "abc", "not an index"),
        ("32", "32", "out of range"),
        ("-33", "-33", "out of range"),
        ("1.5", "1.5", "outside \\[0, 1\\]"),
        ("-0.5", "-0.5", "outside \\[0, 1\\]"),
        ("12:4", "12:4", "selects no layers"),
        ("4:4", "4:4", "selects no layers"),
        ("4:12:0", "4:12:0", "step"),
        ("4:12:-1", "4:12:-1", "step"),
        ("2+3", "2+3", "not an index"),
        ("__import__('os')", "__import__('os')", "not an index"),
        ("4:40", "4:40", "out of range"),
        ("1e-1", "1e-1", "not an index"),
    ],
)
def test_bad_pieces_are_named(spec, piece, why):
    with pytest.raises(ValueError, match=why) as e:
        parse_layers(spec, 32)
    msg = str(e.value)
    assert repr(piece) in msg and "accepted forms" in msg


@pytest.mark.parametrize("spec", ["", "5,,6", "5,", []])
def test_empty_pieces(spec):
    with pytest.raises(ValueError, match="accepted forms"):
        parse_layers(spec, 32)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_layers"):
        parse_layers("1", 0)
    with pytest.raises(ValueError, match="accepted forms"):
        parse_layers(True, 4)
    with pytest.raises(ValueError, match="accepted forms"):
        parse_layers(1.5, 4)
