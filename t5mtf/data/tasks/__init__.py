"""The task catalogs. ``register_all()`` registers every built-in task and mixture; nothing is
registered on import."""


def register_all():
  from t5mtf.data.tasks import pretraining
  pretraining.register()
  try:
    from t5mtf.data.tasks import downstream
  except ImportError:  # Catalog not written yet.
    return
  downstream.register()
