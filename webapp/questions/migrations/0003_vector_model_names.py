"""Vectors stored before models were named were labelled "default": they were made by the default
embedding model of the time, the one EMBEDDING_MODEL (or the old EMBEDDINGS_MODEL) named, else
minilm-l6. Name it, so the index of that model finds them."""

import os

from django.db import migrations


def name_the_default(apps, schema_editor):
    model = os.environ.get("EMBEDDING_MODEL") or os.environ.get("EMBEDDINGS_MODEL") or "minilm-l6"
    apps.get_model("questions", "Question").objects.filter(vector_model__in=["default", ""]).exclude(
        vector__isnull=True
    ).update(vector_model=model)


class Migration(migrations.Migration):
    dependencies = [("questions", "0002_recovery")]
    operations = [migrations.RunPython(name_the_default, migrations.RunPython.noop)]
