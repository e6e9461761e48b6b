"""A simulated cellular module with a simulated network behind it (TS 27.005/27.007).

``SimModem`` is the module; ``create_sim_connection`` connects an asyncio
protocol to it in-process; :mod:`modem.sim.endpoints` serves it on a pty and
TCP; :mod:`modem.sim.control` is the JSON-lines control interface; ``python -m
modem.sim`` the command line. See docs/simulator.md.
"""

from .core import MoRecord, MtAck, NetworkMessage, SimModem, SimPort, SimTiming
from .profiles import PROFILES, Profile
from .transport import SimConnection, SimTransport, create_sim_connection

__all__ = [
    "PROFILES",
    "MoRecord",
    "MtAck",
    "NetworkMessage",
    "Profile",
    "SimConnection",
    "SimModem",
    "SimPort",
    "SimTiming",
    "SimTransport",
    "create_sim_connection",
]
