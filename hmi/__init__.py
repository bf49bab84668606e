"""Web HMI and API server: ``create_app(runtime, settings)`` over the :class:`hmi.ports.RuntimePort`."""

from hmi.app import create_app
from hmi.ports import RuntimePort
from hmi.settings import BindRefused, HmiSettings

__all__ = ["BindRefused", "HmiSettings", "RuntimePort", "create_app"]
