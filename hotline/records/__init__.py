"""The national customer record in bulk: synthetic data (``gen``) and import (``importer``)."""
