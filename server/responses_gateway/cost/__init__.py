"""What a response cost: the price table (`prices.py`) applied to its usage."""
