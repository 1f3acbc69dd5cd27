"""The Django ORM's model of the `tasks` table, for the django-ninja stack (`django_app`). The
table is the one the shared migrations create (`managed = False`: Django's own migrations never
touch it), so every stack works on the same schema.
"""

from django.db import models


class Task(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.TextField()
    done = models.BooleanField(default=False)

    class Meta:
        app_label = "todo_reference"
        db_table = "tasks"
        managed = False
