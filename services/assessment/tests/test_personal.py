"""Personal details rules and sealing, pure: age bands, NHS numbers, retention, keys."""

from __future__ import annotations

from datetime import date

import pytest

from contracts.vocabulary import AgeBand
from services.assessment.domain import AgeBandRequired
from services.assessment.personal import (
    AgeBandContradictsDateOfBirth,
    DateOfBirthInFuture,
    InvalidNhsNumber,
    NotAnAdult,
    PersonalDetails,
    RetentionNotOver,
    add_years,
    age_band_on,
    check_nhs_number,
    ensure_retention_over,
    resolve_age_band,
)
from services.assessment.sealing import MasterKey, SealingError, new_data_key, seal, unseal

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("born", "band"),
    [
        (date(2008, 11, 23), AgeBand.AGE_18_64),  # 18 today
        (date(1961, 11, 24), AgeBand.AGE_18_64),  # 65 tomorrow
        (date(1961, 11, 23), AgeBand.AGE_65_74),
        (date(1951, 11, 23), AgeBand.AGE_75_84),
        (date(1941, 11, 23), AgeBand.AGE_85_PLUS),
    ],
)
def test_the_age_band_turns_on_the_birthday(born: date, band: AgeBand):
    assert age_band_on(born, TODAY) is band


def test_someone_under_18_or_not_yet_born_is_refused():
    with pytest.raises(NotAnAdult):
        age_band_on(date(2008, 11, 24), TODAY)
    with pytest.raises(DateOfBirthInFuture):
        age_band_on(date(2027, 1, 1), TODAY)


def test_a_given_band_must_agree_with_the_date_of_birth():
    born = date(1941, 7, 19)
    assert resolve_age_band(None, born, TODAY) is AgeBand.AGE_85_PLUS
    assert resolve_age_band(AgeBand.AGE_85_PLUS, born, TODAY) is AgeBand.AGE_85_PLUS
    with pytest.raises(AgeBandContradictsDateOfBirth):
        resolve_age_band(AgeBand.AGE_75_84, born, TODAY)
    assert resolve_age_band(AgeBand.AGE_65_74, None, TODAY) is AgeBand.AGE_65_74
    with pytest.raises(AgeBandRequired):
        resolve_age_band(None, None, TODAY)


def test_nhs_numbers_must_carry_their_modulus_11_check_digit():
    check_nhs_number("9434765919")  # the NHS's own example
    for bad in ("9434765918", "943476591", "94347659190", "943476591X"):
        with pytest.raises(InvalidNhsNumber):
            check_nhs_number(bad)


def test_retention_runs_whole_years_from_the_last_contact():
    assert add_years(date(2020, 2, 29), 8) == date(2028, 2, 29)
    assert add_years(date(2020, 2, 29), 1) == date(2021, 2, 28)
    ensure_retention_over(
        last_contact=date(2018, 11, 23), years=8, today=TODAY, policy_version="lancashire/2009.1"
    )
    with pytest.raises(RetentionNotOver, match="until 2026-11-24"):
        ensure_retention_over(
            last_contact=date(2018, 11, 24),
            years=8,
            today=TODAY,
            policy_version="lancashire/2009.1",
        )


def test_details_given_later_keep_what_was_recorded_before():
    recorded = PersonalDetails(
        name="Ann Example", date_of_birth=date(1950, 1, 2), postcode="PR1 2AB"
    )
    update = PersonalDetails(name="Ann Example-Smith", phone="01772 000000")
    merged = update.over(recorded)
    assert merged.name == "Ann Example-Smith"
    assert merged.date_of_birth == date(1950, 1, 2) and merged.phone == "01772 000000"
    assert PersonalDetails.from_document(merged.as_document()) == merged
    assert update.given == ["name", "phone"]


def test_a_sealed_document_opens_only_with_its_key_in_its_place():
    key = new_data_key()
    sealed = seal(key, {"name": "Ann Example"}, "lancashire:P1:d1")
    assert "Ann" not in sealed
    assert unseal(key, sealed, "lancashire:P1:d1") == {"name": "Ann Example"}
    with pytest.raises(SealingError):
        unseal(key, sealed, "lancashire:P2:d1")  # pasted onto another person
    with pytest.raises(SealingError):
        unseal(new_data_key(), sealed, "lancashire:P1:d1")


def test_a_wrapped_data_key_opens_only_with_the_master_key(tmp_path):
    master = MasterKey.from_file(tmp_path / "master.key")
    assert (
        MasterKey.from_file(tmp_path / "master.key").unwrap(
            master.wrap(b"k" * 32, "lancashire:P1:key"), "lancashire:P1:key"
        )
        == b"k" * 32
    ), "the key file is made once and read back"
    assert (tmp_path / "master.key").stat().st_mode & 0o077 == 0
    other = MasterKey(new_data_key())
    with pytest.raises(SealingError):
        other.unwrap(master.wrap(b"k" * 32, "lancashire:P1:key"), "lancashire:P1:key")


def test_production_needs_a_master_key_and_no_pretend_today(tmp_path):
    from pydantic import ValidationError

    from services.assessment.settings import Settings

    public_key = tmp_path / "jwt.pem"
    with pytest.raises(ValidationError, match="personal_data_master_key"):
        Settings(environment="production", jwt_public_key_file=public_key)
    key = "A" * 43 + "="
    with pytest.raises(ValidationError, match="retention_today"):
        Settings(
            environment="production",
            jwt_public_key_file=public_key,
            personal_data_master_key=key,
            retention_today=date(2040, 1, 1),
        )
    settings = Settings(
        environment="production", jwt_public_key_file=public_key, personal_data_master_key=key
    )
    assert settings.master_key().unwrap(settings.master_key().wrap(b"x", "a"), "a") == b"x"
