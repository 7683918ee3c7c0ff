"""Platform controls around the service call: virtual keys (`keys.py`, the admin API's operations),
their limits, budgets and spend (`gate.py`, `counters.py`), and which responses a key may see."""
