from __future__ import annotations

from django import forms

from .scale import MAX_SCORE, MIN_SCORE, SCORE_STEP

HALF_STARS = [
    (f"{s:.1f}", f"{s:.1f}")
    for s in [MIN_SCORE + SCORE_STEP * k for k in range(int((MAX_SCORE - MIN_SCORE) / SCORE_STEP) + 1)]
]


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(choices=HALF_STARS, coerce=float, label="Your rating")
