"""AT protocol core, asyncio client and SMS service for cellular modules (TS 27.005/27.007)."""
