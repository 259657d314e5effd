"""The For you page's filters."""

from __future__ import annotations

from typing import Any

from django import forms

from catalog.api import YEAR_MAX, YEAR_MIN


class ForYouFilterForm(forms.Form):
    genre = forms.ChoiceField(required=False)
    year_min = forms.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX, label="From year")
    year_max = forms.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX, label="To year")
    exclude_watchlisted = forms.BooleanField(required=False, label="Hide my watchlist")

    def __init__(self, *args: Any, genres: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["genre"].choices = [("", "Any genre"), *[(g, g) for g in genres]]  # type: ignore[attr-defined]
        for name in ("year_min", "year_max"):
            self.fields[name].widget.attrs.update({"placeholder": "any", "inputmode": "numeric"})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("year_min"), data.get("year_max")
        if low is not None and high is not None and low > high:
            self.add_error("year_max", f"must be at least the 'from' year ({low})")
        return data

    def cleaned_filters(self) -> dict[str, Any]:
        """The valid filters as keyword arguments of ``for_you_list`` (a bad one is left out
        and its error shown next to its field)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        data = {k: v for k, v in self.cleaned_data.items() if k not in self.errors}
        return {
            "genre": data.get("genre") or None,
            "year_min": data.get("year_min"),
            "year_max": data.get("year_max"),
            "exclude_watchlisted": bool(data.get("exclude_watchlisted")),
        }
