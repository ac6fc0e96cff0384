"""Label selector parsing and matching, checked against apimachinery's semantics."""

import pytest

from recycler_job.selector import (
    Operator,
    Requirement,
    parse_selector,
    validate_key,
    validate_value,
)

R = Requirement
Op = Operator


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("   ", ()),
        ("a=b", (R("a", Op.EQUALS, ("b",)),)),
        ("a==b", (R("a", Op.DOUBLE_EQUALS, ("b",)),)),
        ("a!=b", (R("a", Op.NOT_EQUALS, ("b",)),)),
        ("a", (R("a", Op.EXISTS),)),
        ("!a", (R("a", Op.DOES_NOT_EXIST),)),
        ("a in (x,y)", (R("a", Op.IN, ("x", "y")),)),
        ("a notin (x)", (R("a", Op.NOT_IN, ("x",)),)),
        ("a>3", (R("a", Op.GREATER_THAN, ("3",)),)),
        ("a<-3", (R("a", Op.LESS_THAN, ("-3",)),)),
        ("a=", (R("a", Op.EQUALS, ("",)),)),
        ("a=,b", (R("a", Op.EQUALS, ("",)), R("b", Op.EXISTS))),
        ("a=in", (R("a", Op.EQUALS, ("in",)),)),
        (
            " tier = scratch , ! keep , env in ( a , b ) ",
            (
                R("tier", Op.EQUALS, ("scratch",)),
                R("keep", Op.DOES_NOT_EXIST),
                R("env", Op.IN, ("a", "b")),
            ),
        ),
        (
            "example.com/team=storage,app.kubernetes.io/name",
            (
                R("example.com/team", Op.EQUALS, ("storage",)),
                R("app.kubernetes.io/name", Op.EXISTS),
            ),
        ),
        ("a=A-b_c.9", (R("a", Op.EQUALS, ("A-b_c.9",)),)),
        ("k" * 63 + "=" + "v" * 63, (R("k" * 63, Op.EQUALS, ("v" * 63,)),)),
    ],
)
def test_parse(text: str, expected: tuple[Requirement, ...]) -> None:
    selector = parse_selector(text)
    assert selector.requirements == expected
    assert selector.text == text.strip()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a b", "expected an operator after 'a', found 'b'"),
        ("a in ()", "value list is empty"),
        ("a in (x,)", "expected a label value, found ')'"),
        ("a in (x", "expected ',' or ')', found end of selector"),
        ("a in x", "expected '(', found 'x'"),
        ("a notin", "expected '(', found end of selector"),
        ("=b", "expected a label key, found '='"),
        ("!", "expected a label key, found end of selector"),
        ("!=b", "expected a label key, found '!='"),
        ("a,", "trailing ','"),
        (",a", "expected a label key, found ','"),
        ("a,,b", "expected a label key, found ','"),
        ("a=b=c", "expected ',' or end of selector, found '='"),
        ("a=b c", "expected ',' or end of selector, found 'c'"),
        ("a!", "expected an operator after 'a', found '!'"),
        ("a=(", "expected a label value, found '('"),
        ("a>x", "expected an integer, found 'x'"),
        ("a>", "expected an integer, found end of selector"),
        ("in=1", "expected a label key, found 'in'"),
        ("a=-b", "label value '-b'"),
        ("a=b-", "label value 'b-'"),
        ("a=" + "v" * 64, "longer than 63"),
        ("k" * 64, "name part is longer than 63"),
        ("-a", "label key '-a'"),
        ("a_", "label key 'a_'"),
        ("/a", "prefix before '/' is empty"),
        ("Example.com/a", "prefix 'Example.com'"),
        ("example.com/", "name part is empty"),
        ("x" * 254 + "/a", "at most 253"),
        ("a/b/c", "prefix 'a/b'"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid label selector") as info:
        parse_selector(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("", {"a": "b"}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a==b", {"a": "B"}, False),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {}, True),  # absent key satisfies a negative requirement, as upstream
        ("a=", {"a": ""}, True),
        ("a=", {"a": "x"}, False),
        ("a=", {}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "a"}, False),
        ("!a", {}, True),
        ("!a", {"a": "x"}, False),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a notin (x,y)", {}, True),
        ("a>3", {"a": "4"}, True),
        ("a>3", {"a": "3"}, False),
        ("a>3", {"a": "x"}, False),
        ("a>3", {}, False),
        ("a<3", {"a": "-10"}, True),
        ("a<3", {"a": "3"}, False),
        ("a=b,c=d", {"a": "b", "c": "d"}, True),
        ("a=b,c=d", {"a": "b", "c": "x"}, False),
        ("a=b,c=d", {"a": "x", "c": "d"}, False),
        ("tier=scratch,!keep", {"tier": "scratch"}, True),
        ("tier=scratch,!keep", {"tier": "scratch", "keep": "true"}, False),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def test_matches_none_labels() -> None:
    assert parse_selector("!a").matches(None) is True
    assert parse_selector("a").matches(None) is False


def test_str_is_the_stripped_text() -> None:
    assert str(parse_selector("  a=b ")) == "a=b"


@pytest.mark.parametrize("key", ["a", "a.b-c_d", "A9", "example.com/x", "k" * 63])
def test_validate_key_accepts(key: str) -> None:
    validate_key(key)


@pytest.mark.parametrize("key", ["", "-a", "a-", "a b", "ex_ample.com/x", "k" * 64, "a/"])
def test_validate_key_rejects(key: str) -> None:
    with pytest.raises(ValueError, match="label key"):
        validate_key(key)


@pytest.mark.parametrize("value", ["", "a", "a.b-c_D", "v" * 63])
def test_validate_value_accepts(value: str) -> None:
    validate_value(value)


@pytest.mark.parametrize("value", ["-a", "a.", "a b", "a/b", "v" * 64])
def test_validate_value_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="label value"):
        validate_value(value)
