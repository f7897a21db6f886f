"""GtidSet on the MySQL manual's examples (GTID format, GTID_SUBSET / GTID_SUBTRACT results) and on
MariaDB sets; text round trips."""

from __future__ import annotations

import pytest

from binlake.gtidset import GtidSet, GtidSetError

U = "3E11FA47-71CA-11E1-9E33-C80AA9429562"
u = U.lower()


def s(text: str | None) -> GtidSet:
    return GtidSet.parse(text)


@pytest.mark.parametrize(("text", "canonical"), [
    (f"{U}:23", f"{u}:23"),
    (f"{U}:1-5", f"{u}:1-5"),
    (f"{U}:1-3:11:47-49", f"{u}:1-3:11:47-49"),
    # the manual's multi-source example (its second UUID lacks a digit there; completed here)
    ("2174B383-5441-11E8-B90A-C80AA9429562:1-3, 24DA1670-0C0C-11E8-8442-00059A3C7B00:1-19",
     "2174b383-5441-11e8-b90a-c80aa9429562:1-3,24da1670-0c0c-11e8-8442-00059a3c7b00:1-19"),
    (f"{U}:1-3:4-5:7", f"{u}:1-5:7"),                       # adjacent intervals merge, as the server prints
    (f"{U}:11:1-3", f"{u}:1-3:11"),                          # sorted
    (f"{U}:Domain_1:1-3:11:47-49", f"{u}:domain_1:1-3:11:47-49"),  # 8.4 tagged GTIDs, tags lower-cased
    (f"{U}:1-5:domain_1:1-3:domain_2:8-52", f"{u}:1-5:domain_1:1-3:domain_2:8-52"),
    (f"{U}:domain_1:1-3,{U}:1-2", f"{u}:1-2:domain_1:1-3"),  # untagged first, one uuid set
    ("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n2174b383-5441-11e8-b90a-c80aa9429562:1",
     "2174b383-5441-11e8-b90a-c80aa9429562:1,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"),  # @@gtid_executed's newline
    ("0-1-42,1-2-7", "0-1-42,1-2-7"),
    ("1-2-7,0-1-42,0-1-40", "0-1-42,1-2-7"),
])
def test_text_round_trip(text: str, canonical: str) -> None:
    parsed = s(text)
    assert str(parsed) == canonical
    assert s(str(parsed)) == parsed


def test_empty() -> None:
    assert not s(None) and not s("") and not s(" \n") and s("").text is None


@pytest.mark.parametrize("bad", [f"{U}", f"{U}:", f"{U}:0", f"{U}:5-3", f"{U}:1-x", "3E11FA47:1-5",
                                 f"{U}:tag", f"{U}:1:tag", f"{U}:9tag:1", f"{U}:{'t' * 33}:1", "0-1"])
def test_refuses_what_is_not_a_set(bad: str) -> None:
    with pytest.raises(GtidSetError):
        s(bad)


# GTID_SUBSET(set1, set2) examples of the manual: is set1 contained in set2?
@pytest.mark.parametrize(("sub", "sup", "expected"), [
    (f"{U}:23", f"{U}:21-57", True),
    (f"{U}:23-25", f"{U}:21-57", True),
    (f"{U}:20-25", f"{U}:21-57", False),
])
def test_gtid_subset_examples(sub: str, sup: str, expected: bool) -> None:
    assert (s(sub) <= s(sup)) is expected
    assert s(sup).contains(s(sub)) is expected


# GTID_SUBTRACT(set1, set2) examples of the manual
@pytest.mark.parametrize(("have", "remove", "rest"), [
    (f"{U}:21-57", f"{U}:21", f"{u}:22-57"),
    (f"{U}:21-57", f"{U}:20-25", f"{u}:26-57"),
    (f"{U}:21-57", f"{U}:23-24", f"{u}:21-22:25-57"),
])
def test_gtid_subtract_examples(have: str, remove: str, rest: str) -> None:
    assert str(s(have).missing_from(s(remove))) == rest


def test_union_merges_sources_tags_and_intervals() -> None:
    a = s(f"{U}:1-5,2174B383-5441-11E8-B90A-C80AA9429562:1-3")
    b = s(f"{U}:6-9:domain_1:1,2174b383-5441-11e8-b90a-c80aa9429562:10")
    assert str(a | b) == f"2174b383-5441-11e8-b90a-c80aa9429562:1-3:10,{u}:1-9:domain_1:1"
    assert a <= a | b and b <= a | b and not (a | b) <= a


def test_tagged_and_untagged_are_different_transactions() -> None:
    assert not s(f"{U}:domain_1:5") <= s(f"{U}:1-10")
    assert str(s(f"{U}:5:domain_1:5").missing_from(s(f"{U}:1-10"))) == f"{u}:domain_1:5"


def test_with_gtid_extends_the_set() -> None:
    executed = s(f"{U}:1-41")
    assert str(executed.with_gtid(f"{U}:42")) == f"{u}:1-42"
    assert str(executed.with_gtid(f"{U}:44")) == f"{u}:1-41:44"
    assert str(s("0-1-5").with_gtid("0-1-6")) == "0-1-6"


def test_mariadb_containment_per_domain_and_server() -> None:
    state = s("0-1-45,0-2-50,1-2-7")
    assert s("0-1-42,1-2-7") <= state
    assert str(s("0-1-42").missing_from(s("0-1-40,0-2-43"))) == "0-1-42"
    assert str(s("0-3-1").missing_from(state)) == "0-3-1"  # a server the state never saw


def test_the_two_forms_share_nothing() -> None:
    assert not s(f"{U}:1") <= s("0-1-5")
    assert not s("0-1-5") <= s(f"{U}:1-100")
    both = s(f"{U}:1-3,0-1-5")
    assert both.is_mysql and both.is_mariadb and str(both) == f"{u}:1-3,0-1-5"
    assert both.count() == 4


def test_tagged_sets_are_flagged() -> None:
    assert s(f"{U}:1-5:domain_1:1").is_tagged
    assert not s(f"{U}:1-5").is_tagged and not s("0-1-5").is_tagged
