"""factory_boy factories for varied test data."""

from __future__ import annotations

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from catalog.models import Genre, Item
from ratings.models import Rating


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


class GenreFactory(factory.django.DjangoModelFactory[Genre]):
    class Meta:
        model = Genre
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Genre {n}")


class ItemFactory(factory.django.DjangoModelFactory[Item]):
    class Meta:
        model = Item

    title = factory.Sequence(lambda n: f"Movie number {n}")
    year = factory.Sequence(lambda n: 1950 + n % 70)
    source = "test"
    external_id = factory.Sequence(lambda n: str(n))


class RatingFactory(factory.django.DjangoModelFactory[Rating]):
    """Writes the row directly; tests of the services call the services instead."""

    class Meta:
        model = Rating

    user = factory.SubFactory(UserFactory)
    item = factory.SubFactory(ItemFactory)
    score = 4.0
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)
