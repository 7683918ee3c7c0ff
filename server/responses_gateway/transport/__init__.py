"""Transports translate between a wire protocol and the domain service; they decide nothing."""
