"""Phones, masking, dates relative to `now`, the city table and distances."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from text import city_coordinates, classify_post, distance_km, mask_phones


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        ("звоните 8-926-123-45-67", ("+79261234567",)),
        ("Тел. 89261234567; +7 (903) 22-87-222", ("+79261234567", "+79032287222")),
        ("тел 926 123 45 67", ("+79261234567",)),
        ("Вознаграждение 20 000, 30.09.2022 в 17.30", ()),
    ],
)
def test_phones(text: str, phones: tuple[str, ...]) -> None:
    assert classify_post(text).phones == phones


def test_mask_phones_hides_every_number_and_keeps_the_rest() -> None:
    masked = mask_phones("Пропал кот! 8 (926) 123-45-67, +79031234567. Награда 5000")
    assert masked == "Пропал кот! <телефон>, <телефон>. Награда 5000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("пропала 27.11.2020 вечером", date(2020, 11, 27)),
        ("30. 09. 2022 в 17. 30 убежала", date(2022, 9, 30)),
        ("ориентировочно 8го октября", date(2022, 10, 8)),
        ("потерялась вчера вечером", date(2022, 10, 11)),
        ("пропал кот в субботу", date(2022, 10, 8)),
        ("пропала 25 декабря", date(2021, 12, 25)),  # no year, after `now`: last year
    ],
)
def test_dates_relative_to_now(text: str, expected: date) -> None:
    now = datetime(2022, 10, 12, 10, 0)  # a Wednesday
    assert classify_post(text, now=now).loss_date == expected


def test_relative_dates_need_now() -> None:
    assert classify_post("пропала вчера").loss_date is None


def test_city_coordinates_and_distance() -> None:
    moscow = city_coordinates("Москва")
    assert moscow is not None and moscow == pytest.approx((55.76, 37.62), abs=0.05)
    assert city_coordinates("Питер") == city_coordinates("Санкт-Петербург")
    assert city_coordinates("Нетакогогорода") is None
    assert distance_km("Москва", "Санкт-Петербург") == pytest.approx(634, abs=15)
    assert distance_km("Москва", "Москва") == pytest.approx(0.0, abs=1e-6)
    assert distance_km("Москва", "Нетакогогорода") is None


@pytest.mark.parametrize(
    ("text", "city"),
    [
        # pymorphy3 also reads "Орлов" as "eagles'": the form "орел" is the big city's own name.
        ("Пропала собака в Орле", "Орёл"),
        ("Пропала собака, г. Орёл", "Орёл"),
        ("Орёл. Нашли кошку", "Орёл"),
        ("Пропала кошка в Орлове", "Орлов"),
    ],
)
def test_a_shared_word_form_goes_to_the_city_it_names(text: str, city: str) -> None:
    assert classify_post(text).city == city
