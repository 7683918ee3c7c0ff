"""Response stores: where responses, their input items and event logs are kept."""
