"""Device actions behind small interfaces (GPIO, sensors, system info, reboot)."""
