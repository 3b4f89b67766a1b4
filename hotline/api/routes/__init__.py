"""One module per REST resource, each with one ``APIRouter`` named ``router``."""
