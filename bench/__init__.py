"""`python -m bench`: the gateway's added latency against a fast loopback fake upstream."""
