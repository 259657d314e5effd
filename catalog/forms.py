from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm

from .selectors import DEFAULT_SORT, ITEM_SORTS, YEAR_MAX, YEAR_MIN, ItemFilters

#: The browse order "Predicted for you" (signed in): not a database order, the view ranks by the model.
PREDICTED_SORT = "predicted"

#: The largest value a count column holds (``PositiveIntegerField``); larger ones are refused.
MAX_COUNT = 2**31 - 1


def _year_field(label: str) -> forms.IntegerField:
    outside = f"Pick a year from {YEAR_MIN} to {YEAR_MAX}."
    return forms.IntegerField(
        required=False,
        min_value=YEAR_MIN,
        max_value=YEAR_MAX,
        label=label,
        error_messages={"min_value": outside, "max_value": outside, "invalid": "Enter a year, such as 1994."},
    )


class ItemFilterForm(forms.Form):
    """The browse page's query string: search, filters, sort.

    A bad value (an unknown genre, a year outside the range, a "to" year before the
    "from" year) is an error shown next to its field, and only that filter is left out
    of :meth:`to_filters`: the page says what it did not apply instead of silently
    showing everything.
    """

    q = forms.CharField(required=False, max_length=200, label="Search titles")
    genre = forms.ChoiceField(
        required=False,
        choices=[],
        error_messages={"invalid_choice": "There is no genre called “%(value)s”; pick one from the list."},
    )
    year_min = _year_field("From year")
    year_max = _year_field("To year")
    min_ratings = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_COUNT,
        label="At least N ratings",
        error_messages={
            "min_value": "Enter 0 or more.",
            "max_value": "Enter a smaller number.",
            "invalid": "Enter a whole number.",
        },
    )
    sort = forms.ChoiceField(
        required=False,
        initial=DEFAULT_SORT,
        choices=[(key, label) for key, (label, _) in ITEM_SORTS.items()],
        error_messages={"invalid_choice": "Pick an order from the list."},
    )

    #: Signed in only: order by the stars the rating model predicts for you, and leave
    #: out what you rated (hidden items are always left out for you).
    hide_rated = forms.BooleanField(required=False, label="Hide films I rated")

    def __init__(self, *args: Any, genres: list[str], personal: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["genre"].choices = [("", "Any genre"), *[(g, g) for g in genres]]  # type: ignore[attr-defined]
        if personal:
            self.fields["sort"].choices = [  # type: ignore[attr-defined]
                *self.fields["sort"].choices,  # type: ignore[attr-defined]
                (PREDICTED_SORT, "Predicted for you"),
            ]
        else:
            del self.fields["hide_rated"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        year_min, year_max = data.get("year_min"), data.get("year_max")
        if year_min is not None and year_max is not None and year_min > year_max:
            self.add_error("year_max", f"{year_max} is before the “from” year {year_min}.")
        return data

    def personal_options(self) -> tuple[bool, bool]:
        """(order by predicted stars, hide rated items), as valid on this form."""
        if not self.is_bound:
            return False, False
        self.is_valid()  # cleaned_data keeps only the fields without errors
        return self.cleaned_data.get("sort") == PREDICTED_SORT, bool(self.cleaned_data.get("hide_rated"))

    def to_filters(self) -> ItemFilters:
        """The valid filters (the defaults for an unbound form); invalid fields are left out."""
        if not self.is_bound:
            return ItemFilters()
        self.is_valid()  # cleaned_data keeps only the fields without errors
        data = self.cleaned_data
        return ItemFilters(
            q=(data.get("q") or "").strip(),
            genre=data.get("genre") or "",
            year_min=data.get("year_min"),
            year_max=data.get("year_max"),
            min_ratings=data.get("min_ratings"),
            sort=str(data["sort"]) if data.get("sort") in ITEM_SORTS else DEFAULT_SORT,
        )


class SignUpForm(UserCreationForm):  # type: ignore[type-arg]
    email = forms.EmailField(required=False, help_text="Optional: lets you reset a forgotten password.")

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        fields = ("username", "email")
