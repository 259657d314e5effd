from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from .selectors import DEFAULT_SORT, ITEM_SORTS, ItemFilters


class ItemFilterForm(forms.Form):
    """The browse page's query string: search, filters, sort. Invalid values are ignored."""

    q = forms.CharField(required=False, max_length=200, label="Search titles")
    genre = forms.ChoiceField(required=False, choices=[])
    year_min = forms.IntegerField(required=False, min_value=1800, max_value=2100, label="From year")
    year_max = forms.IntegerField(required=False, min_value=1800, max_value=2100, label="To year")
    min_ratings = forms.IntegerField(required=False, min_value=0, label="At least N ratings")
    sort = forms.ChoiceField(
        required=False, initial=DEFAULT_SORT, choices=[(key, label) for key, (label, _) in ITEM_SORTS.items()]
    )

    def __init__(self, *args: object, genres: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["genre"].choices = [("", "Any genre"), *[(g, g) for g in genres]]  # type: ignore[attr-defined]

    def to_filters(self) -> ItemFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return ItemFilters(
            q=(data.get("q") or "").strip(),
            genre=data.get("genre") or "",
            year_min=data.get("year_min"),
            year_max=data.get("year_max"),
            min_ratings=data.get("min_ratings"),
            sort=data.get("sort") or DEFAULT_SORT,
        )


class SignUpForm(UserCreationForm):  # type: ignore[type-arg]
    pass
