"""Starts the django-ninja stack (`django_app`, which configures Django when imported, so
only the server processes import it)."""

from .serve import run_uvicorn

STACK = "django-ninja"


def main() -> None:
    run_uvicorn(STACK, "The todo API on django-ninja + the Django ORM (a reference stack)",
                "todo_reference.django_app:app")
