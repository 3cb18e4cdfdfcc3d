import pytest

from t5mtf.data import registry


@pytest.fixture
def clean_registry():
  """Registries emptied before and after a test that registers its own tasks."""
  registry.reset_registries()
  yield
  registry.reset_registries()


@pytest.fixture(autouse=True)
def clean_gin():
  """Gin bindings parsed by one test must not configure another's ModelConfig."""
  import gin
  yield
  gin.clear_config()
