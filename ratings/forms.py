from __future__ import annotations

from django import forms

from .scale import MAX_SCORE, MIN_SCORE, SCORE_STEP

HALF_STARS = [
    (f"{s:.1f}", f"{s:.1f}")
    for s in [MIN_SCORE + SCORE_STEP * k for k in range(int((MAX_SCORE - MIN_SCORE) / SCORE_STEP) + 1)]
]


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(choices=HALF_STARS, coerce=float, label="Your rating")


#: The My ratings page's sort select: ``?sort=`` values (ratings.selectors.RATING_PAGE_SORTS) -> labels.
RATING_SORT_CHOICES = [
    ("newest", "Date rated, newest first"),
    ("oldest", "Date rated, oldest first"),
    ("score-high", "Your score, high to low"),
    ("score-low", "Your score, low to high"),
    ("title", "Title, A to Z"),
]


class RatingSortForm(forms.Form):
    """How to sort My ratings: a GET form, so it works without JavaScript."""

    # data-autosubmit: with JavaScript, choosing an order applies it (the page's script).
    sort = forms.ChoiceField(
        choices=RATING_SORT_CHOICES,
        required=False,
        label="Sort by",
        widget=forms.Select(attrs={"data-autosubmit": ""}),
    )


class RatingsImportForm(forms.Form):
    """A CSV file of your ratings, in the export's format (checked by ratings.csv_io)."""

    # Empty files are allowed here so the importer reports them like every other problem.
    file = forms.FileField(
        label="CSV file",
        allow_empty_file=True,
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
    )
