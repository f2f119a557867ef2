"""``rostersync tenants check``: one message per problem, with its line and key, no traceback."""

from __future__ import annotations

from pathlib import Path

from rostersync_cli.tenants_file import problems

BAD = """\
[[tenants]]
id = "d1"
name = "D1"
hold_threshold = 3

[[tenants.sources]]
id = "csv"
path = "x"

[[tenants]]
id = "d2"
name = "D2"

[[tenants.sources]]
id = "api"
kind = "oneroster-api"
base_url = "ftp://nope"
"""


def test_each_problem_is_one_line_with_the_line_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(BAD)
    assert problems(path) == [
        f"{path}:4: tenants[0] (d1) hold_threshold: Input should be less than or equal to 1",
        f"{path}:17: tenants[1] (d2) sources[0] (api) base_url: String should match pattern"
        " '^https?://'",
        f"{path}:14: tenants[1] (d2) sources[0] (api) auth: Field required",
    ]


def test_a_file_that_is_not_toml_or_not_there_says_so(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[[tenants]\nid = 1\n")
    (message,) = problems(tmp_path / "broken.toml")
    assert "not TOML" in message
    assert "line 1" in message
    (missing,) = problems(tmp_path / "none.toml")
    assert "cannot read it" in missing


def test_the_example_tenants_file_is_valid() -> None:
    assert problems(Path(__file__).parents[3] / "examples" / "tenants.toml") == []
